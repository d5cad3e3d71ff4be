package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// daprPubSub is the Dapr pub/sub component name the Dapr scenarios
// publish to (the sidecar's default dapr.pubsub_names).
const daprPubSub = "pubsub"

// daprPublishPath is the sidecar's Dapr publish URL of Topic.
func daprPublishPath(sc *sidecar) string {
	return sc.base + "/v1.0/publish/" + daprPubSub + "/" + Topic
}

// daprBulkPath is the sidecar's Dapr bulk publish URL of Topic.
func daprBulkPath(sc *sidecar) string {
	return sc.base + "/v1.0-alpha1/publish/bulk/" + daprPubSub + "/" + Topic
}

// daprRequest is a Dapr publish of eventData as a JSON object, as a Dapr
// SDK sends one: the sidecar wraps it in a new CloudEvent.
func daprRequest(ctx context.Context, url string, _ int, _ uint64) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(eventData))
	if err != nil {
		return nil, fmt.Errorf("bench: new request: %w", err)
	}
	req.Header.Set("Content-Type", dataType)
	return req, nil
}

// daprEntry is one entry of a Dapr bulk publish.
type daprEntry struct {
	EntryID     string          `json:"entryId"`
	Event       json.RawMessage `json:"event"`
	ContentType string          `json:"contentType"`
}

// daprBulkOf builds Dapr bulk publishes of size entries of data.
func daprBulkOf(size int, data []byte) RequestFunc {
	return func(ctx context.Context, url string, _ int, _ uint64) (*http.Request, error) {
		entries := make([]daprEntry, size)
		for i := range entries {
			entries[i] = daprEntry{EntryID: strconv.Itoa(i), Event: data, ContentType: dataType}
		}
		body, err := json.Marshal(entries)
		if err != nil {
			return nil, fmt.Errorf("bench: encode bulk: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("bench: new request: %w", err)
		}
		req.Header.Set("Content-Type", "application/json")
		return req, nil
	}
}
