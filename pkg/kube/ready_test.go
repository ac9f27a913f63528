package kube

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/gitops-resource/gitops-resource/pkg/health"
)

func obj(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	data, err := yaml.YAMLToJSON([]byte(y))
	require.NoError(t, err)
	u := &unstructured.Unstructured{}
	require.NoError(t, u.UnmarshalJSON(data)) // numbers as int64, as from the API server
	return u
}

func TestVerifyImagesRule(t *testing.T) {
	const d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	const d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	dep := obj(t, `{apiVersion: apps/v1, kind: Deployment, spec: {template: {spec: {containers: [{name: app, image: "r.example/web@`+d1+`"}, {name: side, image: "r.example/side:1"}]}}}}`)
	pod := func(imageID string) *corev1.Pod {
		return &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "app", ImageID: imageID}, {Name: "side", ImageID: "docker-pullable://r.example/side@" + d2}}}}
	}
	ready := health.Status{State: health.Current, Message: "1/1 available"}
	require.Equal(t, health.Current, verifyImages(dep, []*corev1.Pod{pod("docker-pullable://r.example/web@" + d1)}, ready).State)
	require.Equal(t, health.InProgress, verifyImages(dep, []*corev1.Pod{pod("")}, ready).State)
	require.Equal(t, health.InProgress, verifyImages(dep, nil, ready).State)
	got := verifyImages(dep, []*corev1.Pod{pod("r.example/web@" + d2)}, ready)
	require.Equal(t, health.Failed, got.State)
	require.Contains(t, got.Message, "runs "+d2+", not the applied "+d1)
	unpinned := obj(t, `{apiVersion: apps/v1, kind: Deployment, spec: {template: {spec: {containers: [{name: app, image: "r.example/web:1"}]}}}}`)
	require.Equal(t, health.Status{State: health.Current, Message: "1/1 available, images not pinned by digest: not verified"}, verifyImages(unpinned, nil, ready))
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
