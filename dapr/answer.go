package dapr

import (
	"encoding/json"
	"net/http"
	"strings"
)

// Verdict is what a Dapr app's answer to a delivery asks for.
type Verdict int

// The verdicts of Dapr's delivery contract. They start at 1, so that the
// zero Verdict is none.
const (
	// Success: the event is delivered.
	Success Verdict = iota + 1
	// Retry: deliver the event again later.
	Retry
	// Drop: the app will not take the event (Dapr drops it, or sends it to
	// the deadLetterTopic; the sidecar dead-letters it).
	Drop
)

// String names the verdict as Dapr's status strings do.
func (v Verdict) String() string {
	switch v {
	case Success:
		return "SUCCESS"
	case Retry:
		return "RETRY"
	case Drop:
		return "DROP"
	}
	return "NONE"
}

// appAnswer is the body of a 2xx answer to a delivery.
type appAnswer struct {
	Status string `json:"status"`
}

// HTTPAnswer is the verdict of an HTTP app's answer, of status with body,
// to a delivery, by Dapr's table (postman/http): a 2xx whose body is not a
// JSON object with a string status, or whose status is "" or SUCCESS, is
// Success; RETRY is Retry; DROP is Drop; another status string is Retry.
// The status strings are matched without regard to case (Dapr would retry
// "success" for ever). 404 is Drop; every other status (3xx, 4xx, 5xx) is
// Retry. Safe for concurrent use.
func HTTPAnswer(status int, body []byte) Verdict {
	switch {
	case status == http.StatusNotFound:
		return Drop
	case status < 200 || status > 299:
		return Retry
	}
	var a appAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return Success
	}
	return statusVerdict(a.Status)
}

// statusVerdict is the verdict a status string of an answer asks for.
func statusVerdict(status string) Verdict {
	switch strings.ToUpper(status) {
	case "", "SUCCESS":
		return Success
	case "DROP":
		return Drop
	}
	return Retry
}
