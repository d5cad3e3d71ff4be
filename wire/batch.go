package wire

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
)

// DecodeBatch decodes a JSON array of structured events (the body of an
// application/cloudevents-batch+json request), each as DecodeStructured
// does; it does not validate them. A batch of more than maxEvents events
// (maxEvents <= 0: no limit) is an error wrapping ErrTooManyEvents; an
// empty array, or a body that is not one JSON array, is a *FieldError with
// Index -1; an entry's error is a *FieldError whose Index is its position.
// The events' data may share body's memory; the caller must not modify
// body afterwards. DecodeBatch is safe for concurrent use.
func DecodeBatch(body []byte, maxEvents int) ([]event.Event, error) {
	raws, err := splitArray(body, maxEvents)
	if err != nil {
		return nil, err
	}
	events := make([]event.Event, len(raws))
	for i, raw := range raws {
		ev, ferr := decodeObject(raw)
		if ferr != nil {
			ferr.Index = i
			return nil, ferr
		}
		events[i] = ev
	}
	return events, nil
}

// splitArray returns the elements of the JSON array body, undecoded. Valid
// JSON is split by jsonScan, in one pass, and the elements share body's
// memory; anything else is read by encoding/json (splitArrayJSON), which
// says what is wrong with it.
func splitArray(body []byte, maxEvents int) ([]json.RawMessage, error) {
	if start := firstByte(body); start == len(body) || body[start] != '[' {
		return splitArrayJSON(body, maxEvents)
	}
	var raws []json.RawMessage
	if !scanAll(body, func(_, value []byte) { raws = append(raws, value) }) {
		return splitArrayJSON(body, maxEvents)
	}
	if maxEvents > 0 && len(raws) > maxEvents {
		return nil, tooManyEvents(maxEvents)
	}
	if len(raws) == 0 {
		return nil, emptyBatch()
	}
	return raws, nil
}

// splitArrayJSON is splitArray with encoding/json's decoder, for what
// jsonScan does not read: JSON that is not valid, or not an array, or
// nested too deeply.
func splitArrayJSON(body []byte, maxEvents int) ([]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, jsonErr(-1, err, "the batch must be a JSON array of events")
	}
	var raws []json.RawMessage
	for dec.More() {
		if maxEvents > 0 && len(raws) == maxEvents {
			return nil, tooManyEvents(maxEvents)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, jsonErr(len(raws), err, "")
		}
		raws = append(raws, raw)
	}
	if ferr := closeJSON(dec, "batch"); ferr != nil {
		return nil, ferr
	}
	if len(raws) == 0 {
		return nil, emptyBatch()
	}
	return raws, nil
}

func tooManyEvents(maxEvents int) error {
	return fmt.Errorf("wire: batch holds more than %d events: %w", maxEvents, ErrTooManyEvents)
}

func emptyBatch() *FieldError {
	return fieldErr("", "the batch must hold at least one event")
}
