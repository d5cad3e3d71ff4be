package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

const dlqUsage = `Usage:
  eventsidecar dlq list   --subscription NAME [--limit N] [--config FILE] [--addr HOST:PORT]
  eventsidecar dlq replay --subscription NAME [--id ID]... [--config FILE] [--addr HOST:PORT]
  eventsidecar dlq purge  --subscription NAME [--id ID]... [--config FILE] [--addr HOST:PORT]

replay and purge act on every dead letter of the subscription unless --id is given.
`

// idList is a repeatable string flag.
type idList []string

func (l *idList) String() string { return strings.Join(*l, ",") }

func (l *idList) Set(v string) error {
	if v == "" {
		return fmt.Errorf("empty id")
	}
	*l = append(*l, v)
	return nil
}

// dlqCommand is a parsed dlq command line.
type dlqCommand struct {
	action       string
	subscription string
	configPath   string
	addr         string
	limit        int
	ids          idList
}

// runDLQ lists, replays or purges a subscription's dead letters through a
// running sidecar's admin API and prints its JSON answer.
func runDLQ(args []string, stdout, stderr io.Writer) error {
	c, err := parseDLQ(args, stderr)
	if err != nil {
		return err
	}
	req, err := c.request()
	if err != nil {
		return err
	}
	return send(req, stdout)
}

func parseDLQ(args []string, stderr io.Writer) (*dlqCommand, error) {
	if len(args) == 0 {
		fmt.Fprint(stderr, dlqUsage)
		return nil, errUsage
	}
	c := &dlqCommand{action: args[0]}
	fs := flag.NewFlagSet("dlq "+c.action, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), dlqUsage+"\nFlags of dlq "+c.action+":\n")
		fs.PrintDefaults()
	}
	switch c.action {
	case "list":
		fs.IntVar(&c.limit, "limit", 0, "at most this many dead letters, oldest first, 1 to 1000 (default: the sidecar's, 100)")
	case "replay", "purge":
		fs.Var(&c.ids, "id", "the event id of a dead letter (repeatable; default: all)")
	case "help", "-h", "--help":
		fmt.Fprint(stderr, dlqUsage)
		return nil, flag.ErrHelp
	default:
		fmt.Fprintf(stderr, "eventsidecar dlq: unknown action %q\n\n%s", c.action, dlqUsage)
		return nil, errUsage
	}
	fs.StringVar(&c.subscription, "subscription", "", "the subscription's name (required)")
	fs.StringVar(&c.configPath, "config", "", "the sidecar's config file, for its address and API token")
	fs.StringVar(&c.addr, "addr", "", "the sidecar's HTTP address (default: http.listen of --config, else 127.0.0.1:3600)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return nil, err
	}
	if c.subscription == "" || fs.NArg() > 0 || c.limit < 0 {
		fs.Usage()
		return nil, errUsage
	}
	return c, nil
}

// request is the admin API request that carries out c.
func (c *dlqCommand) request() (*http.Request, error) {
	path := "/v1/subscriptions/" + url.PathEscape(c.subscription) + "/deadletters"
	switch c.action {
	case "list":
		if c.limit > 0 {
			path += "?limit=" + strconv.Itoa(c.limit)
		}
		return apiRequest(http.MethodGet, c.configPath, c.addr, path, nil)
	case "replay":
		body, err := json.Marshal(replayBody(c.ids))
		if err != nil {
			return nil, fmt.Errorf("encode replay request: %w", err)
		}
		req, err := apiRequest(http.MethodPost, c.configPath, c.addr, path+"/replay", bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	default:
		if len(c.ids) > 0 {
			path += "?" + url.Values{"id": c.ids}.Encode()
		}
		return apiRequest(http.MethodDelete, c.configPath, c.addr, path, nil)
	}
}

// replayBody is {} for all dead letters, else {"ids":[...]}.
func replayBody(ids []string) map[string][]string {
	if len(ids) == 0 {
		return map[string][]string{}
	}
	return map[string][]string{"ids": ids}
}
