package inject

import (
	"encoding/json"
	"slices"
	"strings"
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

func TestPodPatchBarePod(t *testing.T) {
	got := injected(t, barePod(nil), testOpts)

	if n := containerNames(got.Spec.InitContainers); !slices.Equal(n, []string{ContainerName}) {
		t.Fatalf("init containers = %v, want [%s]", n, ContainerName)
	}
	sc := got.Spec.InitContainers[0]
	if sc.Image != testImage {
		t.Errorf("image = %q, want %q", sc.Image, testImage)
	}
	if want := []string{"run", "--health-listen", "0.0.0.0:3609"}; !slices.Equal(sc.Args, want) {
		t.Errorf("args = %q, want %q", sc.Args, want)
	}
	if sc.WorkingDir != "/data" {
		t.Errorf("workingDir = %q, want /data", sc.WorkingDir)
	}
	if sc.RestartPolicy == nil || *sc.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("restartPolicy = %v, want Always", sc.RestartPolicy)
	}
	if sc.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError {
		t.Errorf("terminationMessagePolicy = %q", sc.TerminationMessagePolicy)
	}
	if len(sc.Ports) != 1 || sc.Ports[0].ContainerPort != HealthPort {
		t.Errorf("ports = %+v, want containerPort %d", sc.Ports, HealthPort)
	}
	if len(sc.Env) != 0 {
		t.Errorf("sidecar env = %+v, want none without %s", sc.Env, AnnotationAppPort)
	}
	assertProbe(t, "startupProbe", sc.StartupProbe, "/healthz", 1)
	assertProbe(t, "readinessProbe", sc.ReadinessProbe, "/readyz", 5)
	assertRestricted(t, sc.SecurityContext)
	assertResources(t, sc.Resources, map[string]string{"requests.cpu": "50m", "requests.memory": "64Mi", "limits.memory": "256Mi"})
	assertMounts(t, sc.VolumeMounts, map[string]string{volumeData: "/data", volumeTmp: "/tmp"})

	if n := volumeNames(got.Spec.Volumes); !slices.Equal(n, []string{volumeData, volumeTmp}) {
		t.Errorf("volumes = %v, want [%s %s]", n, volumeData, volumeTmp)
	}
	for _, v := range got.Spec.Volumes {
		if v.EmptyDir == nil {
			t.Errorf("volume %s is not an emptyDir: %+v", v.Name, v.VolumeSource)
		}
	}
	assertAppEnv(t, got.Spec.Containers[0], "http://127.0.0.1:3600", "127.0.0.1:3601")
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

func assertAppEnv(t *testing.T, c corev1.Container, httpURL, grpcAddr string) {
	t.Helper()
	for name, want := range map[string]string{envHTTPURL: httpURL, envGRPCAddr: grpcAddr} {
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

func TestPodPatchOrderAndExistingArrays(t *testing.T) {
	pod := barePod(nil)
	pod.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "m:1"}, {Name: "seed", Image: "s:1"}}
	pod.Spec.Volumes = []corev1.Volume{{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	pod.Spec.Containers = []corev1.Container{
		{Name: "app", Image: "app:1", Env: []corev1.EnvVar{{Name: "A", Value: "1"}}},
		{Name: "worker", Image: "w:1"},
	}
	got := injected(t, pod, testOpts)

	if n := containerNames(got.Spec.InitContainers); !slices.Equal(n, []string{ContainerName, "migrate", "seed"}) {
		t.Errorf("init containers = %v, want sidecar first, then the pod's own in order", n)
	}
	for _, c := range got.Spec.InitContainers[1:] {
		if len(c.Env) != 0 {
			t.Errorf("init container %s got env %+v; only app containers get it", c.Name, c.Env)
		}
	}
	if n := volumeNames(got.Spec.Volumes); !slices.Equal(n, []string{"cache", volumeData, volumeTmp}) {
		t.Errorf("volumes = %v", n)
	}
	if got.Spec.Containers[0].Env[0].Name != "A" {
		t.Errorf("app env = %+v, want its own A first", got.Spec.Containers[0].Env)
	}
	for _, c := range got.Spec.Containers {
		assertAppEnv(t, c, "http://127.0.0.1:3600", "127.0.0.1:3601")
	}
}

// TestPodPatchKeepsUnknownFields checks that fields this package's API types
// do not know, as from a newer API server, survive the patch.
func TestPodPatchKeepsUnknownFields(t *testing.T) {
	doc := []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","annotations":{"eventsidecar.io/inject":"true"}},
		"spec":{"futureSpec":1,
		"initContainers":[{"name":"migrate","image":"m:1","futureInit":2}],
		"volumes":[{"name":"cache","emptyDir":{},"futureVolume":3}],
		"containers":[{"name":"app","image":"a:1","futureContainer":4,"env":[{"name":"A","value":"1","futureEnv":5}]}]}}`)
	var pod corev1.Pod
	if err := utiljson.Unmarshal(doc, &pod); err != nil {
		t.Fatal(err)
	}
	patch, err := PodPatch(&pod, testOpts)
	if err != nil || patch == nil {
		t.Fatalf("PodPatch = %s, %v", patch, err)
	}
	var out struct {
		Spec struct {
			FutureSpec     int `json:"futureSpec"`
			InitContainers []struct {
				Name       string `json:"name"`
				FutureInit int    `json:"futureInit"`
			} `json:"initContainers"`
			Volumes []struct {
				FutureVolume int `json:"futureVolume"`
			} `json:"volumes"`
			Containers []struct {
				FutureContainer int `json:"futureContainer"`
				Env             []struct {
					FutureEnv int `json:"futureEnv"`
				} `json:"env"`
			} `json:"containers"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(applyJSONPatch(t, doc, patch), &out); err != nil {
		t.Fatal(err)
	}
	s := out.Spec
	if s.FutureSpec != 1 || len(s.InitContainers) != 2 || s.InitContainers[1].FutureInit != 2 ||
		len(s.Volumes) != 3 || s.Volumes[0].FutureVolume != 3 ||
		s.Containers[0].FutureContainer != 4 || len(s.Containers[0].Env) != 3 || s.Containers[0].Env[0].FutureEnv != 5 {
		t.Errorf("unknown fields lost or arrays rewritten: %+v", s)
	}
}

func TestPodPatchIdempotent(t *testing.T) {
	pod := barePod(nil)
	once := injected(t, pod, testOpts)
	patch, err := PodPatch(once, testOpts)
	if err != nil || patch != nil {
		t.Fatalf("PodPatch of an injected pod = %s, %v; want nil, nil", patch, err)
	}

	// Another webhook adds a container between invocations.
	once.Spec.Containers = append(once.Spec.Containers, corev1.Container{Name: "late", Image: "l:1"})
	patch, err = PodPatch(once, testOpts)
	if err != nil || patch == nil {
		t.Fatalf("PodPatch after a container was added = %s, %v; want a patch", patch, err)
	}
	var ops []patchOp
	if err := json.Unmarshal(patch, &ops); err != nil {
		t.Fatal(err)
	}
	if len(ops) != 1 || ops[0].Path != "/spec/containers/1/env" {
		t.Errorf("reinvocation patch = %s, want only the env of container 1", patch)
	}
	twice := patchedPod(t, once, patch)
	if n := containerNames(twice.Spec.InitContainers); !slices.Equal(n, []string{ContainerName}) {
		t.Errorf("init containers = %v, want one sidecar", n)
	}
	assertAppEnv(t, twice.Spec.Containers[1], "http://127.0.0.1:3600", "127.0.0.1:3601")
	if patch, err := PodPatch(twice, testOpts); err != nil || patch != nil {
		t.Errorf("third PodPatch = %s, %v; want nil, nil", patch, err)
	}
}

// TestPodPatchInjectedIgnoresAnnotations checks that a pod that already has
// the sidecar is not re-validated: it was admitted with these annotations.
func TestPodPatchInjectedIgnoresAnnotations(t *testing.T) {
	pod := injected(t, barePod(nil), testOpts)
	pod.Annotations[AnnotationAppPort] = "http"
	if patch, err := PodPatch(pod, Options{}); err != nil || patch != nil {
		t.Errorf("PodPatch = %s, %v; want nil, nil", patch, err)
	}
}

func TestPodPatchNotOptedIn(t *testing.T) {
	for _, tc := range []struct {
		name string
		ann  map[string]string
	}{
		{"absent", nil},
		{"false", map[string]string{AnnotationInject: "false"}},
		{"capitalised", map[string]string{AnnotationInject: "True"}},
		{"yes", map[string]string{AnnotationInject: "yes"}},
		{"empty", map[string]string{AnnotationInject: ""}},
		{"bad annotations but not opted in", map[string]string{AnnotationInject: "false", AnnotationAppPort: "http"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := barePod(nil)
			pod.Annotations = tc.ann
			if patch, err := PodPatch(pod, testOpts); err != nil || patch != nil {
				t.Errorf("PodPatch = %s, %v; want nil, nil", patch, err)
			}
		})
	}
}

func TestPodPatchBadAnnotation(t *testing.T) {
	for _, tc := range []struct {
		name string
		ann  map[string]string
		want string // the whole message, or its start when it ends in ": "
	}{
		{"app-port name", map[string]string{AnnotationAppPort: "http"}, `eventsidecar.io/app-port: "http" is not a port number (1-65535)`},
		{"app-port zero", map[string]string{AnnotationAppPort: "0"}, `eventsidecar.io/app-port: "0" is not a port number (1-65535)`},
		{"app-port too big", map[string]string{AnnotationAppPort: "65536"}, `eventsidecar.io/app-port: "65536" is not a port number (1-65535)`},
		{"app-port negative", map[string]string{AnnotationAppPort: "-1"}, `eventsidecar.io/app-port: "-1" is not a port number (1-65535)`},
		{"app-port sidecar's", map[string]string{AnnotationAppPort: "3600"}, `eventsidecar.io/app-port: "3600" is a port the sidecar itself listens on (3600, 3601, 3609)`},
		{"config uppercase", map[string]string{AnnotationConfig: "My_Config"}, `eventsidecar.io/config: "My_Config" is not a valid ConfigMap name: `},
		{"config empty", map[string]string{AnnotationConfig: ""}, `eventsidecar.io/config: "" is not a valid ConfigMap name: `},
		{"image empty", map[string]string{AnnotationImage: ""}, `eventsidecar.io/image: "" is empty`},
		{"image space", map[string]string{AnnotationImage: "a b"}, `eventsidecar.io/image: "a b" contains whitespace or control characters`},
		{"image newline", map[string]string{AnnotationImage: "img\n"}, `eventsidecar.io/image: "img\n" contains whitespace or control characters`},
		{"log-level", map[string]string{AnnotationLogLevel: "verbose"}, `eventsidecar.io/log-level: "verbose" is not a log level (debug, info, warn or error)`},
		{"log-level case", map[string]string{AnnotationLogLevel: "INFO"}, `eventsidecar.io/log-level: "INFO" is not a log level (debug, info, warn or error)`},
		{"cpu-request", map[string]string{AnnotationCPURequest: "lots"}, `eventsidecar.io/cpu-request: "lots" is not a Kubernetes quantity (like 100m, 1, 64Mi, 1Gi)`},
		{"cpu-limit negative", map[string]string{AnnotationCPULimit: "-1"}, `eventsidecar.io/cpu-limit: "-1" is negative`},
		{"memory-request", map[string]string{AnnotationMemoryRequest: "64 Mi"}, `eventsidecar.io/memory-request: "64 Mi" is not a Kubernetes quantity (like 100m, 1, 64Mi, 1Gi)`},
		{"memory-limit", map[string]string{AnnotationMemoryLimit: "1Q"}, `eventsidecar.io/memory-limit: "1Q" is not a Kubernetes quantity (like 100m, 1, 64Mi, 1Gi)`},
		{"memory request above default limit", map[string]string{AnnotationMemoryRequest: "512Mi"},
			`eventsidecar.io/memory-request: "512Mi" is above the default memory limit 256Mi (set eventsidecar.io/memory-limit too)`},
		{"cpu limit below default request", map[string]string{AnnotationCPULimit: "10m"},
			`eventsidecar.io/cpu-limit: "10m" is below the default cpu request 50m (set eventsidecar.io/cpu-request too)`},
		{"memory limit below default request", map[string]string{AnnotationMemoryLimit: "32Mi"},
			`eventsidecar.io/memory-limit: "32Mi" is below the default memory request 64Mi (set eventsidecar.io/memory-request too)`},
		{"cpu request above limit", map[string]string{AnnotationCPURequest: "2", AnnotationCPULimit: "1500m"},
			`eventsidecar.io/cpu-request: "2" is above eventsidecar.io/cpu-limit: "1500m"`},
		{"long value shortened", map[string]string{AnnotationLogLevel: strings.Repeat("x", 1000)},
			`eventsidecar.io/log-level: "` + strings.Repeat("x", maxQuotedValue) + `"... is not a log level (debug, info, warn or error)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			patch, err := PodPatch(barePod(tc.ann), testOpts)
			if err == nil {
				t.Fatalf("PodPatch = %s, nil; want an error", patch)
			}
			if patch != nil {
				t.Errorf("PodPatch returned a patch with its error: %s", patch)
			}
			got := err.Error()
			if ok := got == tc.want || strings.HasSuffix(tc.want, ": ") && strings.HasPrefix(got, tc.want); !ok {
				t.Errorf("error = %q\nwant   %q", got, tc.want)
			}
		})
	}
}

func TestPodPatchAllProblemsInOneMessage(t *testing.T) {
	pod := barePod(map[string]string{
		AnnotationLogLevel:      "loud",
		AnnotationAppPort:       "http",
		AnnotationMemoryRequest: "1Gi",
		AnnotationCPULimit:      "x",
	})
	pod.Spec.HostNetwork = true
	want := `eventsidecar.io/app-port: "http" is not a port number (1-65535); ` +
		`eventsidecar.io/cpu-limit: "x" is not a Kubernetes quantity (like 100m, 1, 64Mi, 1Gi); ` +
		`eventsidecar.io/log-level: "loud" is not a log level (debug, info, warn or error); ` +
		`eventsidecar.io/memory-request: "1Gi" is above the default memory limit 256Mi (set eventsidecar.io/memory-limit too); ` +
		`spec.hostNetwork is true: the sidecar's ports 3600, 3601 and 3609 would be the node's`
	for range 5 { // map order must not show
		patch, err := PodPatch(pod, testOpts)
		if err == nil || err.Error() != want || patch != nil {
			t.Fatalf("PodPatch = %s, %v\nwant error %s", patch, err, want)
		}
	}
}

func TestPodPatchDenied(t *testing.T) {
	emptyDir := corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	for _, tc := range []struct {
		name string
		pod  func(*corev1.Pod)
		opts Options
		want string
	}{
		{"app container named eventsidecar", func(p *corev1.Pod) { p.Spec.Containers[0].Name = ContainerName }, testOpts,
			`spec.containers has a container named "eventsidecar", the name of the injected sidecar`},
		{"data volume taken", func(p *corev1.Pod) { p.Spec.Volumes = []corev1.Volume{{Name: volumeData, VolumeSource: emptyDir}} }, testOpts,
			`spec.volumes has a volume named "eventsidecar-data", a name the injected sidecar uses`},
		{"config volume taken without config", func(p *corev1.Pod) { p.Spec.Volumes = []corev1.Volume{{Name: volumeConfig, VolumeSource: emptyDir}} }, testOpts,
			`spec.volumes has a volume named "eventsidecar-config", a name the injected sidecar uses`},
		{"host network", func(p *corev1.Pod) { p.Spec.HostNetwork = true }, testOpts,
			`spec.hostNetwork is true: the sidecar's ports 3600, 3601 and 3609 would be the node's`},
		{"no image anywhere", func(*corev1.Pod) {}, Options{},
			`no sidecar image: the injector has no --sidecar-image and the pod has no eventsidecar.io/image annotation`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := barePod(nil)
			tc.pod(pod)
			patch, err := PodPatch(pod, tc.opts)
			if err == nil || err.Error() != tc.want || patch != nil {
				t.Errorf("PodPatch = %s, %v\nwant error %s", patch, err, tc.want)
			}
		})
	}
}

func TestPodPatchImageFromAnnotationWithoutDefault(t *testing.T) {
	got := injected(t, barePod(map[string]string{AnnotationImage: "mirror.example/es@sha256:abc"}), Options{})
	if img := got.Spec.InitContainers[0].Image; img != "mirror.example/es@sha256:abc" {
		t.Errorf("image = %q, want the annotation's", img)
	}
}

func TestPodPatchKeepsAppEnv(t *testing.T) {
	pod := barePod(nil)
	pod.Spec.Containers = []corev1.Container{
		{Name: "custom", Image: "a:1", Env: []corev1.EnvVar{{Name: envHTTPURL, Value: "http://127.0.0.1:9999"}}},
		{Name: "both", Image: "b:1", Env: []corev1.EnvVar{{Name: envGRPCAddr, Value: "x:1"}, {Name: envHTTPURL, Value: "y"}}},
	}
	patch, err := PodPatch(pod, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(patch), "/spec/containers/1/env") {
		t.Errorf("patch touches the env of a container that sets both: %s", patch)
	}
	got := patchedPod(t, pod, patch)
	assertAppEnv(t, got.Spec.Containers[0], "http://127.0.0.1:9999", "127.0.0.1:3601")
	assertAppEnv(t, got.Spec.Containers[1], "y", "x:1")
}

func TestPodPatchAnnotations(t *testing.T) {
	got := injected(t, barePod(map[string]string{
		AnnotationConfig:        "orders-sidecar",
		AnnotationLogLevel:      "debug",
		AnnotationAppPort:       "08080",
		AnnotationCPURequest:    "100m",
		AnnotationCPULimit:      "1",
		AnnotationMemoryRequest: "128Mi",
		AnnotationMemoryLimit:   "1Gi",
	}), testOpts)
	sc := got.Spec.InitContainers[0]
	want := []string{"run", "--health-listen", "0.0.0.0:3609", "--config", "/etc/eventsidecar/config.yaml", "--log-level", "debug"}
	if !slices.Equal(sc.Args, want) {
		t.Errorf("args = %q, want %q", sc.Args, want)
	}
	if v, ok := envValue(sc, envAppPort); !ok || v != "8080" || len(sc.Env) != 1 {
		t.Errorf("sidecar env = %+v, want only %s=8080", sc.Env, envAppPort)
	}
	assertMounts(t, sc.VolumeMounts, map[string]string{volumeData: "/data", volumeTmp: "/tmp", volumeConfig: "/etc/eventsidecar"})
	assertResources(t, sc.Resources, map[string]string{
		"requests.cpu": "100m", "limits.cpu": "1", "requests.memory": "128Mi", "limits.memory": "1Gi",
	})
	if n := volumeNames(got.Spec.Volumes); !slices.Equal(n, []string{volumeData, volumeTmp, volumeConfig}) {
		t.Fatalf("volumes = %v", n)
	}
	cm := got.Spec.Volumes[2].ConfigMap
	if cm == nil || cm.Name != "orders-sidecar" || len(cm.Items) != 1 || cm.Items[0].Key != "config.yaml" || cm.Items[0].Path != "config.yaml" {
		t.Errorf("config volume = %+v, want ConfigMap orders-sidecar, key config.yaml", got.Spec.Volumes[2].VolumeSource)
	}
	if cm != nil && cm.Optional != nil && *cm.Optional {
		t.Error("config volume is optional; the pod must wait for its ConfigMap")
	}
}

func TestPodPatchCPULimitAloneAboveDefault(t *testing.T) {
	got := injected(t, barePod(map[string]string{AnnotationCPULimit: "200m"}), testOpts)
	assertResources(t, got.Spec.InitContainers[0].Resources, map[string]string{
		"requests.cpu": "50m", "limits.cpu": "200m", "requests.memory": "64Mi", "limits.memory": "256Mi",
	})
}

func TestPodPatchDoesNotModifyPod(t *testing.T) {
	pod := barePod(map[string]string{AnnotationConfig: "c"})
	before := string(mustJSON(t, pod))
	if _, err := PodPatch(pod, testOpts); err != nil {
		t.Fatal(err)
	}
	if after := string(mustJSON(t, pod)); after != before {
		t.Errorf("PodPatch modified its pod:\nbefore %s\nafter  %s", before, after)
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
		for _, name := range []string{envHTTPURL, envGRPCAddr} {
			if _, ok := envValue(c, name); !ok {
				t.Fatalf("container %q lacks %s", c.Name, name)
			}
		}
	}
	if again, err := PodPatch(got, opts); err != nil || again != nil {
		t.Fatalf("PodPatch of the patched pod = %s, %v; want nil, nil", again, err)
	}
}

func FuzzPodPatch(f *testing.F) {
	bare := `{"metadata":{"generateName":"w-"},"spec":{"containers":[{"name":"app","image":"a"}]}}`
	full := `{"metadata":{"name":"p","namespace":"n"},"spec":{"initContainers":[{"name":"m"}],` +
		`"volumes":[{"name":"v","emptyDir":{}}],"containers":[{"name":"a","env":[{"name":"EVENTSIDECAR_HTTP_URL","value":"x"}]},{"name":"b"}]}}`
	injectedPod := `{"spec":{"initContainers":[{"name":"m"},{"name":"eventsidecar"}],"containers":[{"name":"a"},{"name":"b","env":[]}]}}`
	f.Add(bare, "true", "", "", "", "", "", "", "", "")
	f.Add(full, "true", "img:1", "cfg", "8080", "100m", "1", "64Mi", "1Gi", "debug")
	f.Add(full, "true", "a b", "Bad_Name", "http", "x", "-1", "1Gi", "1Mi", "loud")
	f.Add(injectedPod, "true", "", "", "", "", "", "", "", "")
	f.Add(`{"spec":{"hostNetwork":true,"containers":[{"name":"eventsidecar"}],"volumes":[{"name":"eventsidecar-tmp"}]}}`, "true", "", "", "", "", "", "", "", "")
	f.Add(bare, "false", "", "", "", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, podJSON, inject, image, config, appPort, cpuReq, cpuLim, memReq, memLim, logLevel string) {
		var pod corev1.Pod
		if err := utiljson.Unmarshal([]byte(podJSON), &pod); err != nil {
			return
		}
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		for k, v := range map[string]string{
			AnnotationInject: inject, AnnotationImage: image, AnnotationConfig: config, AnnotationAppPort: appPort,
			AnnotationCPURequest: cpuReq, AnnotationCPULimit: cpuLim, AnnotationMemoryRequest: memReq,
			AnnotationMemoryLimit: memLim, AnnotationLogLevel: logLevel,
		} {
			if v != "" {
				pod.Annotations[k] = v
			}
		}
		patch, err := PodPatch(&pod, testOpts)
		switch {
		case err != nil && (patch != nil || err.Error() == ""):
			t.Fatalf("PodPatch = %s, %q; want no patch and a message", patch, err)
		case patch != nil:
			assertInjection(t, &pod, patch, testOpts)
		}
	})
}
