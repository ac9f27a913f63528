package cluster_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
	"github.com/gitops-resource/gitops-resource/internal/testenv/kubetest"
)

// Issue #15 item 8: a Secret's values never reach the build log, plain or
// base64, whatever prints the Secret: a dry run's diff, the server's error
// or warning, or a failed rollout's report.

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// withB64 is each value and its base64 form, for NoSecrets.
func withB64(values ...string) []string {
	var out []string
	for _, v := range values {
		out = append(out, v, b64(v))
	}
	return out
}

// secretYAML is a Secret named name; data values are given plain and
// written base64. lastApplied adds kubectl's annotation, as a Secret
// exported with kubectl get -o yaml carries it: a copy of data, in clear.
// extra is YAML added after metadata (indented, it is more metadata).
func secretYAML(name string, data, stringData map[string]string, lastApplied bool, extra string) string {
	y := fmt.Sprintf("---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n", name)
	if lastApplied {
		copied := `{"apiVersion":"v1","data":{`
		sep := ""
		for k, v := range data {
			copied += fmt.Sprintf(`%s"%s":"%s"`, sep, k, b64(v))
			sep = ","
		}
		copied += `},"kind":"Secret","metadata":{"name":"` + name + `"}}`
		y += fmt.Sprintf("  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: '%s'\n", copied)
	}
	y += extra
	if len(data) > 0 {
		y += "data:\n"
		for k, v := range data {
			y += fmt.Sprintf("  %q: %s\n", k, b64(v))
		}
	}
	if len(stringData) > 0 {
		y += "stringData:\n"
		for k, v := range stringData {
			y += fmt.Sprintf("  %q: %q\n", k, v)
		}
	}
	return y
}

func TestDryRunOfASecretNamesTheKeysNeverTheValues(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	const (
		oldPassword, newPassword = "old-password-7f3a9c", "new-password-2b81d4"
		oldUser, newUser         = "old-user-c07e15", "new-user-94ad3f"
		goneToken, apiKey        = "gone-token-5e62a0", "api-key-d4c3b2a1"
	)
	put(t, env, ns, build(t, map[string]string{"s.yaml": secretYAML("db",
		map[string]string{"password": oldPassword, "token": goneToken}, map[string]string{"username": oldUser}, true, "")}),
		map[string]any{"path": "s.yaml"}).OK(t, nil)
	before, err := env.Client().CoreV1().Secrets(ns).Get(t.Context(), "db", metav1.GetOptions{})
	require.NoError(t, err)

	var out rt.Response
	res := put(t, env, ns, build(t, map[string]string{"s.yaml": secretYAML("db",
		map[string]string{"password": newPassword, "api-key": apiKey}, map[string]string{"username": newUser}, true, "")}),
		map[string]any{"path": "s.yaml", "dry_run": true})
	res.OK(t, &out)
	require.Equal(t, "true", out.Meta1("dry_run"))
	for _, line := range []string{
		"Secret/" + ns + "/db would be configured",
		"  data.password: changed (value hidden)",
		"  data.username: changed (value hidden)",
		"  data.token: removed (value hidden)",
		"  data.api-key: added (value hidden)",
		"  metadata.annotations.kubectl.kubernetes.io/last-applied-configuration: changed (value hidden)",
	} {
		require.Contains(t, res.Stderr, line+"\n")
	}
	res.NoSecrets(t, withB64(oldPassword, newPassword, oldUser, newUser, goneToken, apiKey)...)
	after, err := env.Client().CoreV1().Secrets(ns).Get(t.Context(), "db", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, before.ResourceVersion, after.ResourceVersion, "a dry run changes nothing")

	// A get of the Secret writes its state, never its data.
	getDir := t.TempDir()
	src := source(env, ns, map[string]any{"resources": []string{"secret/db"}})
	res = rt.Run(t, "in", getDir, map[string]any{"source": src, "version": map[string]string{"revision": "x"}}, nil)
	res.OK(t, nil)
	res.NoSecrets(t, withB64(oldPassword, oldUser, goneToken)...)
	for _, name := range []string{"status.json", "images.json"} {
		data, err := os.ReadFile(filepath.Join(getDir, name))
		require.NoError(t, err)
		rt.Result{Stdout: string(data)}.NoSecrets(t, withB64(oldPassword, oldUser, goneToken)...)
	}
}

// denyWeakPasswords installs an admission policy, for ns only, that rejects
// a Secret labelled strength: weak, and warns: its message quotes the new
// password and the one it replaces (base64, as the policy sees them), as a
// careless policy would.
func denyWeakPasswords(t *testing.T, env *kubetest.Env, ns string) {
	t.Helper()
	name := "deny-weak-" + ns
	vap := env.Client().AdmissionregistrationV1()
	fail := admissionregistrationv1.Fail
	_, err := vap.ValidatingAdmissionPolicies().Create(t.Context(), &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"secrets"}},
				},
			}}},
			Validations: []admissionregistrationv1.Validation{{
				Expression: `!has(object.metadata.labels) || !('strength' in object.metadata.labels) || object.metadata.labels.strength != 'weak'`,
				MessageExpression: `'password ' + object.data.password + ' is weak' + ` +
					`(oldObject != null && has(oldObject.data) && 'password' in oldObject.data ? ', and so was ' + oldObject.data.password : '')`,
			}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = vap.ValidatingAdmissionPolicies().Delete(ctx, name, metav1.DeleteOptions{})
	})
	// One binding denies, one warns (a binding may not do both).
	for _, action := range []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny, admissionregistrationv1.Warn} {
		binding := name + "-" + strings.ToLower(string(action))
		_, err = vap.ValidatingAdmissionPolicyBindings().Create(t.Context(), &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
			ObjectMeta: metav1.ObjectMeta{Name: binding},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
				PolicyName:        name,
				ValidationActions: []admissionregistrationv1.ValidationAction{action},
				MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
					MatchLabels: map[string]string{corev1.LabelMetadataName: ns}}},
			},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = vap.ValidatingAdmissionPolicyBindings().Delete(ctx, binding, metav1.DeleteOptions{})
		})
	}
	// The API server takes the policy up a moment later.
	probe := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "probe", Labels: map[string]string{"strength": "weak"}},
		Data: map[string][]byte{"password": []byte("probe")}}
	for deadline := time.Now().Add(30 * time.Second); ; {
		_, err := env.Client().CoreV1().Secrets(ns).Create(t.Context(), probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if apierrors.IsInvalid(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the admission policy %s never took effect: a weak password gets %v", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestSecretsTheServerRejectsShowNoValues(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	denyWeakPasswords(t, env, ns)
	const (
		strong, weak         = "strong-pass-5d1e8b", "weak-pass-93c0f1"
		frozenOld, frozenNew = "frozen-old-6a2f90", "frozen-new-0c7b3e"
		badKeyValue          = "bad-key-value-1e9d77"
	)
	put(t, env, ns, build(t, map[string]string{"s.yaml": secretYAML("db", map[string]string{"password": strong}, nil, false, "") +
		secretYAML("frozen", map[string]string{"key": frozenOld}, nil, false, "immutable: true\n")}),
		map[string]any{"path": "s.yaml"}).OK(t, nil)

	res := put(t, env, ns, build(t, map[string]string{"s.yaml": secretYAML("db", map[string]string{"password": weak}, nil, false, "  labels: {strength: weak}\n") +
		secretYAML("frozen", map[string]string{"key": frozenNew}, nil, false, "immutable: true\n") +
		secretYAML("odd", map[string]string{"bad key!": badKeyValue}, nil, false, "")}),
		map[string]any{"path": "s.yaml"})
	res.Fails(t, "nothing applied",
		"Secret/"+ns+"/db", "denied request: password [redacted] is weak, and so was [redacted]",
		"Secret/"+ns+"/frozen", "field is immutable",
		"Secret/"+ns+"/odd", `Invalid value: "bad key!"`)
	require.Contains(t, res.Stderr, "Warning: Validation failed for ValidatingAdmissionPolicy", "the policy's warning is printed, hidden too")
	res.NoSecrets(t, withB64(strong, weak, frozenOld, frozenNew, badKeyValue)...)
}

func TestFailedRolloutReportShowsNoSecretValues(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	const password = "rollout-pass-8c4e2d"
	envFrom := "        env:\n        - name: DB_PASSWORD\n          valueFrom: {secretKeyRef: {name: db, key: password}}\n"
	dir := build(t, map[string]string{"app.yaml": secretYAML("db", map[string]string{"password": password}, nil, false, "") +
		"---\n" + deploymentYAML("web", "registry.example/web:1", 1, envFrom+stuck)})

	// kwok runs no containers: play the kubelet of an app that prints its
	// password as it dies, and a probe whose output quotes it in base64.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		pods := env.Client().CoreV1().Pods(ns)
		for ctx.Err() == nil {
			list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err == nil {
				for _, p := range list.Items {
					if len(p.Status.ContainerStatuses) > 0 {
						continue
					}
					_, _ = env.Client().CoreV1().Events(ns).Create(ctx, &corev1.Event{
						ObjectMeta:     metav1.ObjectMeta{GenerateName: p.Name + "."},
						InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: p.Name, UID: p.UID, APIVersion: "v1"},
						Type:           corev1.EventTypeWarning, Reason: "Unhealthy", Source: corev1.EventSource{Component: "kubelet"},
						Message:        "Readiness probe failed: auth " + b64(password) + " refused",
						FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now(), Count: 1,
					}, metav1.CreateOptions{})
					p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: "registry.example/web:1",
						State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1,
							Message: "FATAL: login as app with DB_PASSWORD=" + password + " failed"}}}}
					_, _ = pods.UpdateStatus(ctx, &p, metav1.UpdateOptions{})
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	res := put(t, env, ns, dir, map[string]any{"path": "app.yaml", "timeout": "2m"})
	res.Fails(t, "Deployment/"+ns+"/web failed: Progressing=False ProgressDeadlineExceeded",
		"container app terminated: Error (exit 1) FATAL: login as app with DB_PASSWORD=[redacted] failed",
		"Warning Unhealthy Pod/web-", "Readiness probe failed: auth [redacted] refused")
	res.NoSecrets(t, withB64(password)...)
}
