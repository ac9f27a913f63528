package cluster_test

import (
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
)

// docRole reads the Role for mode from docs/cluster-rbac.md, so the tests
// run with exactly what the documentation tells users to grant.
func docRole(t *testing.T, mode string) []rbacv1.PolicyRule {
	t.Helper()
	data, err := os.ReadFile("../../docs/cluster-rbac.md")
	require.NoError(t, err)
	m := regexp.MustCompile("(?s)<!-- role: " + mode + " -->\\s*```yaml\\n(.*?)```").FindSubmatch(data)
	require.NotNil(t, m, "docs/cluster-rbac.md has a Role for mode %s", mode)
	var role rbacv1.Role
	require.NoError(t, yaml.UnmarshalStrict(m[1], &role))
	require.NotEmpty(t, role.Rules)
	return role.Rules
}

func TestDirectModeWithTheDocumentedRole(t *testing.T) {
	env := cluster(t)
	ns := env.Namespace(t)
	sa := env.ServiceAccount(t, ns, docRole(t, "direct")...)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(dir+"/app.yaml", []byte(webDeployment+`---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web}
data: {greeting: hello}
`), 0o644))
	src := map[string]any{"kind": "cluster", "kubeconfig": string(sa.Kubeconfig), "namespace": ns}
	res := rt.Run(t, "out", dir, map[string]any{"source": src, "params": map[string]any{"path": "app.yaml", "prune": true, "timeout": "1m"}}, nil)
	res.OK(t, nil)
	require.NotContains(t, res.Stderr, "warning", "the documented Role leaves nothing out")
}
