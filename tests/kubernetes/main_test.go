package kubernetes_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The binaries the tests run, built once in TestMain.
var (
	eventsidecarBinary string
	controlPlane       controlPlaneBinaries
)

// controlPlaneBinaries are the paths of the control plane's programs.
type controlPlaneBinaries struct {
	etcd, apiserver, controllerManager, kubectl string
}

// controlPlaneModule is the nested module that pins the control plane.
const controlPlaneModule = "controlplane"

// controlPlanePackages are what the nested module builds, by binary name.
// go build names etcd's binary "server", after the path element before /v3.
var controlPlanePackages = []struct{ pkg, built, name string }{
	{"go.etcd.io/etcd/server/v3", "server", "etcd"},
	{"k8s.io/kubernetes/cmd/kube-apiserver", "kube-apiserver", "kube-apiserver"},
	{"k8s.io/kubernetes/cmd/kube-controller-manager", "kube-controller-manager", "kube-controller-manager"},
	{"k8s.io/kubernetes/cmd/kubectl", "kubectl", "kubectl"},
}

// TestMain builds the binaries (the control plane only when the cache does
// not have it yet), runs the tests and stops the shared cluster, if a test
// started it.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "eventsidecar-k8s-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := buildEventsidecar(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if controlPlane, err = buildControlPlane(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	stopSharedCluster(code != 0)
	return code
}

// buildEventsidecar builds the eventsidecar binary into dir, with -race
// when the tests run with it.
func buildEventsidecar(dir string) error {
	eventsidecarBinary = filepath.Join(dir, "eventsidecar")
	args := []string{"build", "-o", eventsidecarBinary}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "../../cmd/eventsidecar")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build eventsidecar: %w", err)
	}
	return nil
}

// buildControlPlane returns the control plane's binaries from the cache,
// building them first when one is missing.
func buildControlPlane() (controlPlaneBinaries, error) {
	module, err := filepath.Abs(controlPlaneModule)
	if err != nil {
		return controlPlaneBinaries{}, fmt.Errorf("control plane module: %w", err)
	}
	cache, err := controlPlaneCache(module)
	if err != nil {
		return controlPlaneBinaries{}, err
	}
	bins := controlPlaneBinaries{
		etcd:              filepath.Join(cache, "etcd"),
		apiserver:         filepath.Join(cache, "kube-apiserver"),
		controllerManager: filepath.Join(cache, "kube-controller-manager"),
		kubectl:           filepath.Join(cache, "kubectl"),
	}
	if complete(bins) {
		return bins, nil
	}
	if err := buildInto(module, cache); err != nil {
		return controlPlaneBinaries{}, err
	}
	return bins, nil
}

// controlPlaneCache is $EVENTSIDECAR_CONTROLPLANE_CACHE, else a directory
// of the user's cache named after a hash of the module's files, so a change
// of a pinned version builds anew.
func controlPlaneCache(module string) (string, error) {
	if dir := os.Getenv("EVENTSIDECAR_CONTROLPLANE_CACHE"); dir != "" {
		abs, err := filepath.Abs(dir) // go build -C would resolve it elsewhere
		if err != nil {
			return "", fmt.Errorf("control plane cache: %w", err)
		}
		return abs, nil
	}
	sum := sha256.New()
	for _, name := range []string{"go.mod", "go.sum", "tools.go"} {
		b, err := os.ReadFile(filepath.Join(module, name))
		if err != nil {
			return "", fmt.Errorf("control plane module: %w", err)
		}
		sum.Write(b)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("control plane cache: %w", err)
	}
	return filepath.Join(base, "eventsidecar", "controlplane-"+hex.EncodeToString(sum.Sum(nil))[:12]), nil
}

// complete reports whether every binary is in place.
func complete(bins controlPlaneBinaries) bool {
	for _, path := range []string{bins.etcd, bins.apiserver, bins.controllerManager, bins.kubectl} {
		if _, err := os.Stat(path); err != nil {
			return false
		}
	}
	return true
}

// buildInto builds the control plane in module into a temporary directory
// inside cache, then renames each binary into cache, so a build that is
// killed leaves no binary behind.
func buildInto(module, cache string) error {
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return fmt.Errorf("control plane cache: %w", err)
	}
	tmp, err := os.MkdirTemp(cache, ".build-")
	if err != nil {
		return fmt.Errorf("control plane cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	args := []string{"build", "-C", module, "-o", tmp + string(filepath.Separator)}
	for _, p := range controlPlanePackages {
		args = append(args, p.pkg)
	}
	build := exec.Command("go", args...)
	build.Env = withoutGOFLAGS(os.Environ())
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	fmt.Fprintf(os.Stderr, "building the control plane into %s (about ten minutes the first time)\n", cache)
	start := time.Now()
	if err := runWithProgress(build, "control plane build"); err != nil {
		return fmt.Errorf("build the control plane in %s: %w", module, err)
	}
	for _, p := range controlPlanePackages {
		if err := os.Rename(filepath.Join(tmp, p.built), filepath.Join(cache, p.name)); err != nil {
			return fmt.Errorf("control plane cache: %w", err)
		}
	}
	fmt.Fprintf(os.Stderr, "built the control plane in %s\n", time.Since(start).Round(time.Second))
	return nil
}

// runWithProgress runs cmd, saying every half minute that it still runs.
func runWithProgress(cmd *exec.Cmd, what string) error {
	done := make(chan struct{})
	defer close(done)
	start := time.Now()
	go func() {
		tick := time.NewTicker(30 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				fmt.Fprintf(os.Stderr, "%s: still running after %s\n", what, time.Since(start).Round(time.Second))
			}
		}
	}()
	return cmd.Run()
}

// withoutGOFLAGS is env without GOFLAGS, so the flags of the test's own
// build (-race among them) do not reach the control plane's.
func withoutGOFLAGS(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "GOFLAGS=") {
			out = append(out, kv)
		}
	}
	return out
}
