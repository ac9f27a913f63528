package cluster_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
)

// TestClusterCredFiles: a put reads its credentials from files in the
// build dir, as a secrets resource's get writes them (a kubeconfig; or a
// token and a CA with source.server), and never prints them.
func TestClusterCredFiles(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	sa := env.ServiceAccount(t, ns, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"*"}})
	tests := []struct {
		name   string
		source map[string]any
		params map[string]any
	}{
		{"token and CA", map[string]any{"server": env.Host()},
			map[string]any{"token_file": "secrets/token", "certificate_authority_file": "secrets/ca.crt"}},
		{"kubeconfig", map[string]any{},
			map[string]any{"kubeconfig_file": "secrets/kubeconfig"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := map[string]string{"token and CA": "from-token", "kubeconfig": "from-kubeconfig"}[tc.name]
			dir := build(t, map[string]string{
				"secrets/token":      sa.Token + "\n",
				"secrets/ca.crt":     string(env.CAData()),
				"secrets/kubeconfig": string(sa.Kubeconfig),
				"cm.yaml":            configMap(name),
			})
			src := map[string]any{"kind": "cluster", "namespace": ns}
			for k, v := range tc.source {
				src[k] = v
			}
			params := map[string]any{"path": "cm.yaml"}
			for k, v := range tc.params {
				params[k] = v
			}
			res := rt.Run(t, "out", dir, map[string]any{"source": src, "params": params}, nil)
			res.OK(t, nil)
			res.NoSecrets(t, sa.Token)
			_, err := env.Client().CoreV1().ConfigMaps(ns).Get(t.Context(), name, metav1.GetOptions{})
			require.NoError(t, err)

			// A token the server refuses (in the file) is reported, not
			// printed.
			dir = build(t, map[string]string{"secrets/token": "not-" + sa.Token, "secrets/ca.crt": string(env.CAData()),
				"secrets/kubeconfig": string(sa.Kubeconfig), "cm.yaml": configMap(name)})
			if tc.name == "token and CA" {
				res = rt.Run(t, "out", dir, map[string]any{"source": src, "params": params}, nil)
				res.Fails(t, "401")
				res.NoSecrets(t, "not-"+sa.Token)
			}
		})
	}
}

// TestClusterCredFilesRefused: credentials given twice, a missing file, and
// a kubeconfig whose user runs a credential plugin are config errors,
// reported before any request (the server here does not exist).
func TestClusterCredFilesRefused(t *testing.T) {
	t.Parallel()
	rt.Binaries(t)
	kubeconfig := func(user string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
users: [{name: u, user: %s}]
`, user)
	}
	exec := kubeconfig(`{exec: {apiVersion: client.authentication.k8s.io/v1, command: aws, args: [eks, get-token], env: [{name: AWS_SECRET_ACCESS_KEY, value: very-secret-key-0123}]}}`)
	provider := kubeconfig(`{auth-provider: {name: oidc, config: {client-secret: very-secret-oidc-0123}}}`)
	dir := build(t, map[string]string{"kubeconfig": exec, "provider": provider, "token": "t0123456789", "cm.yaml": configMap("x")})
	tests := []struct {
		name, verb string
		source     map[string]any
		params     map[string]any
		want       []string
	}{
		{"exec plugin in a file", "out", map[string]any{}, map[string]any{"kubeconfig_file": "kubeconfig"},
			[]string{`params.kubeconfig_file kubeconfig user "u" gets its credentials from the exec credential plugin "aws"`, "the image has no credential plugins", "params.token_file"}},
		{"exec plugin inline", "check", map[string]any{"kubeconfig": exec, "resources": []string{"deployment/web"}}, nil,
			[]string{`source.kubeconfig user "u" gets its credentials from the exec credential plugin "aws"`}},
		{"auth provider", "out", map[string]any{}, map[string]any{"kubeconfig_file": "provider"},
			[]string{`the auth provider "oidc"`}},
		{"token twice", "out", map[string]any{"server": "https://127.0.0.1:1", "token": "t0123456789"}, map[string]any{"token_file": "token"},
			[]string{"source.token and params.token_file exclude each other"}},
		{"kubeconfig file and server", "out", map[string]any{"server": "https://127.0.0.1:1"}, map[string]any{"kubeconfig_file": "kubeconfig"},
			[]string{"params.kubeconfig_file and source.server/token/certificate_authority"}},
		{"missing file", "out", map[string]any{"server": "https://127.0.0.1:1"}, map[string]any{"token_file": "nope"},
			[]string{"params.token_file", "nope"}},
		{"outside the build dir", "out", map[string]any{"server": "https://127.0.0.1:1"}, map[string]any{"token_file": "../token"},
			[]string{"params.token_file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := map[string]any{"kind": "cluster"}
			for k, v := range tc.source {
				src[k] = v
			}
			params := map[string]any{"path": "cm.yaml"}
			for k, v := range tc.params {
				params[k] = v
			}
			req := map[string]any{"source": src, "params": params}
			if tc.verb == "check" {
				req = map[string]any{"source": src}
			}
			res := rt.Run(t, tc.verb, dir, req, nil)
			res.Fails(t, tc.want...)
			require.NotContains(t, res.Stderr, "127.0.0.1:1", "no request was made")
			res.NoSecrets(t, "very-secret-key-0123", "very-secret-oidc-0123")
		})
	}
}
