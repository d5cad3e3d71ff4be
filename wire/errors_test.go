package wire

import (
	"errors"
	"strings"
	"testing"
)

// wantFieldError fails unless err is a *FieldError for index and field
// whose reason is meaningful and contains reasonHas.
func wantFieldError(t *testing.T, err error, index int, field, reasonHas string) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error = %v (%T), want *FieldError", err, err)
	}
	if fe.Index != index || fe.Field != field {
		t.Errorf("error = %q: index %d field %q, want index %d field %q", fe, fe.Index, fe.Field, index, field)
	}
	if len(fe.Reason) < 8 || !strings.Contains(fe.Reason, reasonHas) {
		t.Errorf("reason = %q, want a meaningful reason containing %q", fe.Reason, reasonHas)
	}
}

func TestFieldErrorString(t *testing.T) {
	tests := []struct {
		err  FieldError
		want string
	}{
		{FieldError{Index: -1, Field: "source", Reason: "must be a URI-reference"}, "source: must be a URI-reference"},
		{FieldError{Index: 3, Field: "source", Reason: "must be a URI-reference"}, "[3] source: must be a URI-reference"},
		{FieldError{Index: 0, Reason: "an event must be a JSON object"}, "[0] an event must be a JSON object"},
		{*fieldErr(strings.Repeat("a", 63)+"€", "x"), strings.Repeat("a", 63) + "…: x"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}
