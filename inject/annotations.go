package inject

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// The pod annotations the injector reads (contract §8). Only AnnotationInject
// with the value "true" injects; the others are optional.
const (
	// AnnotationInject opts a pod in: "true" injects, anything else does not.
	AnnotationInject = "eventsidecar.io/inject"
	// AnnotationConfig names a ConfigMap in the pod's namespace whose key
	// config.yaml is mounted as the sidecar's configuration file.
	AnnotationConfig = "eventsidecar.io/config"
	// AnnotationAppPort is the app's HTTP port, given to the sidecar as
	// EVENTSIDECAR_APP_PORT.
	AnnotationAppPort = "eventsidecar.io/app-port"
	// AnnotationImage overrides Options.SidecarImage for one pod.
	AnnotationImage = "eventsidecar.io/image"
	// AnnotationCPURequest is the sidecar's CPU request (default 50m).
	AnnotationCPURequest = "eventsidecar.io/cpu-request"
	// AnnotationCPULimit is the sidecar's CPU limit (default none).
	AnnotationCPULimit = "eventsidecar.io/cpu-limit"
	// AnnotationMemoryRequest is the sidecar's memory request (default 64Mi).
	AnnotationMemoryRequest = "eventsidecar.io/memory-request"
	// AnnotationMemoryLimit is the sidecar's memory limit (default 256Mi).
	AnnotationMemoryLimit = "eventsidecar.io/memory-limit"
	// AnnotationLogLevel is the sidecar's log level: debug, info, warn or error.
	AnnotationLogLevel = "eventsidecar.io/log-level"
)

// Ports the sidecar listens on inside the pod: the API on 127.0.0.1
// (httpPort, grpcPort) and the probes on every address (HealthPort).
const (
	httpPort = 3600
	grpcPort = 3601
)

// maxQuotedValue bounds how much of an annotation value a message repeats.
const maxQuotedValue = 64

// settings is the validated form of a pod's eventsidecar.io annotations.
type settings struct {
	image     string
	configMap string // "" when no ConfigMap is mounted
	appPort   string // canonical decimal; "" when no app port is given
	logLevel  string // "" when the sidecar's own default applies
	resources corev1.ResourceRequirements
}

// resourcePair is a resource's two annotations and their defaults.
type resourcePair struct {
	name                 corev1.ResourceName
	requestKey, limitKey string
	request, limit       string // defaults; "" when there is none
}

var resourcePairs = []resourcePair{
	{corev1.ResourceCPU, AnnotationCPURequest, AnnotationCPULimit, "50m", ""},
	{corev1.ResourceMemory, AnnotationMemoryRequest, AnnotationMemoryLimit, "64Mi", "256Mi"},
}

// parseSettings validates the annotations ann. It returns one problem per
// bad annotation, each naming the annotation, its value and what is wrong.
func parseSettings(ann map[string]string, defaultImage string) (settings, []string) {
	var s settings
	var problems []string
	bad := func(key, why string) {
		problems = append(problems, fmt.Sprintf("%s: %s %s", key, quote(ann[key]), why))
	}
	s.image = defaultImage
	if v, ok := ann[AnnotationImage]; ok {
		if why := checkImage(v); why != "" {
			bad(AnnotationImage, why)
		}
		s.image = v
	} else if s.image == "" {
		problems = append(problems, "no sidecar image: the injector has no --sidecar-image and the pod has no "+AnnotationImage+" annotation")
	}
	if v, ok := ann[AnnotationConfig]; ok {
		if errs := validation.IsDNS1123Subdomain(v); len(errs) > 0 {
			bad(AnnotationConfig, "is not a valid ConfigMap name: "+strings.Join(errs, "; "))
		}
		s.configMap = v
	}
	if v, ok := ann[AnnotationAppPort]; ok {
		port, why := parseAppPort(v)
		if why != "" {
			bad(AnnotationAppPort, why)
		}
		s.appPort = port
	}
	if v, ok := ann[AnnotationLogLevel]; ok {
		if !validLogLevel(v) {
			bad(AnnotationLogLevel, "is not a log level (debug, info, warn or error)")
		}
		s.logLevel = v
	}
	var rp []string
	s.resources, rp = parseResources(ann)
	return s, append(problems, rp...)
}

// checkImage says what is wrong with an image reference, or "" when nothing is.
func checkImage(v string) string {
	switch {
	case v == "":
		return "is empty"
	case strings.ContainsFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return "contains whitespace or control characters"
	}
	return ""
}

// parseAppPort returns the app port in canonical form, or what is wrong with it.
func parseAppPort(v string) (port, why string) {
	n, err := strconv.ParseUint(v, 10, 16)
	switch {
	case err != nil || n == 0:
		return "", "is not a port number (1-65535)"
	case n == httpPort || n == grpcPort || n == HealthPort:
		return "", fmt.Sprintf("is a port the sidecar itself listens on (%d, %d, %d)", httpPort, grpcPort, HealthPort)
	}
	return strconv.FormatUint(n, 10), ""
}

func validLogLevel(v string) bool {
	switch v {
	case "debug", "info", "warn", "error":
		return true
	}
	return false
}

// parseResources applies the defaults and the resource annotations and
// checks that no request is above its limit.
func parseResources(ann map[string]string) (corev1.ResourceRequirements, []string) {
	res := corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
	var problems []string
	for _, p := range resourcePairs {
		req, reqProblem := quantity(ann, p.requestKey, p.request)
		lim, limProblem := quantity(ann, p.limitKey, p.limit)
		problems = appendNonEmpty(problems, reqProblem, limProblem)
		if req != nil {
			res.Requests[p.name] = *req
		}
		if lim != nil {
			res.Limits[p.name] = *lim
		}
		if req != nil && lim != nil && req.Cmp(*lim) > 0 {
			problems = append(problems, p.aboveLimit(ann, *req, *lim))
		}
	}
	return res, problems
}

// quantity is the quantity the annotation key sets, else its default def;
// nil when neither is set or the value is bad, which the problem then says.
func quantity(ann map[string]string, key, def string) (*resource.Quantity, string) {
	v, ok := ann[key]
	if !ok {
		if def == "" {
			return nil, ""
		}
		q := resource.MustParse(def)
		return &q, ""
	}
	q, err := resource.ParseQuantity(v)
	switch {
	case err != nil:
		return nil, fmt.Sprintf("%s: %s is not a Kubernetes quantity (like 100m, 1, 64Mi, 1Gi)", key, quote(v))
	case q.Sign() < 0:
		return nil, fmt.Sprintf("%s: %s is negative", key, quote(v))
	}
	return &q, ""
}

// aboveLimit says that request req is above limit lim, naming the
// annotations that set them.
func (p resourcePair) aboveLimit(ann map[string]string, req, lim resource.Quantity) string {
	reqVal, reqSet := ann[p.requestKey]
	limVal, limSet := ann[p.limitKey]
	switch {
	case reqSet && limSet:
		return fmt.Sprintf("%s: %s is above %s: %s", p.requestKey, quote(reqVal), p.limitKey, quote(limVal))
	case reqSet:
		return fmt.Sprintf("%s: %s is above the default %s limit %s (set %s too)", p.requestKey, quote(reqVal), p.name, lim.String(), p.limitKey)
	default:
		return fmt.Sprintf("%s: %s is below the default %s request %s (set %s too)", p.limitKey, quote(limVal), p.name, req.String(), p.requestKey)
	}
}

func appendNonEmpty(list []string, items ...string) []string {
	for _, s := range items {
		if s != "" {
			list = append(list, s)
		}
	}
	return list
}

// quote quotes an annotation value for a message, shortened when long.
func quote(v string) string {
	if r := []rune(v); len(r) > maxQuotedValue {
		return strconv.Quote(string(r[:maxQuotedValue])) + "..."
	}
	return strconv.Quote(v)
}
