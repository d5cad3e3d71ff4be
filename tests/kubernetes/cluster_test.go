package kubernetes_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Deadlines of the control plane: generous, for a slow and busy machine.
const (
	etcdStartTimeout      = 2 * time.Minute
	apiserverStartTimeout = 4 * time.Minute
	controllersTimeout    = 3 * time.Minute
)

// cluster is a control plane of one etcd, one kube-apiserver and one
// kube-controller-manager, all on 127.0.0.1. It is shared by the tests of
// the package, which run one after the other.
type cluster struct {
	dir             string // certificates, keys, kubeconfig, data and logs
	ca              *testCA
	caFile          string
	apiURL          string // https://127.0.0.1:PORT
	adminKubeconfig string
	config          *rest.Config // the admin's (group system:masters)
	client          kubernetes.Interface
	procs           []*process
}

var shared struct {
	once    sync.Once
	cluster *cluster
	err     error
}

// sharedCluster starts the cluster on first use and returns it.
func sharedCluster(t *testing.T) *cluster {
	t.Helper()
	shared.once.Do(func() {
		shared.cluster, shared.err = startCluster()
	})
	if shared.err != nil {
		t.Fatalf("start the cluster: %v", shared.err)
	}
	return shared.cluster
}

// stopSharedCluster stops the cluster if a test started it, printing the
// tail of each log when the tests failed, and removes its files.
func stopSharedCluster(failed bool) {
	c := shared.cluster
	if c == nil {
		return
	}
	c.stop(failed || shared.err != nil)
}

// startCluster starts etcd, then the API server, then the controller
// manager, each once the one before is ready. On an error the cluster
// returned, if not nil, holds what was started, for stop.
func startCluster() (*cluster, error) {
	dir, err := os.MkdirTemp("", "eventsidecar-k8s-cluster")
	if err != nil {
		return nil, fmt.Errorf("cluster dir: %w", err)
	}
	c := &cluster{dir: dir}
	steps := []func() error{c.writePKI, c.startEtcdAndAPIServer, c.startControllerManager}
	for _, step := range steps {
		if err := step(); err != nil {
			return c, err
		}
	}
	return c, nil
}

// stop kills every process, the last started first, and removes the files;
// when failed it prints the logs' tails first.
func (c *cluster) stop(failed bool) {
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].kill()
		if failed {
			fmt.Fprintln(os.Stderr, c.procs[i].tail())
		}
	}
	os.RemoveAll(c.dir)
}

// path is the path of a file of the cluster.
func (c *cluster) path(name string) string {
	return filepath.Join(c.dir, name)
}

// writePKI writes the CA, the API server's serving pair and the service
// account signing key.
func (c *cluster) writePKI() error {
	ca, err := newTestCA()
	if err != nil {
		return err
	}
	c.ca, c.caFile = ca, c.path("ca.crt")
	if err := os.WriteFile(c.caFile, ca.certPEM, 0o600); err != nil {
		return fmt.Errorf("write CA: %w", err)
	}
	pair, err := ca.issue([]net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(10, 96, 0, 1)},
		"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc")
	if err != nil {
		return err
	}
	if _, _, err := pair.write(c.dir, "apiserver"); err != nil {
		return err
	}
	return writeSigningKey(c.path("sa.key"))
}

// startEtcdAndAPIServer starts etcd and the API server and waits until the
// API server's /readyz is ok.
func (c *cluster) startEtcdAndAPIServer() error {
	etcdURL, err := c.startEtcd()
	if err != nil {
		return err
	}
	token, err := randomToken()
	if err != nil {
		return err
	}
	if err := os.WriteFile(c.path("tokens.csv"), []byte(token+",admin,admin,system:masters\n"), 0o600); err != nil {
		return fmt.Errorf("write token file: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	c.apiURL = "https://127.0.0.1:" + strconv.Itoa(port)
	p, err := c.start("kube-apiserver", controlPlane.apiserver,
		"--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(port),
		// The endpoint reconciler refuses a loopback address; nothing
		// here reaches the API server through its Service anyway.
		"--advertise-address", "127.0.0.1", "--endpoint-reconciler-type", "none",
		"--cert-dir", c.path("apiserver-certs"),
		"--tls-cert-file", c.path("apiserver.crt"), "--tls-private-key-file", c.path("apiserver.key"),
		"--token-auth-file", c.path("tokens.csv"),
		"--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", c.path("sa.key"),
		"--service-account-signing-key-file", c.path("sa.key"),
		"--service-cluster-ip-range", "10.96.0.0/16",
		"--profiling=false")
	if err != nil {
		return err
	}
	c.config = &rest.Config{
		Host:            c.apiURL,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.ca.certPEM},
		QPS:             50,
		Burst:           100,
		Timeout:         30 * time.Second,
	}
	if c.client, err = kubernetes.NewForConfig(c.config); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return waitUntil(apiserverStartTimeout, "kube-apiserver /readyz ok", func() error {
		if err := p.exitError(); err != nil {
			return stopPolling(err)
		}
		body, err := c.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(context.Background())
		if err != nil {
			return fmt.Errorf("/readyz: %w: %s", err, body)
		}
		return nil
	})
}

// startEtcd starts a one-member etcd and waits until it is healthy. It
// returns its client URL.
func (c *cluster) startEtcd() (string, error) {
	clientPort, err := freePort()
	if err != nil {
		return "", err
	}
	peerPort, err := freePort()
	if err != nil {
		return "", err
	}
	clientURL := "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	p, err := c.start("etcd", controlPlane.etcd,
		"--data-dir", c.path("etcd"),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "default="+peerURL,
		"--unsafe-no-fsync")
	if err != nil {
		return "", err
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	err = waitUntil(etcdStartTimeout, "etcd healthy", func() error {
		if err := p.exitError(); err != nil {
			return stopPolling(err)
		}
		return etcdHealthy(hc, clientURL)
	})
	return clientURL, err
}

// etcdHealthy asks etcd's /health endpoint.
func etcdHealthy(hc *http.Client, clientURL string) error {
	resp, err := hc.Get(clientURL + "/health")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var health struct {
		Health string `json:"health"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&health); err != nil {
		return fmt.Errorf("/health: %s: %w", resp.Status, err)
	}
	if health.Health != "true" {
		return fmt.Errorf("/health: %s: health %q", resp.Status, health.Health)
	}
	return nil
}

// startControllerManager starts kube-controller-manager with the admin's
// kubeconfig and waits until its controllers work: the service account
// controller has made the "default" ServiceAccount of namespace default.
func (c *cluster) startControllerManager() error {
	c.adminKubeconfig = c.path("admin.kubeconfig")
	if err := writeKubeconfig(c.adminKubeconfig, c.apiURL, c.ca.certPEM, c.config.BearerToken); err != nil {
		return err
	}
	p, err := c.start("kube-controller-manager", controlPlane.controllerManager,
		"--kubeconfig", c.adminKubeconfig,
		"--service-account-private-key-file", c.path("sa.key"),
		"--root-ca-file", c.caFile,
		"--leader-elect=false",
		"--bind-address", "127.0.0.1", "--secure-port", "0",
		"--profiling=false")
	if err != nil {
		return err
	}
	return waitUntil(controllersTimeout, "kube-controller-manager making ServiceAccounts", func() error {
		if err := p.exitError(); err != nil {
			return stopPolling(err)
		}
		_, err := c.client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(context.Background(), "default", metav1.GetOptions{})
		return err
	})
}

// start starts one process of the cluster, logging into the cluster's dir.
func (c *cluster) start(name, path string, args ...string) (*process, error) {
	p, err := startProcess(c.dir, name, path, args...)
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, p)
	return p, nil
}

// kubeconfig is the part of the kubeconfig file format the tests write.
type kubeconfig struct {
	APIVersion     string         `json:"apiVersion"`
	Kind           string         `json:"kind"`
	Clusters       []namedCluster `json:"clusters"`
	Users          []namedUser    `json:"users"`
	Contexts       []namedContext `json:"contexts"`
	CurrentContext string         `json:"current-context"`
}

type namedCluster struct {
	Name    string `json:"name"`
	Cluster struct {
		Server                   string `json:"server"`
		CertificateAuthorityData []byte `json:"certificate-authority-data"`
	} `json:"cluster"`
}

type namedUser struct {
	Name string `json:"name"`
	User struct {
		Token string `json:"token"`
	} `json:"user"`
}

type namedContext struct {
	Name    string `json:"name"`
	Context struct {
		Cluster string `json:"cluster"`
		User    string `json:"user"`
	} `json:"context"`
}

// writeKubeconfig writes a kubeconfig (JSON, which is YAML) for server,
// trusting caPEM and authenticating with a bearer token.
func writeKubeconfig(path, server string, caPEM []byte, token string) error {
	var cl namedCluster
	cl.Name, cl.Cluster.Server, cl.Cluster.CertificateAuthorityData = "e2e", server, caPEM
	var u namedUser
	u.Name, u.User.Token = "e2e", token
	var ctx namedContext
	ctx.Name, ctx.Context.Cluster, ctx.Context.User = "e2e", "e2e", "e2e"
	b, err := json.Marshal(kubeconfig{
		APIVersion: "v1", Kind: "Config",
		Clusters: []namedCluster{cl}, Users: []namedUser{u}, Contexts: []namedContext{ctx},
		CurrentContext: "e2e",
	})
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

// httpsClient is a client that trusts only the PEM certificates in caPEM.
func httpsClient(caPEM []byte) (*http.Client, error) {
	pool, err := poolOf(caPEM)
	if err != nil {
		return nil, err
	}
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}, nil
}

// randomToken is a bearer token of 32 random bytes, hex encoded.
func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// freePort is a loopback TCP port that is free now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	return strconv.Atoi(port)
}

// hostPort is 127.0.0.1:port.
func hostPort(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}
