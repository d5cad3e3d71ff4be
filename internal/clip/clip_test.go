package clip

import "testing"

func TestUTF8(t *testing.T) {
	tests := []struct {
		name, in string
		limit    int
		want     string
	}{
		{"fits", "héllo", 10, "héllo"},
		{"fits exactly", "héllo", 6, "héllo"},
		{"cut before a rune that does not fit", "ab€", 4, "ab"},
		{"cut at a rune boundary", "aé€x", 6, "aé€"},
		{"rune cut short at the end", "ab\xe2\x82", 10, "ab"},
		{"invalid byte replaced", "a\xffb", 10, "a\uFFFDb"},
		{"replacement counts its 3 bytes", "a\xffb", 3, "a"},
		{"zero limit", "abc", 0, ""},
		{"empty", "", 10, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := UTF8(tt.in, tt.limit); got != tt.want {
				t.Errorf("UTF8(%q, %d) = %q, want %q", tt.in, tt.limit, got, tt.want)
			}
		})
	}
}
