package wire

// maxScanDepth bounds the nesting jsonScan follows; deeper JSON is left to
// encoding/json (whose own bound is 10,000).
const maxScanDepth = 1000

// jsonScan reads JSON (RFC 8259) without decoding it, to split an array
// into its elements and an object into its members in one pass. It accepts
// only valid JSON, and nothing that encoding/json refuses (like
// encoding/json it does not check the UTF-8 of strings): when it reports
// false, the caller has encoding/json read the input, for its error. It is
// used by one goroutine.
type jsonScan struct {
	b     []byte
	i     int // the next byte to read
	depth int
}

// space skips white space.
func (s *jsonScan) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// at reports whether the next byte is c.
func (s *jsonScan) at(c byte) bool {
	return s.i < len(s.b) && s.b[s.i] == c
}

// end skips white space and reports whether the input ends there.
func (s *jsonScan) end() bool {
	s.space()
	return s.i == len(s.b)
}

// value skips one value.
func (s *jsonScan) value() bool {
	if s.i >= len(s.b) {
		return false
	}
	switch s.b[s.i] {
	case '"':
		return s.str()
	case '{', '[':
		return s.container(nil)
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	}
	return s.number()
}

// container skips the array or object that starts at the next byte,
// calling each, when not nil, with every element (name nil) or member
// (name quoted, as sent) and its value, both sharing the input's memory.
func (s *jsonScan) container(each func(name, value []byte)) bool {
	closing, object := byte(']'), s.b[s.i] == '{'
	if object {
		closing = '}'
	}
	if s.depth++; s.depth > maxScanDepth {
		return false
	}
	s.i++
	s.space()
	if s.at(closing) {
		s.i++
		s.depth--
		return true
	}
	for {
		var name []byte
		if object {
			start := s.i
			if !s.str() {
				return false
			}
			name = s.b[start:s.i]
			if s.space(); !s.at(':') {
				return false
			}
			s.i++
			s.space()
		}
		start := s.i
		if !s.value() {
			return false
		}
		if each != nil {
			each(name, s.b[start:s.i])
		}
		s.space()
		switch {
		case s.at(','):
			s.i++
			s.space()
		case s.at(closing):
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// str skips a string.
func (s *jsonScan) str() bool {
	if !s.at('"') {
		return false
	}
	for i := s.i + 1; i < len(s.b); i++ {
		switch c := s.b[i]; {
		case c == '"':
			s.i = i + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			n := escapeLen(s.b[i+1:])
			if n == 0 {
				return false
			}
			i += n
		}
	}
	return false
}

// escapeLen is the length of the escape sequence at the start of b (after
// its backslash), or 0 when it is none.
func escapeLen(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	switch b[0] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 1
	case 'u':
		if len(b) < 5 {
			return 0
		}
		for _, c := range b[1:5] {
			if !isHex(c) {
				return 0
			}
		}
		return 5
	}
	return 0
}

// literal skips lit (true, false or null).
func (s *jsonScan) literal(lit string) bool {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// number skips a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jsonScan) number() bool {
	if s.at('-') {
		s.i++
	}
	switch {
	case s.at('0'):
		s.i++
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		s.digits()
	default:
		return false
	}
	if s.at('.') {
		s.i++
		if !s.digits() {
			return false
		}
	}
	if s.at('e') || s.at('E') {
		s.i++
		if s.at('+') || s.at('-') {
			s.i++
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits skips digits and reports whether there was one.
func (s *jsonScan) digits() bool {
	start := s.i
	for s.i < len(s.b) && isDigit(s.b[s.i]) {
		s.i++
	}
	return s.i > start
}

// scanAll scans b as exactly one array or object (white space around it
// allowed), calling each as container does; false means it is not valid
// JSON, or not an array or object, or nested too deeply for jsonScan.
func scanAll(b []byte, each func(name, value []byte)) bool {
	s := jsonScan{b: b}
	s.space()
	if !s.at('[') && !s.at('{') {
		return false
	}
	return s.container(each) && s.end()
}
