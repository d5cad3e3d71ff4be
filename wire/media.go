package wire

import "strings"

// The media types of the CloudEvents JSON formats: one event, and a batch
// of events as a JSON array.
const (
	StructuredMediaType = "application/cloudevents+json"
	BatchMediaType      = "application/cloudevents-batch+json"
)

// MediaType returns the lower-cased media type of a Content-Type or
// datacontenttype value, without parameters and surrounding white space.
// It does not check the syntax: a value that is no media type gives what
// stands before its first ";".
func MediaType(contentType string) string {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// IsJSON reports whether a content type (parameters allowed, any case) is
// JSON: */json or */*+json.
func IsJSON(contentType string) bool {
	_, sub, ok := strings.Cut(MediaType(contentType), "/")
	return ok && (sub == "json" || hasSuffixType(sub, "+json"))
}

// IsText reports whether a content type (parameters allowed, any case) is
// text other than JSON: text/*, application/xml or */*+xml (RFC 7303).
func IsText(contentType string) bool {
	typ, sub, ok := strings.Cut(MediaType(contentType), "/")
	if !ok {
		return false
	}
	return typ == "text" || (typ == "application" && sub == "xml") || hasSuffixType(sub, "+xml")
}

// hasSuffixType reports whether the subtype sub ends in the structured
// syntax suffix suffix after a non-empty name.
func hasSuffixType(sub, suffix string) bool {
	return len(sub) > len(suffix) && strings.HasSuffix(sub, suffix)
}

// isCloudEventsFormat reports whether the media type mt names a
// CloudEvents format or batch format: application/cloudevents or
// application/cloudevents-batch, with or without a +suffix.
func isCloudEventsFormat(mt string) bool {
	for _, base := range [...]string{"application/cloudevents", "application/cloudevents-batch"} {
		if mt == base || strings.HasPrefix(mt, base+"+") {
			return true
		}
	}
	return false
}
