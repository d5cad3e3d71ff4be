package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/eventsidecar/eventsidecar/inject"
)

// sidecarImage is the default --sidecar-image of inject: the injector's
// own build. Set at build time with -ldflags "-X main.sidecarImage=IMG"
// to name a registry.
var sidecarImage = "eventsidecar:" + version

// serviceAccountNamespaceFile holds the namespace of the pod it runs in.
var serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// kubeTimeout bounds one request to the API server.
const kubeTimeout = 30 * time.Second

const injectUsage = `Usage:
  eventsidecar inject [--listen :8443] [--tls-cert-file F --tls-key-file F] [--sidecar-image IMG]

Serves the mutating admission webhook (POST /mutate, AdmissionReview v1) over
TLS, with GET /healthz and GET /readyz. With --tls-cert-file and
--tls-key-file it serves those files, reloading them when they change.
Without them it provisions its certificate: it keeps it in the Secret
--tls-secret (creating it when absent) and writes its CA into the caBundle
of the MutatingWebhookConfiguration --webhook-config.

Flags:
`

// hostList is the repeatable --cert-host flag.
type hostList []string

func (l *hostList) String() string { return strings.Join(*l, ",") }

func (l *hostList) Set(v string) error {
	if v == "" {
		return errors.New("empty host")
	}
	*l = append(*l, v)
	return nil
}

// injectCommand is a parsed inject command line.
type injectCommand struct {
	listen            string
	certFile, keyFile string
	image             string
	kubeconfig        string
	namespace         string
	service           string
	webhookConfig     string
	secret            string
	hosts             hostList
	logLevel          string
}

// runInject serves the admission webhook until SIGINT or SIGTERM; a
// second signal ends the process at once.
func runInject(args []string, stderr io.Writer) error {
	c, err := parseInject(args, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return c.run(ctx, stop, newLogger(c.logLevel, stderr))
}

func parseInject(args []string, stderr io.Writer) (*injectCommand, error) {
	c := &injectCommand{}
	fs := flag.NewFlagSet("inject", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), injectUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.listen, "listen", ":8443", "address to serve HTTPS on")
	fs.StringVar(&c.certFile, "tls-cert-file", "", "serving certificate, PEM (with --tls-key-file; reloaded when it changes)")
	fs.StringVar(&c.keyFile, "tls-key-file", "", "its private key, PEM (with --tls-cert-file)")
	fs.StringVar(&c.image, "sidecar-image", sidecarImage, "image of the injected sidecar, unless a pod's eventsidecar.io/image says otherwise")
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "provisioning: kubeconfig file (default: the in-cluster config)")
	fs.StringVar(&c.namespace, "namespace", "", "provisioning: the injector's namespace (default: $POD_NAMESPACE, else the service account's)")
	fs.StringVar(&c.service, "service", inject.DefaultService, "provisioning: the injector's Service, whose DNS names the certificate is for")
	fs.StringVar(&c.webhookConfig, "webhook-config", inject.DefaultWebhookConfig, "provisioning: the MutatingWebhookConfiguration whose caBundle is written")
	fs.StringVar(&c.secret, "tls-secret", inject.DefaultSecret, "provisioning: the Secret that keeps the certificate, shared by the replicas")
	fs.Var(&c.hosts, "cert-host", "provisioning: a further DNS name or IP address of the certificate, a `HOST` (repeatable)")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if msg := c.check(fs); msg != "" {
		fmt.Fprintf(stderr, "eventsidecar inject: %s\n\n", msg)
		fs.Usage()
		return nil, errUsage
	}
	return c, nil
}

// check returns what is wrong with the command line, "" when nothing is.
func (c *injectCommand) check(fs *flag.FlagSet) string {
	var level slog.Level
	switch {
	case fs.NArg() > 0:
		return fmt.Sprintf("unexpected argument %q", fs.Arg(0))
	case c.certFile != "" && c.keyFile == "":
		return "--tls-key-file is missing: give both --tls-cert-file and --tls-key-file, or neither to provision a certificate"
	case c.certFile == "" && c.keyFile != "":
		return "--tls-cert-file is missing: give both --tls-cert-file and --tls-key-file, or neither to provision a certificate"
	case c.image == "":
		return "--sidecar-image is empty"
	case level.UnmarshalText([]byte(c.logLevel)) != nil:
		return fmt.Sprintf("--log-level %q: want debug, info, warn or error", c.logLevel)
	}
	if err := checkListen(c.listen); err != nil {
		return fmt.Sprintf("--listen %q: %v", c.listen, err)
	}
	return ""
}

// checkListen wants HOST:PORT with a numeric port; HOST may be empty.
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

// run binds the listener, gets the certificate and serves until ctx ends,
// then calls stop (a second signal ends the process) and shuts down.
func (c *injectCommand) run(ctx context.Context, stop context.CancelFunc, log *slog.Logger) error {
	defer context.AfterFunc(ctx, func() {
		log.Info("shutting down", "cause", context.Cause(ctx).Error())
		stop()
	})()
	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", c.listen, err)
	}
	defer ln.Close()
	srv := &inject.Server{Handler: inject.NewHandler(inject.Options{SidecarImage: c.image, Log: log}), Log: log}
	g, gctx := errgroup.WithContext(ctx)
	mode := "files"
	if c.certFile != "" {
		r, err := inject.NewCertReloader(c.certFile, c.keyFile, log)
		if err != nil {
			return err
		}
		srv.GetCertificate = r.GetCertificate
	} else {
		p, err := c.provision(ctx, log)
		if err != nil {
			return err
		}
		srv.GetCertificate, srv.Ready, mode = p.GetCertificate, p.Ready, "provisioned"
		g.Go(func() error { return p.Run(gctx) })
	}
	log.Info("listening", "addr", ln.Addr().String(), "certificate", mode, "sidecar_image", c.image)
	g.Go(func() error { return srv.Serve(gctx, ln) })
	err = g.Wait()
	log.Info("stopped")
	return err
}

// provision gets the serving certificate from the cluster.
func (c *injectCommand) provision(ctx context.Context, log *slog.Logger) (*inject.Provisioned, error) {
	ns, err := podNamespace(c.namespace)
	if err != nil {
		return nil, err
	}
	cfg, err := kubeConfig(c.kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = "eventsidecar-inject/" + version
	cfg.Timeout = kubeTimeout
	client, err := inject.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	klog.SetSlogLogger(log)
	return inject.Provision(ctx, client, inject.ProvisionOptions{
		Namespace:     ns,
		Service:       c.service,
		Secret:        c.secret,
		WebhookConfig: c.webhookConfig,
		Hosts:         c.hosts,
		Log:           log,
	})
}

// podNamespace is flagValue, else $POD_NAMESPACE, else the namespace of
// the service account the pod runs as.
func podNamespace(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns, nil
	}
	b, err := os.ReadFile(serviceAccountNamespaceFile)
	if ns := strings.TrimSpace(string(b)); err == nil && ns != "" {
		return ns, nil
	}
	return "", errors.New("namespace unknown: give --namespace or set POD_NAMESPACE (or give --tls-cert-file and --tls-key-file)")
}

// kubeConfig reads the kubeconfig file at path, or the in-cluster config
// when path is "".
func kubeConfig(path string) (*rest.Config, error) {
	if path != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", path, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("in-cluster config (outside a cluster give --kubeconfig, or --tls-cert-file and --tls-key-file): %w", err)
	}
	return cfg, nil
}
