package inject

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

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
		s.Containers[0].FutureContainer != 4 || len(s.Containers[0].Env) != 5 || s.Containers[0].Env[0].FutureEnv != 5 {
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

func TestPodPatchKeepsAppEnv(t *testing.T) {
	pod := barePod(nil)
	pod.Spec.Containers = []corev1.Container{
		{Name: "custom", Image: "a:1", Env: []corev1.EnvVar{{Name: envHTTPURL, Value: "http://127.0.0.1:9999"}}},
		{Name: "all", Image: "b:1", Env: []corev1.EnvVar{{Name: envGRPCAddr, Value: "x:1"}, {Name: envHTTPURL, Value: "y"},
			{Name: envDaprHTTPPort, Value: "3600"}, {Name: envDaprGRPCPort, Value: "3601"}}},
	}
	patch, err := PodPatch(pod, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(patch), "/spec/containers/1/env") {
		t.Errorf("patch touches the env of a container that sets all of it: %s", patch)
	}
	got := patchedPod(t, pod, patch)
	assertAppEnv(t, got.Spec.Containers[0], "http://127.0.0.1:9999", "127.0.0.1:3601")
	assertAppEnv(t, got.Spec.Containers[1], "y", "x:1")
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
