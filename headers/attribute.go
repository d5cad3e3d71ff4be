package headers

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// Set stores v, the value of the attribute name as its ce- header carries
// it (percent-decoded), in ec exactly as it stands: unlike sdk-go's
// setters it trims no white space. An empty subject, datacontenttype,
// dataschema or time leaves the attribute absent; any other name is an
// extension with the string value v, "" included. specversion must be
// "1.0", source and dataschema must parse as URI references and time as
// an RFC 3339 timestamp (either case of "T" and "Z"), and an extension's
// name must be one sdk-go's SetExtension takes. Set checks nothing more:
// a caller that takes events from a client validates them too.
func Set(ec *event.EventContextV1, name, v string) error {
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
