package inject

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

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
