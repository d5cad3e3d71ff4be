// Command imagebuild builds the eventsidecar container image without a
// Docker daemon or a registry: it cross-compiles ./cmd/eventsidecar as a
// static binary (CGO_ENABLED=0) and writes a Docker-loadable tarball of an
// image with no base, one layer, a non-root user (65532) and no shell.
// The same commit and inputs always give the same image digest.
//
// Usage, from anywhere inside the module:
//
//	go run ./internal/imagebuild [--out eventsidecar-image.tar] [--tag eventsidecar:dev]
//	    [--version dev] [--commit C] [--arch amd64|arm64]
//	    [--ca-certs /etc/ssl/certs/ca-certificates.crt]
//	docker load -i eventsidecar-image.tar
//
// File times and the image's creation time are SOURCE_DATE_EPOCH (seconds
// since 1970) when it is set, else the Unix epoch itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run builds the image the command line asks for, prints what it wrote and
// returns the exit code: 0, 1 when the build fails, 2 for a bad command line.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "imagebuild: %v\n", err)
		return 2
	}
	res, err := Build(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "imagebuild: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "tag:      %s\ndigest:   %s\nimage id: %s\nwrote:    %s\n",
		res.Tag, res.Digest, res.ImageID, res.Path)
	return 0
}

// errUsage marks a command line the flag package has already explained.
var errUsage = errors.New("usage")

// parseOptions reads the flags and SOURCE_DATE_EPOCH into Options.
func parseOptions(args []string, stderr io.Writer) (Options, error) {
	var o Options
	fs := flag.NewFlagSet("imagebuild", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Out, "out", "eventsidecar-image.tar", "`path` of the image tarball to write (relative to the current directory)")
	fs.StringVar(&o.Tag, "tag", "eventsidecar:dev", "image `reference` recorded in the tarball, shown by docker load")
	fs.StringVar(&o.Version, "version", "dev", "version stamped into the binary and the image label")
	fs.StringVar(&o.Commit, "commit", "", "commit stamped into the binary (default: git rev-parse --short HEAD, else \"unknown\")")
	fs.StringVar(&o.Arch, "arch", "amd64", "target architecture: amd64 or arm64")
	fs.StringVar(&o.CACerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "PEM bundle of CA certificates to put in the image")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, errUsage
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	epoch, err := sourceDateEpoch(os.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		return o, err
	}
	o.Epoch = epoch
	return o, nil
}
