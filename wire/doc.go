// Package wire is what a CloudEvent looks like on the wire, in one place:
// the CloudEvents formats and bindings the sidecar reads and writes, for
// ingress, egress and broker alike. It knows nothing of topics, brokers or
// servers; it turns bytes and headers into events and back.
//
// It holds, one file each:
//
//   - header.go: attribute headers ("ce-" + name, HeaderPrefix), their
//     values percent-encoded as the CloudEvents HTTP binding prescribes
//     (§3.1.3.2) and cloudevents/sdk-go leaves out (EncodeHeader,
//     DecodeHeader), and every attribute of an event in its canonical
//     string form (EachAttribute);
//   - attribute.go: setting an attribute from its string value as sent,
//     without trimming, refusing what the event model would lose;
//   - media.go: media types of Content-Type and datacontenttype values
//     (MediaType, IsJSON, IsText) and of the JSON formats
//     (StructuredMediaType, BatchMediaType);
//   - mode.go: how an HTTP request carries its events (Mode, DetectMode);
//   - raw.go, binary.go, structured.go, batch.go: the HTTP decoders of each
//     mode (DecodeRaw, DecodeBinary, DecodeStructured, DecodeBatch) and the
//     writers of the binary and structured modes (EachBinaryHeader,
//     SetBinaryHeaders, EncodeStructured); json.go: the JSON values they read and write;
//   - proto.go: the CloudEvents protobuf format, as the gRPC API receives
//     it (DecodeProto);
//   - validate.go: the event rules of the spec, to the letter (Validate);
//   - nats.go: the CloudEvents NATS binding, binary content mode, in which
//     the stream stores every event (EncodeNATS, DecodeNATS);
//   - errors.go: FieldError, which names the attribute, header or member
//     that is wrong, and the sentinel errors.
//
// The decoders are strict where sdk-go is lax: they refuse what the event
// model would lose or the spec forbids, with a *FieldError saying which
// field and why. DecodeNATS reads what the sidecar stored, and what other
// CloudEvents clients write to NATS, as sdk-go does. Every function is
// safe for concurrent use and keeps nothing of its arguments, except that
// a decoded event may share its data with the body it came from (each
// decoder says whether it does).
package wire
