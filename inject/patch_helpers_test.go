package inject

import (
	"encoding/json"
	"slices"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

const testImage = "registry.example/eventsidecar:v1"

var testOpts = Options{SidecarImage: testImage}

// barePod is an opted-in pod with one app container and no init
// containers, volumes or env, named by generateName only.
func barePod(ann map[string]string) *corev1.Pod {
	a := map[string]string{AnnotationInject: "true"}
	for k, v := range ann {
		a[k] = v
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "web-", Annotations: a},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
	}
}

// mustJSON marshals v as the API server would send it.
func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

// applyJSONPatch applies patch to doc with the JSON-patch library the API
// server uses for admission webhooks.
func applyJSONPatch(t testing.TB, doc, patch []byte) []byte {
	t.Helper()
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		t.Fatalf("decode patch %s: %v", patch, err)
	}
	out, err := p.Apply(doc)
	if err != nil {
		t.Fatalf("apply patch %s to %s: %v", patch, doc, err)
	}
	return out
}

// patchedPod applies patch to pod's JSON and decodes the result.
func patchedPod(t testing.TB, pod *corev1.Pod, patch []byte) *corev1.Pod {
	t.Helper()
	var out corev1.Pod
	if err := utiljson.Unmarshal(applyJSONPatch(t, mustJSON(t, pod), patch), &out); err != nil {
		t.Fatalf("decode patched pod: %v", err)
	}
	return &out
}

// injected is pod after PodPatch, which must succeed with a patch.
func injected(t testing.TB, pod *corev1.Pod, opts Options) *corev1.Pod {
	t.Helper()
	patch, err := PodPatch(pod, opts)
	if err != nil {
		t.Fatalf("PodPatch: %v", err)
	}
	if patch == nil {
		t.Fatal("PodPatch returned no patch")
	}
	assertOnlyAdds(t, patch)
	return patchedPod(t, pod, patch)
}

// assertOnlyAdds fails unless every operation of patch is an add.
func assertOnlyAdds(t testing.TB, patch []byte) {
	t.Helper()
	var ops []map[string]any
	if err := json.Unmarshal(patch, &ops); err != nil {
		t.Fatalf("patch %s is not a JSON array of operations: %v", patch, err)
	}
	for _, op := range ops {
		if op["op"] != "add" {
			t.Errorf("patch has op %v at %v; want only add", op["op"], op["path"])
		}
	}
}

func envValue(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

func containerNames(cs []corev1.Container) []string {
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return names
}

func volumeNames(vs []corev1.Volume) []string {
	var names []string
	for _, v := range vs {
		names = append(names, v.Name)
	}
	return names
}

func assertProbe(t *testing.T, name string, p *corev1.Probe, path string, period int32) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Fatalf("%s = %+v, want an httpGet probe", name, p)
	}
	if p.HTTPGet.Path != path || p.HTTPGet.Port.IntValue() != HealthPort || p.PeriodSeconds != period {
		t.Errorf("%s = GET %s :%s every %ds, want GET %s :%d every %ds",
			name, p.HTTPGet.Path, p.HTTPGet.Port.String(), p.PeriodSeconds, path, HealthPort, period)
	}
	if name == "startupProbe" && p.FailureThreshold*p.PeriodSeconds < 30 {
		t.Errorf("startupProbe allows only %ds to start", p.FailureThreshold*p.PeriodSeconds)
	}
}

// assertRestricted checks the container-level part of Pod Security "restricted".
func assertRestricted(t *testing.T, sc *corev1.SecurityContext) {
	t.Helper()
	switch {
	case sc == nil:
		t.Fatal("no securityContext")
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
		t.Error("runAsNonRoot is not true")
	case sc.RunAsUser == nil || *sc.RunAsUser != 65532, sc.RunAsGroup == nil || *sc.RunAsGroup != 65532:
		t.Errorf("runAsUser/runAsGroup = %v/%v, want 65532", sc.RunAsUser, sc.RunAsGroup)
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("readOnlyRootFilesystem is not true")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("allowPrivilegeEscalation is not false")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
		t.Errorf("capabilities = %+v, want drop [ALL]", sc.Capabilities)
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("seccompProfile = %+v, want RuntimeDefault", sc.SeccompProfile)
	case sc.Privileged != nil && *sc.Privileged:
		t.Error("privileged")
	}
}

// assertResources compares res with want, keyed "requests.cpu" and so on;
// a resource absent from want must be absent from res.
func assertResources(t *testing.T, res corev1.ResourceRequirements, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for name, q := range res.Requests {
		got["requests."+string(name)] = q.String()
	}
	for name, q := range res.Limits {
		got["limits."+string(name)] = q.String()
	}
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("resources %s unset, want %q", k, v)
			continue
		}
		if gq, wq := resource.MustParse(g), resource.MustParse(v); gq.Cmp(wq) != 0 {
			t.Errorf("resources %s = %q, want %q", k, g, v)
		}
		delete(got, k)
	}
	for k, v := range got {
		t.Errorf("resources %s = %q, want unset", k, v)
	}
}

func assertMounts(t *testing.T, mounts []corev1.VolumeMount, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, m := range mounts {
		got[m.Name] = m.MountPath
		if m.Name == volumeConfig && !m.ReadOnly {
			t.Errorf("mount %s is not read-only", m.Name)
		}
	}
	if len(got) != len(want) || len(mounts) != len(want) {
		t.Errorf("mounts = %+v, want %v", mounts, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("mount %s at %q, want %q", k, got[k], v)
		}
	}
}

// assertAppEnv checks that c has the sidecar's addresses (httpURL,
// grpcAddr) and the Dapr SDKs' ports, each once.
func assertAppEnv(t *testing.T, c corev1.Container, httpURL, grpcAddr string) {
	t.Helper()
	for name, want := range map[string]string{envHTTPURL: httpURL, envGRPCAddr: grpcAddr, envDaprHTTPPort: "3600", envDaprGRPCPort: "3601"} {
		got, ok := envValue(c, name)
		if !ok || got != want {
			t.Errorf("container %s: %s = %q (set %v), want %q", c.Name, name, got, ok, want)
		}
	}
	seen := map[string]bool{}
	for _, e := range c.Env {
		if seen[e.Name] {
			t.Errorf("container %s: %s set twice", c.Name, e.Name)
		}
		seen[e.Name] = true
	}
}

// assertInjection checks a patch PodPatch returned for pod: it applies,
// leaves one sidecar first among the init containers (unless the pod had
// one), gives every app container the sidecar's addresses, and PodPatch of
// the result is nil.
func assertInjection(t *testing.T, pod *corev1.Pod, patch []byte, opts Options) {
	t.Helper()
	assertOnlyAdds(t, patch)
	got := patchedPod(t, pod, patch)
	had := hasContainer(pod.Spec.InitContainers, ContainerName)
	switch {
	case !had && (len(got.Spec.InitContainers) != len(pod.Spec.InitContainers)+1 || got.Spec.InitContainers[0].Name != ContainerName):
		t.Fatalf("init containers %v -> %v, want the sidecar added first", containerNames(pod.Spec.InitContainers), containerNames(got.Spec.InitContainers))
	case had && len(got.Spec.InitContainers) != len(pod.Spec.InitContainers):
		t.Fatalf("init containers %v -> %v, want them unchanged", containerNames(pod.Spec.InitContainers), containerNames(got.Spec.InitContainers))
	}
	for _, c := range got.Spec.Containers {
		for _, name := range []string{envHTTPURL, envGRPCAddr, envDaprHTTPPort, envDaprGRPCPort} {
			if _, ok := envValue(c, name); !ok {
				t.Fatalf("container %q lacks %s", c.Name, name)
			}
		}
	}
	if again, err := PodPatch(got, opts); err != nil || again != nil {
		t.Fatalf("PodPatch of the patched pod = %s, %v; want nil, nil", again, err)
	}
}
