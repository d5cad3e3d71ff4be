// Package eventsidecarv1 is the generated Go code of the eventsidecar gRPC
// API (api/eventsidecar/v1/eventsidecar.proto): its messages, the
// EventSidecar client and the server interface. Events are sdk-go's
// *pb.CloudEvent. Regenerate it as api/README.md says; do not edit the
// .pb.go files. Generated clients are safe for concurrent use; messages are
// not.
package eventsidecarv1
