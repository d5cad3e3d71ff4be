package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/headers"
)

// publishTimeout bounds the publish command's request.
const publishTimeout = 30 * time.Second

// runPublish sends one event to a running sidecar: raw mode (the sidecar
// makes the id and source) unless --source is given, then binary mode with
// a fresh id. DATA "-" reads the data from stdin.
func runPublish(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	topic := fs.String("topic", "", "topic to publish to (required)")
	typ := fs.String("type", "", "CloudEvents type (default eventsidecar.raw)")
	source := fs.String("source", "", "CloudEvents source (default: the sidecar's /eventsidecar/<app_id>)")
	contentType := fs.String("content-type", "application/json", "the data's media type")
	key := fs.String("idempotency-key", "", "Idempotency-Key header")
	configPath := fs.String("config", "", "the sidecar's config file, for its address and API token")
	addr := fs.String("addr", "", "the sidecar's HTTP address (default: http.listen of --config, else 127.0.0.1:3600)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *topic == "" || fs.NArg() > 1 {
		fs.Usage()
		return errUsage
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		return err
	}
	data, err := publishData(fs.Arg(0), stdin)
	if err != nil {
		return err
	}
	if *addr == "" {
		*addr = cfg.HTTP.Listen
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+*addr+"/v1/publish/"+url.PathEscape(*topic), bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", *contentType)
	setEventHeaders(req.Header, *typ, *source)
	if *key != "" {
		req.Header.Set("Idempotency-Key", *key)
	}
	token := cfg.HTTP.APIToken
	if t := os.Getenv("EVENTSIDECAR_API_TOKEN"); t != "" {
		token = t
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return send(req, stdout)
}

func publishData(arg string, stdin io.Reader) ([]byte, error) {
	if arg != "-" {
		return []byte(arg), nil
	}
	data, err := io.ReadAll(stdin)
	if err != nil {
		return nil, fmt.Errorf("read stdin: %w", err)
	}
	return data, nil
}

func setEventHeaders(h http.Header, typ, source string) {
	if source == "" {
		if typ != "" {
			h.Set("ce-type", headers.Encode(typ))
		}
		return
	}
	if typ == "" {
		typ = "eventsidecar.raw"
	}
	h.Set("ce-specversion", "1.0")
	h.Set("ce-id", uuid.Must(uuid.NewV7()).String())
	h.Set("ce-source", headers.Encode(source))
	h.Set("ce-type", headers.Encode(typ))
}

func send(req *http.Request, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("post %s: %w", req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
	}
	_, err = stdout.Write(body)
	return err
}
