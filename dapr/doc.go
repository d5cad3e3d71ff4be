// Package dapr is Dapr's pub/sub model as the sidecar serves it (contract
// §9): the one table of Dapr's error codes with their HTTP and gRPC
// answers (errors.go), a request's metadata and what it asks for
// (metadata.go), the rules that turn a Dapr publish into the event the
// sidecar stores, which stays an ordinary CloudEvent (envelope.go), and
// the subscription side: the app's subscriptions, programmatic
// (subscription.go) and declarative (resources.go), their routing rules
// in CEL (rules.go), the envelope an app is delivered (deliver.go) and
// what its answer asks for (answer.go), and a gRPC app's AppCallback
// messages (proto.go). It is shared by the Dapr API
// (package daprapi) and the delivery of Dapr subscriptions (package
// egress), and knows nothing of HTTP routing, gRPC servers, brokers or
// either of them.
package dapr
