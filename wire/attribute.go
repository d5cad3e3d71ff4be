package wire

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// storeAttribute stores v, the string value of the attribute name (as its
// ce- header carries it, percent-decoded), in ec exactly as it stands:
// unlike sdk-go's setters it trims no white space. An empty subject, datacontenttype,
// dataschema or time leaves the attribute absent; any other name is an
// extension with the string value v, "" included. specversion must be
// "1.0", source and dataschema must parse as URI references and time as
// an RFC 3339 timestamp (either case of "T" and "Z"), and an extension's
// name must be one sdk-go's SetExtension takes. storeAttribute checks
// nothing more: events from a client go through setAttribute and Validate.
func storeAttribute(ec *event.EventContextV1, name, v string) error {
	switch name {
	case "specversion":
		if v != event.CloudEventsVersionV1 {
			return fmt.Errorf("specversion %q: want %q", v, event.CloudEventsVersionV1)
		}
	case "id":
		ec.ID = v
	case "type":
		ec.Type = v
	case "source":
		u, err := url.Parse(v)
		if err != nil {
			return fmt.Errorf("source: %w", err)
		}
		ec.Source = types.URIRef{URL: *u}
	case "subject", "datacontenttype", "dataschema", "time":
		if v == "" {
			return nil
		}
		return setOptional(ec, name, v)
	default:
		return ec.SetExtension(name, v)
	}
	return nil
}

// setOptional sets an optional context attribute to v, which is not empty.
func setOptional(ec *event.EventContextV1, name, v string) error {
	switch name {
	case "subject":
		ec.Subject = &v
	case "datacontenttype":
		ec.DataContentType = &v
	case "dataschema":
		u, err := url.Parse(v)
		if err != nil {
			return fmt.Errorf("dataschema: %w", err)
		}
		ec.DataSchema = &types.URI{URL: *u}
	case "time":
		t, err := time.Parse(time.RFC3339Nano, strings.ToUpper(v))
		if err != nil {
			return fmt.Errorf("time: %w", err)
		}
		ec.Time = &types.Timestamp{Time: t}
	}
	return nil
}

// setAttribute stores the string value v of the attribute name (already
// checked to be a valid name) in ec as storeAttribute does, as sent: unlike
// the sdk-go setters it does not trim white space. It first refuses what the
// model would lose (valueReason); a source, dataschema or time is parsed
// once, for both. It returns the reason or "".
func setAttribute(ec *event.EventContextV1, name, v string) string {
	switch {
	case name == "source":
		u, r := parseURIRef(v)
		if r == "" {
			ec.Source = types.URIRef{URL: *u}
		}
		return r
	case v == "" && (name == "dataschema" || name == "time"):
		return valueReason(name, v)
	case name == "dataschema":
		u, r := parseURIRef(v)
		if r == "" {
			ec.DataSchema = &types.URI{URL: *u}
		}
		return r
	case name == "time":
		t, r := parseTime(v)
		if r == "" {
			ec.Time = &types.Timestamp{Time: t}
		}
		return r
	}
	if r := valueReason(name, v); r != "" {
		return r
	}
	if err := storeAttribute(ec, name, v); err != nil {
		return err.Error()
	}
	return ""
}

// valueReason says why v cannot be the value of the attribute name, or
// "": a specversion other than "1.0", an empty optional attribute (the
// model cannot tell it from an absent one), a source or dataschema that is
// not a URI-reference (the model keeps only url.Parse's reading of it), a
// datacontenttype that is not a media type, a time that is not RFC 3339.
func valueReason(name, v string) string {
	switch name {
	case "specversion":
		if v != specVersion {
			return fmt.Sprintf("must be %q", specVersion)
		}
		return ""
	case "id", "type":
		return ""
	case "source":
		return uriRefReason(v)
	}
	switch {
	case v == "":
		return "must not be empty when present"
	case name == "datacontenttype":
		return mediaTypeReason(v)
	case name == "dataschema":
		return uriRefReason(v)
	case name == "time":
		_, r := parseTime(v)
		return r
	}
	return ""
}

// setExtension sets the extension name of ec to v, a value of a
// CloudEvents type.
func setExtension(ec *event.EventContextV1, name string, v any) {
	if ec.Extensions == nil {
		ec.Extensions = make(map[string]any)
	}
	ec.Extensions[name] = v
}

// newEvent wraps ec in an event whose data is body, or no data when body is
// empty: what event.New and setting the context give, without the context
// event.New makes.
func newEvent(ec *event.EventContextV1, body []byte) event.Event {
	ev := event.Event{Context: ec}
	if len(body) > 0 {
		ev.DataEncoded = body
	}
	return ev
}
