package apart

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cpuTime is the CPU time, user and system, that the process pid and its
// children it waited for have used, from /proc/PID/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("apart: cpu time: %w", err)
	}
	// The command name, in parentheses, may hold spaces: the fields that
	// follow it start with the state, field 3.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("apart: cpu time: /proc/%d/stat has no command name", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	const utime, cstime = 14 - 3, 17 - 3 // utime, stime, cutime, cstime
	if len(fields) <= cstime {
		return 0, fmt.Errorf("apart: cpu time: /proc/%d/stat has %d fields", pid, len(fields)+2)
	}
	var ticks uint64
	for _, f := range fields[utime : cstime+1] {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("apart: cpu time: /proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / time.Duration(clockTicks()), nil
}

// rss is the resident set size of the process pid in bytes, VmRSS of
// /proc/PID/status.
func rss(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("apart: rss: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		value, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("apart: rss: /proc/%d/status: %w", pid, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("apart: rss: /proc/%d/status has no VmRSS", pid)
}

// clockTicks is the unit of the CPU times in /proc, sysconf(_SC_CLK_TCK):
// AT_CLKTCK of this process's auxiliary vector, or 100, Linux's USER_HZ,
// when that cannot be read.
var clockTicks = sync.OnceValue(func() uint64 {
	const atClkTck = 17
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	word := strconv.IntSize / 8
	for i := 0; i+2*word <= len(b); i += 2 * word {
		if readWord(b[i:], word) == atClkTck {
			if hz := readWord(b[i+word:], word); hz > 0 {
				return hz
			}
		}
	}
	return 100
})

// readWord reads a native word of size bytes from b.
func readWord(b []byte, size int) uint64 {
	if size == 4 {
		return uint64(binary.NativeEndian.Uint32(b))
	}
	return binary.NativeEndian.Uint64(b)
}
