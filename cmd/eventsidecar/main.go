// Command eventsidecar is the sidecar: `run` serves the HTTP API over NATS
// JetStream (the embedded server when no broker is configured) and delivers
// subscribed events; `publish` sends one event through a running sidecar;
// `dlq` lists, replays and purges dead letters through its admin API;
// `listen` is a debug webhook receiver (package internal/listen);
// `version` prints the build. This package only parses flags, loads the
// configuration, sets up logging and handles signals; package
// internal/daemon wires the sidecar.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

const usage = `eventsidecar: durable CloudEvents over HTTP on localhost, stored in NATS JetStream.

Usage:
  eventsidecar [run] [--config FILE] [--log-level L] [--health-listen ADDR]
                                           run the sidecar (the default command)
  eventsidecar publish --topic T [--type X --source S] [DATA | -]
                                           publish one event through a running sidecar
  eventsidecar listen [--addr 127.0.0.1:8080] [--secret whsec_...] [--status CODE] [--json]
                                           a debug webhook receiver: prints each delivery
  eventsidecar dlq list|replay|purge --subscription NAME [--limit N] [--id ID]...
                                           list, replay or purge dead letters through a running sidecar
  eventsidecar inject [--listen :8443] [--tls-cert-file F --tls-key-file F] [--sidecar-image IMG]
                                           the Kubernetes admission webhook that injects the sidecar
  eventsidecar version                     print version, commit and Go version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && (isHelp(args[0]) || args[0] != "" && args[0][0] != '-') {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "run":
		err = runDaemon(args, stderr)
	case "publish":
		err = runPublish(args, stdin, stdout, stderr)
	case "listen":
		err = runListen(args, stdout, stderr)
	case "dlq":
		err = runDLQ(args, stdout, stderr)
	case "inject":
		err = runInject(args, stderr)
	case "version":
		fmt.Fprintf(stdout, "eventsidecar %s (commit %s, %s)\n", version, commit, runtime.Version())
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "eventsidecar: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "eventsidecar %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

// isHelp reports whether arg asks for the command list rather than for
// the default command's flags.
func isHelp(arg string) bool {
	return arg == "help" || arg == "-h" || arg == "-help" || arg == "--help"
}

// errUsage marks a command line the flag package already explained.
var errUsage = errors.New("usage")

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}
