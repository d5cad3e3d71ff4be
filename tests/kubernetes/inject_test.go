package kubernetes_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// testImage is the injector's --sidecar-image in TestInjectWithCertFiles.
const testImage = "registry.example/e2e/eventsidecar:test"

// errNotInjected says that a pod came back without its sidecar.
var errNotInjected = errors.New("pod not injected")

// TestInjectWithCertFiles runs the injector with a serving certificate from
// files, registers it by URL, and checks what the API server persists for
// pods created directly, by a Deployment and by a Job.
func TestInjectWithCertFiles(t *testing.T) {
	c := sharedCluster(t)
	inj := startCertFileInjector(t, c)
	ns := createNamespace(t, c, "e2e-inject-", map[string]string{testNamespaceLabel: "true"})
	waitInjecting(t, c, ns)
	pods := c.client.CoreV1().Pods(ns)

	t.Run("annotated pod with generateName", func(t *testing.T) {
		pod := testPod("bare-", "bare", injectAnnotation, "app", "custom")
		pod.Spec.Containers[1].Env = []corev1.EnvVar{{Name: httpURLEnv, Value: "http://127.0.0.1:9999"}}
		got := createAndGet(t, c, ns, pod)
		checkSidecar(t, got, testImage)
		checkAppEnv(t, got, map[string]map[string]string{"custom": {httpURLEnv: "http://127.0.0.1:9999"}})
	})
	t.Run("annotations", func(t *testing.T) { testAnnotations(t, c, ns) })
	t.Run("not opted in", func(t *testing.T) { testNotOptedIn(t, c, ns) })
	t.Run("own init container", func(t *testing.T) {
		pod := testPod("init-", "init", injectAnnotation, "app")
		pod.Spec.InitContainers = []corev1.Container{appContainer("setup")}
		got := createAndGet(t, c, ns, pod)
		checkSidecar(t, got, testImage)
		if names := containerNames(got.Spec.InitContainers); !slices.Equal(names, []string{sidecarName, "setup"}) {
			t.Errorf("init containers = %v, want [%s setup]", names, sidecarName)
		}
		checkAppEnv(t, got, nil)
	})
	t.Run("deployment", func(t *testing.T) {
		got := controllerPod(t, c, ns, "app.kubernetes.io/name=e2e-deploy", func(ctx context.Context) error {
			_, err := c.client.AppsV1().Deployments(ns).Create(ctx, testDeployment("e2e-deploy"), metav1.CreateOptions{})
			return err
		})
		checkSidecar(t, got, testImage)
		checkAppEnv(t, got, nil)
	})
	t.Run("job", func(t *testing.T) {
		got := controllerPod(t, c, ns, "batch.kubernetes.io/job-name=e2e-job", func(ctx context.Context) error {
			_, err := c.client.BatchV1().Jobs(ns).Create(ctx, testJob("e2e-job"), metav1.CreateOptions{})
			return err
		})
		checkSidecar(t, got, testImage)
		checkAppEnv(t, got, nil)
	})
	t.Run("server-side dry run", func(t *testing.T) {
		pod := testPod("dry-", "dry-run", injectAnnotation, "app")
		got, err := pods.Create(context.Background(), pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			t.Fatalf("dry-run create: %v", err)
		}
		checkSidecar(t, got, testImage)
		checkAppEnv(t, got, nil)
		if got.Name == "" {
			t.Error("the dry-run pod has no generated name")
		}
		checkNonePersisted(t, c, ns, "dry-run")
	})
	t.Run("bad annotations", func(t *testing.T) { testBadAnnotations(t, c, ns) })
	t.Run("reinvocation", func(t *testing.T) { testReinvocation(t, c, ns) })
	t.Run("injector down", func(t *testing.T) {
		inj.proc.kill()
		_, err := pods.Create(context.Background(), testPod("down-", "down", injectAnnotation, "app"), metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), "failed calling webhook") {
			t.Errorf("create with the injector down: err = %v, want a failed webhook call", err)
		}
		checkNonePersisted(t, c, ns, "down")
	})
}

// startCertFileInjector runs the injector with a serving certificate for
// 127.0.0.1 from the cluster's CA in files, waits until it is ready, and
// registers it by URL, followed by the test's own late webhook, for the
// namespaces labelled testNamespaceLabel.
func startCertFileInjector(t *testing.T, c *cluster) *injector {
	t.Helper()
	pair, err := c.ca.issue([]net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := pair.write(t.TempDir(), "injector")
	if err != nil {
		t.Fatal(err)
	}
	inj := startInjector(t, "injector", freeAddr(t), "--tls-cert-file", certFile, "--tls-key-file", keyFile, "--sidecar-image", testImage)
	inj.waitReady(t, c.ca.certPEM)
	late := podWebhook("late.e2e.eventsidecar.io", startLateWebhook(t, c.ca), c.ca.certPEM)
	late.ObjectSelector = &metav1.LabelSelector{MatchLabels: map[string]string{lateLabel: "true"}}
	never := admissionregistrationv1.NeverReinvocationPolicy
	late.ReinvocationPolicy = &never
	registerWebhooks(t, c, "eventsidecar-e2e", podWebhook("inject.eventsidecar.io", injectorURL(inj.addr), c.ca.certPEM), late)
	return inj
}

// testAnnotations checks that every optional annotation reaches the sidecar.
func testAnnotations(t *testing.T, c *cluster, ns string) {
	ann := map[string]string{
		injectKey: "true", configKey: "orders-sidecar", appPortKey: "8080",
		imageKey: "registry.example/e2e/custom:2", logLevelKey: "debug",
		cpuRequestKey: "100m", cpuLimitKey: "500m", memRequestKey: "32Mi", memLimitKey: "128Mi",
	}
	got := createAndGet(t, c, ns, testPod("ann-", "annotations", ann, "app"))
	sc := checkSidecar(t, got, "registry.example/e2e/custom:2")
	checkAppEnv(t, got, nil)
	if v := envValues(sc.Env, appPortEnv); !slices.Equal(v, []string{"8080"}) {
		t.Errorf("sidecar %s = %q, want [8080]", appPortEnv, v)
	}
	if !hasLogLevel(sc, "debug") {
		t.Errorf("sidecar command %q args %q: no --log-level debug", sc.Command, sc.Args)
	}
	if !mountsConfigMap(got, sc, "orders-sidecar") {
		t.Errorf("sidecar does not mount ConfigMap orders-sidecar read-only: volumes %+v, mounts %+v", got.Spec.Volumes, sc.VolumeMounts)
	}
	want := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
	}
	if !resourcesEqual(sc.Resources, want) {
		t.Errorf("sidecar resources = %+v, want %+v", sc.Resources, want)
	}
}

// testNotOptedIn checks that a pod without eventsidecar.io/inject: "true"
// is persisted as it was sent.
func testNotOptedIn(t *testing.T, c *cluster, ns string) {
	for _, tc := range []struct {
		name        string
		annotations map[string]string
	}{
		{"no annotation", nil},
		{"false", map[string]string{injectKey: "false"}},
		{"not exactly true", map[string]string{injectKey: "True"}},
		{"other annotations only", map[string]string{appPortKey: "http", imageKey: "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := createAndGet(t, c, ns, testPod("plain-", "plain", tc.annotations, "app"))
			checkUntouched(t, got)
		})
	}
}

// testBadAnnotations checks that a bad annotation value denies the pod with
// a message naming the annotation, and that nothing is persisted.
func testBadAnnotations(t *testing.T, c *cluster, ns string) {
	for _, tc := range []struct {
		name, key string
		ann       map[string]string
	}{
		{"app-port not a number", appPortKey, map[string]string{appPortKey: "http"}},
		{"cpu-request not a quantity", cpuRequestKey, map[string]string{cpuRequestKey: "lots"}},
		{"memory-limit not a quantity", memLimitKey, map[string]string{memLimitKey: "1 GB"}},
		{"memory request above limit", memRequestKey, map[string]string{memRequestKey: "1Gi", memLimitKey: "512Mi"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.ann[injectKey] = "true"
			_, err := c.client.CoreV1().Pods(ns).Create(context.Background(), testPod("bad-", "bad", tc.ann, "app"), metav1.CreateOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.key) {
				t.Errorf("create: err = %v, want one naming %s", err, tc.key)
			}
			checkNonePersisted(t, c, ns, "bad")
		})
	}
}

// testReinvocation checks that the pod gets one sidecar although the
// ServiceAccount plugin and a second webhook change the pod after the
// injector, and that the injector, called again, gives the second
// webhook's container the env.
func testReinvocation(t *testing.T, c *cluster, ns string) {
	pod := testPod("again-", "reinvocation", injectAnnotation, "app")
	pod.Labels[lateLabel] = "true"
	got := createAndGet(t, c, ns, pod)
	sc := checkSidecar(t, got, testImage)
	if names := containerNames(got.Spec.Containers); !slices.Equal(names, []string{"app", lateContainer}) {
		t.Fatalf("containers = %v, want [app %s]: the second webhook did not run", names, lateContainer)
	}
	checkAppEnv(t, got, nil)
	var tokenVolumes []string
	for _, v := range got.Spec.Volumes {
		if strings.HasPrefix(v.Name, kubeAPIAccess) && v.Projected != nil {
			tokenVolumes = append(tokenVolumes, v.Name)
		}
	}
	if len(tokenVolumes) != 1 {
		t.Fatalf("projected token volumes = %v, want one: the ServiceAccount plugin did not run", tokenVolumes)
	}
	if !slices.ContainsFunc(sc.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == tokenVolumes[0] }) {
		t.Errorf("sidecar mounts %+v: no %s, so the ServiceAccount plugin did not run again after the injector", sc.VolumeMounts, tokenVolumes[0])
	}
}

// createAndGet creates pod in ns and returns what the API server persisted.
func createAndGet(t *testing.T, c *cluster, ns string, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	created, err := c.client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod: %v", err)
	}
	got, err := c.client.CoreV1().Pods(ns).Get(ctx, created.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod %s: %v", created.Name, err)
	}
	return got
}

// checkNonePersisted checks that ns has no pod of the test case.
func checkNonePersisted(t *testing.T, c *cluster, ns, testCase string) {
	t.Helper()
	list, err := c.client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: caseLabel + "=" + testCase})
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	if len(list.Items) != 0 {
		t.Errorf("%d pods of case %s persisted, want none", len(list.Items), testCase)
	}
}

// controllerPod runs create, then waits for a pod matching selector that a
// controller creates, and returns it as persisted.
func controllerPod(t *testing.T, c *cluster, ns, selector string, create func(context.Context) error) *corev1.Pod {
	t.Helper()
	if err := create(context.Background()); err != nil {
		t.Fatalf("create the controller: %v", err)
	}
	var pod *corev1.Pod
	eventually(t, controllerPodTimeout, "a pod "+selector+" in "+ns, func() error {
		var err error
		pod, err = firstPod(c, ns, selector)
		return err
	})
	if pod.GenerateName == "" || len(pod.OwnerReferences) == 0 {
		t.Errorf("pod %s: generateName %q, owners %v: not made by a controller", pod.Name, pod.GenerateName, pod.OwnerReferences)
	}
	return pod
}

// firstPod is a pod of ns that matches selector.
func firstPod(c *cluster, ns, selector string) (*corev1.Pod, error) {
	list, err := c.client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	if len(list.Items) == 0 {
		return nil, apierrors.NewNotFound(corev1.Resource("pods"), selector)
	}
	return &list.Items[0], nil
}

// testDeployment is a one-replica Deployment of an annotated pod.
func testDeployment(name string) *appsv1.Deployment {
	labels := map[string]string{"app.kubernetes.io/name": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptrTo[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: injectAnnotation},
				Spec:       podSpec("app"),
			},
		},
	}
}

// testJob is a Job of an annotated pod.
func testJob(name string) *batchv1.Job {
	spec := podSpec("task")
	spec.RestartPolicy = corev1.RestartPolicyNever
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptrTo[int32](0),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: injectAnnotation},
				Spec:       spec,
			},
		},
	}
}

// hasLogLevel reports whether the sidecar is run with --log-level level.
func hasLogLevel(sc *corev1.Container, level string) bool {
	args := slices.Concat(sc.Command, sc.Args)
	for i, a := range args {
		if a == "--log-level="+level || a == "--log-level" && i+1 < len(args) && args[i+1] == level {
			return true
		}
	}
	return false
}

// mountsConfigMap reports whether the sidecar mounts a volume of ConfigMap
// name read-only.
func mountsConfigMap(pod *corev1.Pod, sc *corev1.Container, name string) bool {
	for _, v := range pod.Spec.Volumes {
		if v.ConfigMap == nil || v.ConfigMap.Name != name {
			continue
		}
		for _, m := range sc.VolumeMounts {
			if m.Name == v.Name && m.ReadOnly {
				return true
			}
		}
	}
	return false
}

// resourcesEqual compares requests and limits by value.
func resourcesEqual(got, want corev1.ResourceRequirements) bool {
	return listEqual(got.Requests, want.Requests) && listEqual(got.Limits, want.Limits)
}

func listEqual(got, want corev1.ResourceList) bool {
	if len(got) != len(want) {
		return false
	}
	for name, q := range want {
		g, ok := got[name]
		if !ok || g.Cmp(q) != 0 {
			return false
		}
	}
	return true
}
