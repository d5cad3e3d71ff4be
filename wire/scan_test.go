package wire

import (
	"encoding/json"
	"reflect"
	"regexp"
	"testing"
)

// The fast paths of the decoders must answer exactly as the slow ones they
// stand in for: jsonScan's readObject and splitArray as encoding/json's
// readObjectJSON and splitArrayJSON, isRFC3339 as the regular expression of
// RFC 3339's production, isPlainMediaType only what mime.ParseMediaType
// takes as a media type.

// scanSeeds are JSON texts, valid and not, at the edges of the grammar.
var scanSeeds = []string{
	`{}`, `[]`, ` { "a" : 1 , "b" : [ true , false , null ] } `, `{"a":{"b":{"c":[]}}}`,
	`{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"\ud800":1}`, "{\"\xff\":1}", `{"a":"\u00e9\n\"\\\/\b\f\r\t"}`,
	`{"a":-0.5e+10,"b":0,"c":-1,"d":1E5,"e":12.25}`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":-}`, `{"a":1e}`,
	`{"a":tru}`, `{"a":nul}`, `{"a":"\x"}`, `{"a":"\u12"}`, "{\"a\":\"\x01\"}", `{"a" 1}`, `{"a":1,}`, `[1,]`,
	`[1 2]`, `{"a":1}}`, `{"a":1} x`, `[{"a":1},{"b":2},3,"x"]`, `[`, `{`, `"x"`, `5`, ``, `  `, "\ufeff{}",
	`{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"x":[1,{"y":null}]}}`,
}

func FuzzReadObject(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, gotErr := readObject(body)
		want, wantErr := readObjectJSON(body)
		if !reflect.DeepEqual(gotErr, wantErr) || !equalMembers(got, want) {
			t.Fatalf("readObject(%q) = %v, %v; encoding/json gives %v, %v", body, got, gotErr, want, wantErr)
		}
	})
}

func FuzzSplitArray(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s), 2)
	}
	f.Fuzz(func(t *testing.T, body []byte, maxEvents int) {
		got, gotErr := splitArray(body, maxEvents)
		want, wantErr := splitArrayJSON(body, maxEvents)
		if !reflect.DeepEqual(gotErr, wantErr) || !equalRaws(got, want) {
			t.Fatalf("splitArray(%q, %d) = %q, %v; encoding/json gives %q, %v", body, maxEvents, got, gotErr, want, wantErr)
		}
	})
}

func TestScanSeeds(t *testing.T) {
	for _, s := range scanSeeds {
		gotValid := scanAll([]byte(s), nil)
		var v any
		if wantValid := json.Unmarshal([]byte(s), &v) == nil && (s != "" && (firstJSON(s) == '[' || firstJSON(s) == '{')); gotValid != wantValid {
			t.Errorf("scanAll(%q) = %v, want %v", s, gotValid, wantValid)
		}
	}
}

// firstJSON is the first byte of s that is not JSON white space, or 0.
func firstJSON(s string) byte {
	if i := firstByte([]byte(s)); i < len(s) {
		return s[i]
	}
	return 0
}

func equalMembers(a, b []member) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].name != b[i].name || string(a[i].raw) != string(b[i].raw) {
			return false
		}
	}
	return true
}

func equalRaws(a, b []json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if string(a[i]) != string(b[i]) {
			return false
		}
	}
	return true
}

// rfc3339 is RFC 3339's date-time production as a regular expression,
// which isRFC3339 stands in for.
var rfc3339 = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$`)

func FuzzIsRFC3339(f *testing.F) {
	for _, s := range []string{
		"2024-05-01T12:00:00Z", "2024-05-01t12:00:00.123456789z", "2024-05-01T12:00:00+02:00", "2024-05-01T12:00:00-0200",
		"2024-05-01T12:00:00.Z", "2024-05-01T12:00:00,5Z", "2024-05-01 12:00:00Z", "2024-05-01T12:00:00", "2024-05-01T12:00:00Z\n",
		"99999-05-01T12:00:00Z", "2024-5-01T12:00:00Z", "", "2024-05-01T12:00:00+02:00x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isRFC3339(s), rfc3339.MatchString(s); got != want {
			t.Fatalf("isRFC3339(%q) = %v, the expression says %v", s, got, want)
		}
	})
}

func FuzzIsPlainMediaType(f *testing.F) {
	for _, s := range []string{"application/json", "text/plain; charset=utf-8", "a/b/c", "/json", "json/", "x", "a b/c", "a/b ", "A/B", "a/b+json", "a/{b}", "é/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ct string) {
		if !isPlainMediaType(ct) {
			return
		}
		if r := parsedMediaTypeReason(ct); r != "" {
			t.Fatalf("isPlainMediaType(%q), but mime.ParseMediaType's reading says %q", ct, r)
		}
	})
}
