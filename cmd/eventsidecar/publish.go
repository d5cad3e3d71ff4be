package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/wire"
)

// requestTimeout bounds one request of the client commands (publish, dlq).
const requestTimeout = 30 * time.Second

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
	data, err := publishData(fs.Arg(0), stdin)
	if err != nil {
		return err
	}
	req, err := apiRequest(http.MethodPost, *configPath, *addr, "/v1/publish/"+url.PathEscape(*topic), bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", *contentType)
	setEventHeaders(req.Header, *typ, *source)
	if *key != "" {
		req.Header.Set("Idempotency-Key", *key)
	}
	return send(req, stdout)
}

// apiRequest builds a request to a running sidecar's HTTP API: at addr, or
// else at http.listen of the config file at configPath (the defaults when
// ""), with the API token of EVENTSIDECAR_API_TOKEN or else http.api_token.
func apiRequest(method, configPath, addr, path string, body io.Reader) (*http.Request, error) {
	cfg, err := config.Load(configPath)
	if err != nil {
		return nil, err
	}
	if addr == "" {
		addr = cfg.HTTP.Listen
	}
	req, err := http.NewRequest(method, "http://"+addr+path, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	token := cfg.HTTP.APIToken
	if t := os.Getenv("EVENTSIDECAR_API_TOKEN"); t != "" {
		token = t
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req, nil
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
			h.Set("ce-type", wire.EncodeHeader(typ))
		}
		return
	}
	if typ == "" {
		typ = wire.RawType
	}
	h.Set("ce-specversion", "1.0")
	h.Set("ce-id", uuid.Must(uuid.NewV7()).String())
	h.Set("ce-source", wire.EncodeHeader(source))
	h.Set("ce-type", wire.EncodeHeader(typ))
}

// send does req within requestTimeout and copies a 2xx answer to stdout;
// any other answer is an error with its status and the problem's detail.
func send(req *http.Request, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("%s %s: %w", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", resp.Status, problemDetail(body))
	}
	_, err = stdout.Write(body)
	return err
}

// problemDetail is the detail of a problem JSON answer, else the answer.
func problemDetail(body []byte) string {
	var p struct {
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &p) == nil && p.Detail != "" {
		return p.Detail
	}
	return string(bytes.TrimSpace(body))
}
