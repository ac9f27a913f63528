package kube

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func obj(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	data, err := yaml.YAMLToJSON([]byte(y))
	require.NoError(t, err)
	u := &unstructured.Unstructured{}
	require.NoError(t, u.UnmarshalJSON(data)) // numbers as int64, as from the API server
	return u
}

func TestReadinessRules(t *testing.T) {
	tests := []struct {
		name  string
		obj   string
		state State
		msg   string
	}{
		{"deployment not observed", `{apiVersion: apps/v1, kind: Deployment, metadata: {generation: 2}, spec: {replicas: 3}, status: {observedGeneration: 1, updatedReplicas: 3, replicas: 3, availableReplicas: 3}}`,
			InProgress, "waiting for the controller to observe generation 2"},
		{"deployment updating", `{apiVersion: apps/v1, kind: Deployment, metadata: {generation: 2}, spec: {replicas: 3}, status: {observedGeneration: 2, updatedReplicas: 1, replicas: 4, availableReplicas: 3}}`,
			InProgress, "1/3 updated"},
		{"deployment old replicas left", `{apiVersion: apps/v1, kind: Deployment, metadata: {generation: 2}, spec: {replicas: 3}, status: {observedGeneration: 2, updatedReplicas: 3, replicas: 4, availableReplicas: 3}}`,
			InProgress, "3/3 updated, 1 old replicas pending termination"},
		{"deployment not available", `{apiVersion: apps/v1, kind: Deployment, metadata: {generation: 2}, spec: {replicas: 3}, status: {observedGeneration: 2, updatedReplicas: 3, replicas: 3, availableReplicas: 2}}`,
			InProgress, "3/3 updated, 2/3 available"},
		{"deployment ready", `{apiVersion: apps/v1, kind: Deployment, metadata: {generation: 2}, spec: {replicas: 3}, status: {observedGeneration: 2, updatedReplicas: 3, replicas: 3, availableReplicas: 3}}`,
			Current, "3/3 available"},
		{"deployment default replicas", `{apiVersion: apps/v1, kind: Deployment, metadata: {generation: 1}, spec: {}, status: {observedGeneration: 1, updatedReplicas: 1, replicas: 1, availableReplicas: 1}}`,
			Current, "1/1 available"},
		{"deployment scaled to zero", `{apiVersion: apps/v1, kind: Deployment, metadata: {generation: 1}, spec: {replicas: 0}, status: {observedGeneration: 1}}`,
			Current, "0/0 available"},
		{"deployment deadline exceeded", `{apiVersion: apps/v1, kind: Deployment, metadata: {generation: 1}, spec: {replicas: 1}, status: {observedGeneration: 1, conditions: [{type: Progressing, status: "False", reason: ProgressDeadlineExceeded, message: "ReplicaSet \"web-1\" has timed out progressing."}]}}`,
			Failed, `Progressing=False ProgressDeadlineExceeded: ReplicaSet "web-1" has timed out progressing.`},
		{"deployment stale deadline of an older generation", `{apiVersion: apps/v1, kind: Deployment, metadata: {generation: 2}, spec: {replicas: 1}, status: {observedGeneration: 1, conditions: [{type: Progressing, status: "False", reason: ProgressDeadlineExceeded}]}}`,
			InProgress, "waiting for the controller to observe generation 2"},
		{"statefulset rolling", `{apiVersion: apps/v1, kind: StatefulSet, metadata: {generation: 1}, spec: {replicas: 2}, status: {observedGeneration: 1, readyReplicas: 2, updatedReplicas: 1, currentRevision: a, updateRevision: b}}`,
			InProgress, "1/2 updated"},
		{"statefulset not ready", `{apiVersion: apps/v1, kind: StatefulSet, metadata: {generation: 1}, spec: {replicas: 2}, status: {observedGeneration: 1, readyReplicas: 1, currentRevision: b, updateRevision: b}}`,
			InProgress, "1/2 ready"},
		{"statefulset partition", `{apiVersion: apps/v1, kind: StatefulSet, metadata: {generation: 1}, spec: {replicas: 3, updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 2}}}, status: {observedGeneration: 1, readyReplicas: 3, updatedReplicas: 1, currentRevision: a, updateRevision: b}}`,
			Current, "1/1 updated (partition 2)"},
		{"statefulset ready", `{apiVersion: apps/v1, kind: StatefulSet, metadata: {generation: 1}, spec: {replicas: 2}, status: {observedGeneration: 1, readyReplicas: 2, updatedReplicas: 2, currentRevision: b, updateRevision: b}}`,
			Current, "2/2 ready"},
		{"statefulset on delete", `{apiVersion: apps/v1, kind: StatefulSet, metadata: {generation: 1}, spec: {updateStrategy: {type: OnDelete}}, status: {observedGeneration: 1}}`,
			Current, "updateStrategy OnDelete: not waiting for pods to be replaced"},
		{"daemonset updating", `{apiVersion: apps/v1, kind: DaemonSet, metadata: {generation: 1}, status: {observedGeneration: 1, desiredNumberScheduled: 3, updatedNumberScheduled: 2, numberAvailable: 3}}`,
			InProgress, "2/3 updated"},
		{"daemonset unavailable", `{apiVersion: apps/v1, kind: DaemonSet, metadata: {generation: 1}, status: {observedGeneration: 1, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 1}}`,
			InProgress, "1/3 available"},
		{"daemonset ready", `{apiVersion: apps/v1, kind: DaemonSet, metadata: {generation: 1}, status: {observedGeneration: 1, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 3}}`,
			Current, "3/3 available"},
		{"job running", `{apiVersion: batch/v1, kind: Job, status: {active: 1}}`, InProgress, "1 active, 0 succeeded, 0 failed"},
		{"job complete", `{apiVersion: batch/v1, kind: Job, status: {succeeded: 1, conditions: [{type: Complete, status: "True"}]}}`, Current, "complete (1 succeeded)"},
		{"job failed", `{apiVersion: batch/v1, kind: Job, status: {failed: 6, conditions: [{type: Failed, status: "True", reason: BackoffLimitExceeded, message: Job has reached the specified backoff limit}]}}`,
			Failed, "Failed BackoffLimitExceeded: Job has reached the specified backoff limit"},
		{"crd not established", `{apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, status: {conditions: [{type: NamesAccepted, status: "True"}]}}`,
			InProgress, "waiting for condition Established"},
		{"crd established", `{apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, status: {conditions: [{type: Established, status: "True"}]}}`,
			Current, "Established"},
		{"custom resource not ready", `{apiVersion: example.com/v1, kind: Widget, metadata: {generation: 1}, status: {observedGeneration: 1, conditions: [{type: Ready, status: "False", reason: Pending, message: waiting for db}]}}`,
			InProgress, "Ready=False Pending: waiting for db"},
		{"custom resource stale", `{apiVersion: example.com/v1, kind: Widget, metadata: {generation: 2}, status: {observedGeneration: 1, conditions: [{type: Ready, status: "True"}]}}`,
			InProgress, "waiting for the controller to observe generation 2"},
		{"custom resource ready", `{apiVersion: example.com/v1, kind: Widget, metadata: {generation: 2}, status: {observedGeneration: 2, conditions: [{type: Ready, status: "True"}]}}`,
			Current, "Ready"},
		{"custom resource stalled", `{apiVersion: example.com/v1, kind: Widget, status: {conditions: [{type: Stalled, status: "True", reason: BadSpec, message: no such plan}, {type: Ready, status: "False"}]}}`,
			Failed, "Stalled=True BadSpec: no such plan"},
		{"plain object exists", `{apiVersion: v1, kind: ConfigMap}`, Current, "exists"},
		{"service exists", `{apiVersion: v1, kind: Service, spec: {type: LoadBalancer}}`, Current, "exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := obj(t, tt.obj)
			got := RuleFor(groupKind(o)).Status(o)
			require.Equal(t, Status{tt.state, tt.msg}, got)
		})
	}
}

func TestPodProblem(t *testing.T) {
	waiting := func(reason string) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: "app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "m"}}}
	}
	tests := []struct {
		name string
		pod  corev1.PodStatus
		want string
	}{
		{"creating", corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{waiting("ContainerCreating")}}, ""},
		{"pull backoff", corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{waiting("ImagePullBackOff")}}, "container app: ImagePullBackOff: m"},
		{"pull error", corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{waiting("ErrImagePull")}}, "container app: ErrImagePull: m"},
		{"crash loop in init", corev1.PodStatus{InitContainerStatuses: []corev1.ContainerStatus{waiting("CrashLoopBackOff")}}, "container app: CrashLoopBackOff: m"},
		{"config error", corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{waiting("CreateContainerConfigError")}}, "container app: CreateContainerConfigError: m"},
		{"running", corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "app", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, PodProblem(&corev1.Pod{Status: tt.pod}))
		})
	}
}

func TestVerifyImagesRule(t *testing.T) {
	const d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	const d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	dep := obj(t, `{apiVersion: apps/v1, kind: Deployment, spec: {template: {spec: {containers: [{name: app, image: "r.example/web@`+d1+`"}, {name: side, image: "r.example/side:1"}]}}}}`)
	pod := func(imageID string) *corev1.Pod {
		return &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "app", ImageID: imageID}, {Name: "side", ImageID: "docker-pullable://r.example/side@" + d2}}}}
	}
	ready := Status{Current, "1/1 available"}
	require.Equal(t, Current, verifyImages(dep, []*corev1.Pod{pod("docker-pullable://r.example/web@" + d1)}, ready).State)
	require.Equal(t, InProgress, verifyImages(dep, []*corev1.Pod{pod("")}, ready).State)
	require.Equal(t, InProgress, verifyImages(dep, nil, ready).State)
	got := verifyImages(dep, []*corev1.Pod{pod("r.example/web@" + d2)}, ready)
	require.Equal(t, Failed, got.State)
	require.Contains(t, got.Message, "runs "+d2+", not the applied "+d1)
	unpinned := obj(t, `{apiVersion: apps/v1, kind: Deployment, spec: {template: {spec: {containers: [{name: app, image: "r.example/web:1"}]}}}}`)
	require.Equal(t, Status{Current, "1/1 available, images not pinned by digest: not verified"}, verifyImages(unpinned, nil, ready))
}

func TestDecodeAndStamp(t *testing.T) {
	objs, err := Decode([]byte("---\n# empty\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n---\n"+
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: prod}\nspec: {template: {spec: {initContainers: [{name: init, image: busybox}], containers: [{name: app, image: web:1}, {name: b, image: busybox}]}}}\n"), "app.yaml")
	require.NoError(t, err)
	require.Len(t, objs, 2)
	require.Equal(t, "ConfigMap/a", Ref(objs[0]))
	require.Equal(t, "Deployment/prod/web", Ref(objs[1]))
	require.Equal(t, []string{"busybox", "web:1"}, Images(objs[1]))

	Stamp(objs[1], Provenance{SetID: "s1", Revision: "abc", BuildURL: "https://ci/builds/1"})
	ann := objs[1].GetAnnotations()
	require.Equal(t, "abc", ann[AnnotationRevision])
	require.Equal(t, "https://ci/builds/1", ann[AnnotationBuildURL])
	require.Equal(t, "busybox,web:1", ann[AnnotationImages])
	require.Equal(t, "s1", objs[1].GetLabels()[LabelSet])
	require.NotContains(t, ann[AnnotationLastApplied], AnnotationLastApplied, "the last-applied manifest does not nest itself")
	Stamp(objs[0], Provenance{SetID: "s1"})
	require.NotContains(t, objs[0].GetAnnotations(), AnnotationLastApplied, "only workloads keep a rollback copy")

	_, err = Decode([]byte("kind: ConfigMap\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"), "bad.yaml")
	require.ErrorContains(t, err, "bad.yaml: object 1 has no apiVersion or kind")
	require.ErrorContains(t, err, "bad.yaml: ConfigMap/x appears twice")
	_, err = Decode([]byte("a: [b"), "broken.yaml")
	require.ErrorContains(t, err, "broken.yaml: document 1 is not valid YAML")
}

func TestDiff(t *testing.T) {
	a := map[string]any{"spec": map[string]any{"replicas": 1, "list": []any{"x", "y"}, "gone": true}}
	b := map[string]any{"spec": map[string]any{"replicas": 2, "list": []any{"x", "z"}, "new": "v"}}
	require.Equal(t, []string{
		"spec.gone: true → (none)",
		"spec.list[1]: y → z",
		"spec.new: (none) → v",
		"spec.replicas: 1 → 2",
	}, Diff(a, b))
}

func TestClientOptionsRejectContradictions(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		want string
	}{
		{"nothing", nil, "no credentials"},
		{"both", []Option{WithKubeconfig([]byte("apiVersion: v1"), ""), WithToken("https://h", "t", nil)}, "either kubeconfig or server with token"},
		{"token without server", []Option{WithToken("", "t", nil)}, "token needs server"},
		{"insecure with CA", []Option{WithToken("https://h", "t", []byte("ca")), WithInsecureSkipTLSVerify()}, "contradict"},
		{"not a URL", []Option{WithToken("h:6443", "t", nil)}, "must be a URL"},
		{"unparsable kubeconfig", []Option{WithKubeconfig([]byte("clusters: [a: {secret-value"), "")}, "kubeconfig is not a valid kubeconfig"},
		{"unknown context", []Option{WithKubeconfig([]byte("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://h'}}]\ncontexts: [{name: a, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: t}}]\n"), "b")}, `context "b" is not in the kubeconfig: it has "a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts...)
			require.ErrorContains(t, err, tt.want)
			require.NotContains(t, err.Error(), "secret-value")
		})
	}
	c, err := New(WithKubeconfig([]byte("apiVersion: v1\nkind: Config\ncurrent-context: a\nclusters: [{name: c, cluster: {server: 'https://h:6443'}}]\ncontexts: [{name: a, context: {cluster: c, user: u, namespace: team}}]\nusers: [{name: u, user: {token: t}}]\n"), ""))
	require.NoError(t, err)
	require.Equal(t, "team", c.Namespace(), "the context's namespace is the default")
	require.Equal(t, "https://h:6443", c.Host())
}

func TestWaitErrorMessages(t *testing.T) {
	require.Equal(t, "Deployment/p/web failed: Progressing=False ProgressDeadlineExceeded: x",
		(&WaitError{Failed: []string{"Deployment/p/web failed: Progressing=False ProgressDeadlineExceeded: x"}}).Error())
	require.Equal(t, "timed out after 5m0s still waiting for Deployment/p/web (1/3 available), Job/p/m (1 active, 0 succeeded, 0 failed)",
		(&WaitError{Timeout: 5 * time.Minute, Pending: []string{"Deployment/p/web (1/3 available)", "Job/p/m (1 active, 0 succeeded, 0 failed)"}}).Error())
	require.Equal(t, "interrupted while waiting for Deployment/p/web (1/3 available)",
		(&WaitError{Interrupted: true, Pending: []string{"Deployment/p/web (1/3 available)"}}).Error())
}
