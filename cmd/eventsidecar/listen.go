package main

import (
	"context"
	"flag"
	"io"
	"net/http"
	"os/signal"
	"syscall"

	"github.com/eventsidecar/eventsidecar/internal/listen"
)

// runListen serves a debug webhook receiver that prints every delivery
// until SIGINT or SIGTERM.
func runListen(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("listen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c listen.Config
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "address to listen on (POST on any path is a delivery)")
	fs.StringVar(&c.Secret, "secret", "", `Standard Webhooks secret "whsec_<base64>": verify signatures, answer 401 when one does not verify`)
	fs.IntVar(&c.Status, "status", http.StatusOK, "HTTP status to answer every delivery with")
	fs.BoolVar(&c.JSON, "json", false, "print one JSON object per delivery")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || c.Status < 200 || c.Status > 599 {
		fs.Usage()
		return errUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return listen.Run(ctx, stop, c, stdout, stderr)
}
