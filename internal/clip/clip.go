// Package clip shortens text that is echoed or stored with a bound on its
// size (answer bodies, reasons, names in error messages) to valid UTF-8.
package clip

import (
	"strings"
	"unicode/utf8"
)

// UTF8 returns s as valid UTF-8 of at most limit bytes: invalid bytes
// become U+FFFD, except a rune cut short at the end of s, which is
// dropped, and the text stops before the first rune that does not fit.
// A valid s of at most limit bytes is returned as it is.
func UTF8(s string, limit int) string {
	if len(s) <= limit && utf8.ValidString(s) {
		return s
	}
	var out strings.Builder
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && size <= 1 && !utf8.FullRuneInString(s) {
			break
		}
		if out.Len()+utf8.RuneLen(r) > limit {
			break
		}
		out.WriteRune(r)
		s = s[size:]
	}
	return out.String()
}
