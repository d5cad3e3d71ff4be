package inject

import (
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// ContainerName is the name of the injected sidecar, an init container.
// A pod that already has an init container of this name is taken as
// injected.
const ContainerName = "eventsidecar"

// HealthPort is the port on which the injected sidecar serves /healthz and
// /readyz on all of the pod's addresses, for the kubelet's probes.
const HealthPort = 3609

// The environment app containers get (unless they set it themselves) and
// the one the sidecar gets.
const (
	envHTTPURL  = "EVENTSIDECAR_HTTP_URL"
	envGRPCAddr = "EVENTSIDECAR_GRPC_ADDR"
	envAppPort  = "EVENTSIDECAR_APP_PORT"
	// The ports the Dapr SDKs read, so that an app written for Dapr finds
	// the sidecar's Dapr API unchanged (contract §9).
	envDaprHTTPPort = "DAPR_HTTP_PORT"
	envDaprGRPCPort = "DAPR_GRPC_PORT"
)

// The volumes the injector adds, their mount points, and the sidecar's user.
const (
	volumeData   = "eventsidecar-data"
	volumeTmp    = "eventsidecar-tmp"
	volumeConfig = "eventsidecar-config"
	dataDir      = "/data"
	tmpDir       = "/tmp"
	configDir    = "/etc/eventsidecar"
	configKey    = "config.yaml"
	sidecarID    = 65532
)

// reservedVolumes are the volume names a pod must not use itself.
var reservedVolumes = []string{volumeConfig, volumeData, volumeTmp}

// Options configure what is injected. The zero value is not useful:
// SidecarImage is required unless every pod names its image.
type Options struct {
	// SidecarImage is the sidecar's image for pods without an
	// eventsidecar.io/image annotation. Without one, such pods are denied.
	SidecarImage string
	// Log receives one line per admission decision; nil means slog.Default().
	Log *slog.Logger
}

// Actions a decision reports in its log line.
const (
	actionInjected  = "injected"
	actionUpdated   = "updated"
	actionUnchanged = "unchanged"
	actionSkipped   = "skipped"
	actionDenied    = "denied"
)

// decision is what the injector does to one pod, and why.
type decision struct {
	ops    []patchOp
	action string
	reason string
}

// invalidPodError is a pod the injector will not admit. Its message lists
// every problem, sorted, separated by "; ".
type invalidPodError struct {
	problems []string
}

func (e *invalidPodError) Error() string {
	return strings.Join(e.problems, "; ")
}

// PodPatch returns the JSON patch (RFC 6902, marshalled) that injects the
// sidecar into pod, nil when nothing is to change, or an error naming every
// bad annotation (or other reason to deny the pod) when the pod must not be
// admitted; it never returns a patch that injects only part of the sidecar.
//
// A pod is injected only when its eventsidecar.io/inject annotation is
// "true". A pod that already has the sidecar gets only the environment its
// app containers still lack, so calling PodPatch on its own result yields
// nil. PodPatch does not modify pod and is safe for concurrent use.
func PodPatch(pod *corev1.Pod, opts Options) ([]byte, error) {
	d, err := decide(pod, opts)
	if err != nil {
		return nil, err
	}
	return marshalPatch(d.ops)
}

// decide is PodPatch before marshalling, with the reason for the log.
func decide(pod *corev1.Pod, opts Options) (decision, error) {
	if v, ok := pod.Annotations[AnnotationInject]; !ok || v != "true" {
		return decision{action: actionSkipped, reason: AnnotationInject + ` is not "true"`}, nil
	}
	if hasContainer(pod.Spec.InitContainers, ContainerName) {
		if ops := envOps(pod); len(ops) > 0 {
			return decision{ops: ops, action: actionUpdated, reason: "already injected; environment added to app containers"}, nil
		}
		return decision{action: actionUnchanged, reason: "already injected"}, nil
	}
	s, problems := parseSettings(pod.Annotations, opts.SidecarImage)
	problems = append(problems, conflicts(pod)...)
	if len(problems) > 0 {
		slices.Sort(problems)
		return decision{}, &invalidPodError{problems: problems}
	}
	ops := []patchOp{prependOp("/spec/initContainers", len(pod.Spec.InitContainers), sidecar(s))}
	ops = append(ops, appendOps("/spec/volumes", len(pod.Spec.Volumes), volumes(s))...)
	ops = append(ops, envOps(pod)...)
	return decision{ops: ops, action: actionInjected, reason: "image " + s.image}, nil
}

// conflicts are the reasons a pod without the sidecar cannot get it.
func conflicts(pod *corev1.Pod) []string {
	var problems []string
	if hasContainer(pod.Spec.Containers, ContainerName) {
		problems = append(problems, fmt.Sprintf("spec.containers has a container named %q, the name of the injected sidecar", ContainerName))
	}
	for _, v := range pod.Spec.Volumes {
		if slices.Contains(reservedVolumes, v.Name) {
			problems = append(problems, fmt.Sprintf("spec.volumes has a volume named %q, a name the injected sidecar uses", v.Name))
		}
	}
	if pod.Spec.HostNetwork {
		problems = append(problems, fmt.Sprintf("spec.hostNetwork is true: the sidecar's ports %d, %d and %d would be the node's", httpPort, grpcPort, HealthPort))
	}
	return problems
}

func hasContainer(cs []corev1.Container, name string) bool {
	return slices.ContainsFunc(cs, func(c corev1.Container) bool { return c.Name == name })
}

// sidecar is the injected init container.
func sidecar(s settings) corev1.Container {
	c := corev1.Container{
		Name:       ContainerName,
		Image:      s.image,
		Args:       args(s),
		WorkingDir: dataDir,
		Ports:      []corev1.ContainerPort{{ContainerPort: HealthPort, Protocol: corev1.ProtocolTCP}},
		Resources:  s.resources,
		VolumeMounts: []corev1.VolumeMount{
			{Name: volumeData, MountPath: dataDir},
			{Name: volumeTmp, MountPath: tmpDir},
		},
		StartupProbe:             probe("/healthz", 1, 60),
		ReadinessProbe:           probe("/readyz", 5, 3),
		RestartPolicy:            new(corev1.ContainerRestartPolicyAlways),
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext:          restricted(),
	}
	if s.configMap != "" {
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: volumeConfig, MountPath: configDir, ReadOnly: true})
	}
	if s.appPort != "" {
		c.Env = []corev1.EnvVar{{Name: envAppPort, Value: s.appPort}}
	}
	return c
}

// args is the sidecar's command line after its entry point.
func args(s settings) []string {
	a := []string{"run", "--health-listen", "0.0.0.0:" + strconv.Itoa(HealthPort)}
	if s.configMap != "" {
		a = append(a, "--config", configDir+"/"+configKey)
	}
	if s.logLevel != "" {
		a = append(a, "--log-level", s.logLevel)
	}
	return a
}

// probe is an HTTP probe of path on HealthPort.
func probe(path string, period, failures int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{
			HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(HealthPort), Scheme: corev1.URISchemeHTTP},
		},
		PeriodSeconds:    period,
		FailureThreshold: failures,
	}
}

// restricted is a security context that passes Pod Security "restricted".
func restricted() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             new(true),
		RunAsUser:                new(int64(sidecarID)),
		RunAsGroup:               new(int64(sidecarID)),
		ReadOnlyRootFilesystem:   new(true),
		AllowPrivilegeEscalation: new(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// volumes are the pod volumes the sidecar mounts.
func volumes(s settings) []corev1.Volume {
	emptyDir := corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	vs := []corev1.Volume{{Name: volumeData, VolumeSource: emptyDir}, {Name: volumeTmp, VolumeSource: emptyDir}}
	if s.configMap != "" {
		vs = append(vs, corev1.Volume{Name: volumeConfig, VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: s.configMap},
				Items:                []corev1.KeyToPath{{Key: configKey, Path: configKey}},
			},
		}})
	}
	return vs
}

// envOps add the sidecar's addresses to every app container that does not
// set them itself. A value the container takes from envFrom is not seen
// and is overridden, as explicit env wins over envFrom.
func envOps(pod *corev1.Pod) []patchOp {
	var ops []patchOp
	for i, c := range pod.Spec.Containers {
		var missing []corev1.EnvVar
		for _, e := range appEnv {
			if !slices.ContainsFunc(c.Env, func(have corev1.EnvVar) bool { return have.Name == e.Name }) {
				missing = append(missing, e)
			}
		}
		ops = append(ops, appendOps(fmt.Sprintf("/spec/containers/%d/env", i), len(c.Env), missing)...)
	}
	return ops
}

// appEnv is the environment every app container gets: the sidecar's
// addresses, and its ports as the Dapr SDKs read them.
var appEnv = []corev1.EnvVar{
	{Name: envHTTPURL, Value: "http://127.0.0.1:" + strconv.Itoa(httpPort)},
	{Name: envGRPCAddr, Value: "127.0.0.1:" + strconv.Itoa(grpcPort)},
	{Name: envDaprHTTPPort, Value: strconv.Itoa(httpPort)},
	{Name: envDaprGRPCPort, Value: strconv.Itoa(grpcPort)},
}
