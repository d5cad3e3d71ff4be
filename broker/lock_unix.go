//go:build unix

package broker

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// lockFile is the file in an embedded store directory that its owner
// holds an exclusive lock on and writes its pid to.
const lockFile = "eventsidecar.lock"

// lockStore takes the exclusive lock of the store directory dir, creating
// the directory when it is missing, before anything in it is opened. When
// another process holds the lock it fails at once, naming the directory
// and the holder's pid, and changes nothing. The returned func releases
// the lock; the system releases it too when the process ends, however it
// ends.
func lockStore(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("broker: embedded store_dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("broker: embedded store_dir %s: lock: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("broker: embedded store_dir %s is in use by another process%s; "+
				"give each sidecar its own store_dir, or point them at one broker with broker.url", dir, holder(f))
		}
		return nil, fmt.Errorf("broker: embedded store_dir %s: lock: %w", dir, err)
	}
	if err := writePID(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("broker: embedded store_dir %s: lock: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

// holder is " (pid N)" with the pid the lock's holder wrote, or "" when
// the file does not hold one.
func holder(f *os.File) string {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:n])))
	if err != nil || pid <= 0 {
		return ""
	}
	return fmt.Sprintf(" (pid %d)", pid)
}

func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}
