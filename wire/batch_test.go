package wire

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeBatch(t *testing.T) {
	evs, err := DecodeBatch(readTestdata(t, "batch.json"), 2)
	if err != nil {
		t.Fatalf("DecodeBatch: %v", err)
	}
	if len(evs) != 2 || evs[0].ID() != "1" || evs[1].ID() != "2" {
		t.Fatalf("events = %v, want ids 1 and 2 in order", evs)
	}
	if string(evs[0].Data()) != `{"n": 1}` || string(evs[1].Data()) != "two" || evs[1].Subject() != "Euro € 😀" {
		t.Errorf("data %q %q subject %q", evs[0].Data(), evs[1].Data(), evs[1].Subject())
	}
	for i := range evs {
		if err := Validate(&evs[i]); err != nil {
			t.Errorf("Validate(events[%d]): %v", i, err)
		}
	}
}

func TestDecodeBatchNoLimit(t *testing.T) {
	body := "[" + strings.Repeat(obj("")+",", 20) + obj("") + "]"
	if evs, err := DecodeBatch([]byte(body), 0); err != nil || len(evs) != 21 {
		t.Errorf("DecodeBatch = %d events, %v; want 21", len(evs), err)
	}
}

func TestDecodeBatchErrors(t *testing.T) {
	good := obj("")
	tests := []struct {
		name, body   string
		index        int
		field, cause string
	}{
		{"one bad entry", "[" + good + "," + good + "," + obj(`"subject":""`) + "]", 2, "subject", "empty"},
		{"entry not an object", "[" + good + ",5]", 1, "", "JSON object"},
		{"entry syntax error", "[" + good + "," + good + `,{"id":]`, 2, "", "JSON"},
		{"duplicate in entry", "[" + obj(`"type":"u"`) + "]", 0, "type", "more than once"},
		{"empty array", "[]", -1, "", "at least one"},
		{"object", good, -1, "", "JSON array"},
		{"empty body", "", -1, "", "JSON array"},
		{"trailing garbage", "[" + good + "]]", -1, "", "nothing after"},
		{"unterminated", "[" + good, -1, "", "JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeBatch([]byte(tt.body), 3)
			wantFieldError(t, err, tt.index, tt.field, tt.cause)
		})
	}
}

func TestDecodeBatchTooMany(t *testing.T) {
	body := "[" + obj("") + "," + obj("") + "," + obj("") + "]"
	if _, err := DecodeBatch([]byte(body), 3); err != nil {
		t.Fatalf("DecodeBatch with 3 of 3: %v", err)
	}
	_, err := DecodeBatch([]byte(body), 2)
	if !errors.Is(err, ErrTooManyEvents) {
		t.Errorf("DecodeBatch with 3 of 2: error = %v, want ErrTooManyEvents", err)
	}
}
