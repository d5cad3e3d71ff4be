package kubernetes_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// What contract §8 fixes about the injected sidecar.
const (
	sidecarName   = "eventsidecar"
	healthPort    = 3609
	sidecarUID    = 65532
	httpURLEnv    = "EVENTSIDECAR_HTTP_URL"
	grpcAddrEnv   = "EVENTSIDECAR_GRPC_ADDR"
	wantHTTPURL   = "http://127.0.0.1:3600"
	wantGRPCAddr  = "127.0.0.1:3601"
	injectKey     = "eventsidecar.io/inject"
	appImage      = "registry.example/e2e/app:1"
	kubeAPIAccess = "kube-api-access-"
	appPortEnv    = "EVENTSIDECAR_APP_PORT"
	appPortKey    = "eventsidecar.io/app-port"
	configKey     = "eventsidecar.io/config"
	imageKey      = "eventsidecar.io/image"
	logLevelKey   = "eventsidecar.io/log-level"
	cpuRequestKey = "eventsidecar.io/cpu-request"
	cpuLimitKey   = "eventsidecar.io/cpu-limit"
	memRequestKey = "eventsidecar.io/memory-request"
	memLimitKey   = "eventsidecar.io/memory-limit"
	caseLabel     = "e2e.eventsidecar.io/case"
)

// injectAnnotation opts a pod in.
var injectAnnotation = map[string]string{injectKey: "true"}

// podSpec is a pod spec that passes Pod Security "restricted" on its own,
// with one app container per name.
func podSpec(names ...string) corev1.PodSpec {
	spec := corev1.PodSpec{
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptrTo(true),
			RunAsUser:      ptrTo[int64](1000),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
	for _, name := range names {
		spec.Containers = append(spec.Containers, appContainer(name))
	}
	return spec
}

// appContainer is a container that passes Pod Security "restricted" in a
// pod with podSpec's security context.
func appContainer(name string) corev1.Container {
	return corev1.Container{
		Name:  name,
		Image: appImage,
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptrTo(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
}

// testPod is a pod with generateName prefix, labelled with the test case,
// with the annotations and the app containers names.
func testPod(prefix, testCase string, annotations map[string]string, names ...string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: prefix,
			Labels:       map[string]string{caseLabel: testCase},
			Annotations:  annotations,
		},
		Spec: podSpec(names...),
	}
}

// checkSidecar checks that pod has exactly one sidecar, its first init
// container, with everything contract §8 fixes, and image wantImage.
func checkSidecar(t *testing.T, pod *corev1.Pod, wantImage string) *corev1.Container {
	t.Helper()
	if n := countSidecars(pod); n != 1 {
		t.Fatalf("pod %s has %d containers named %q, want 1 (init containers %v)", pod.Name, n, sidecarName, containerNames(pod.Spec.InitContainers))
	}
	if pod.Spec.InitContainers[0].Name != sidecarName {
		t.Fatalf("pod %s init containers %v: want %q first", pod.Name, containerNames(pod.Spec.InitContainers), sidecarName)
	}
	sc := &pod.Spec.InitContainers[0]
	if sc.RestartPolicy == nil || *sc.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("sidecar restartPolicy = %v, want Always", ptrString(sc.RestartPolicy))
	}
	if sc.Image != wantImage {
		t.Errorf("sidecar image = %q, want %q", sc.Image, wantImage)
	}
	checkProbe(t, "startupProbe", sc, sc.StartupProbe, "/healthz")
	checkProbe(t, "readinessProbe", sc, sc.ReadinessProbe, "/readyz")
	for _, problem := range hardeningProblems(sc.SecurityContext) {
		t.Errorf("sidecar securityContext: %s", problem)
	}
	return sc
}

// countSidecars counts the containers of any kind named like the sidecar.
func countSidecars(pod *corev1.Pod) int {
	n := 0
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		if c.Name == sidecarName {
			n++
		}
	}
	return n
}

// checkProbe checks that probe is an HTTP GET of path on the health port.
func checkProbe(t *testing.T, what string, c *corev1.Container, probe *corev1.Probe, path string) {
	t.Helper()
	if probe == nil || probe.HTTPGet == nil {
		t.Errorf("sidecar %s = %+v, want an HTTP GET of %s", what, probe, path)
		return
	}
	if probe.HTTPGet.Path != path {
		t.Errorf("sidecar %s path = %q, want %q", what, probe.HTTPGet.Path, path)
	}
	if port := resolvePort(c, probe.HTTPGet.Port.String()); port != healthPort {
		t.Errorf("sidecar %s port = %s (%d), want %d", what, probe.HTTPGet.Port.String(), port, healthPort)
	}
}

// resolvePort is the number of a port given by number or by name.
func resolvePort(c *corev1.Container, port string) int32 {
	for _, p := range c.Ports {
		if p.Name == port {
			return p.ContainerPort
		}
	}
	var n int32
	if _, err := fmt.Sscan(port, &n); err != nil {
		return 0
	}
	return n
}

// hardeningProblems lists where sc falls short of contract §8's hardening.
func hardeningProblems(sc *corev1.SecurityContext) []string {
	if sc == nil {
		return []string{"missing"}
	}
	var problems []string
	check := func(ok bool, what string) {
		if !ok {
			problems = append(problems, what)
		}
	}
	check(sc.RunAsNonRoot != nil && *sc.RunAsNonRoot, "runAsNonRoot is not true")
	check(sc.RunAsUser != nil && *sc.RunAsUser == sidecarUID, fmt.Sprintf("runAsUser is %s, want %d", ptrString(sc.RunAsUser), sidecarUID))
	check(sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem, "readOnlyRootFilesystem is not true")
	check(sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation, "allowPrivilegeEscalation is not false")
	check(sc.Capabilities != nil && slices.Contains(sc.Capabilities.Drop, "ALL"), "capabilities do not drop ALL")
	check(sc.Capabilities == nil || len(sc.Capabilities.Add) == 0, "capabilities add some")
	check(sc.Privileged == nil || !*sc.Privileged, "privileged")
	check(sc.SeccompProfile != nil && sc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault, "seccompProfile is not RuntimeDefault")
	return problems
}

// checkAppEnv checks that every app container of pod has the sidecar's
// addresses once, except the values a container set itself, in own.
func checkAppEnv(t *testing.T, pod *corev1.Pod, own map[string]map[string]string) {
	t.Helper()
	for _, c := range pod.Spec.Containers {
		want := map[string]string{httpURLEnv: wantHTTPURL, grpcAddrEnv: wantGRPCAddr, "DAPR_HTTP_PORT": "3600", "DAPR_GRPC_PORT": "3601"}
		for name, value := range own[c.Name] {
			want[name] = value
		}
		for name, value := range want {
			if got := envValues(c.Env, name); !slices.Equal(got, []string{value}) {
				t.Errorf("container %s: %s = %q, want [%q]", c.Name, name, got, value)
			}
		}
	}
}

// checkUntouched checks that pod has no sidecar and no eventsidecar env.
func checkUntouched(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	if len(pod.Spec.InitContainers) != 0 {
		t.Errorf("pod %s init containers = %v, want none", pod.Name, containerNames(pod.Spec.InitContainers))
	}
	for _, c := range pod.Spec.Containers {
		for _, e := range c.Env {
			if strings.HasPrefix(e.Name, "EVENTSIDECAR_") || strings.HasPrefix(e.Name, "DAPR_") {
				t.Errorf("container %s has env %s", c.Name, e.Name)
			}
		}
	}
	for _, v := range pod.Spec.Volumes {
		if !strings.HasPrefix(v.Name, kubeAPIAccess) {
			t.Errorf("pod %s has volume %s", pod.Name, v.Name)
		}
	}
}

// envValues are the literal values of every entry named name.
func envValues(env []corev1.EnvVar, name string) []string {
	var values []string
	for _, e := range env {
		if e.Name == name {
			values = append(values, e.Value)
		}
	}
	return values
}

func containerNames(cs []corev1.Container) []string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Name
	}
	return names
}

// ptrString formats a pointer's value, or nil.
func ptrString[T any](p *T) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

// ptrTo is a pointer to v.
func ptrTo[T any](v T) *T {
	return &v
}
