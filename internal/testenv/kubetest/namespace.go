package kubetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// cleanupTimeout bounds each deletion made at test cleanup.
const cleanupTimeout = 30 * time.Second

// Namespace creates a namespace of its own for t, named after the test, and
// deletes it when t ends. In Full mode it returns once the namespace's
// default ServiceAccount exists, so pods are admitted at once.
func (e *Env) Namespace(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns, err := e.CreateNamespace(ctx, namespacePrefix(t.Name()))
	if err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	t.Cleanup(func() {
		if e.stopped.Load() && !e.Reused() {
			return // gone with the control plane
		}
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		// Without a namespace controller (APIOnly) the namespace stays
		// Terminating; it is gone with the control plane.
		policy := metav1.DeletePropagationBackground
		if err := e.client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil {
			t.Errorf("kubetest: delete namespace %s: %v", ns, err)
		}
	})
	return ns
}

// CreateNamespace is Namespace for a program: it creates a namespace named
// prefix and a random suffix, which goes with the control plane. In Full
// mode it returns once the namespace's default ServiceAccount exists.
func (e *Env) CreateNamespace(ctx context.Context, prefix string) (string, error) {
	ns, err := e.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: prefix,
			Labels:       map[string]string{"app.kubernetes.io/managed-by": "kubetest"},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("create namespace %s*: %w", prefix, err)
	}
	if e.mode == Full {
		if err := e.waitServiceAccount(ctx, nil, ns.Name); err != nil {
			return "", fmt.Errorf("namespace %s: %w", ns.Name, err)
		}
	}
	return ns.Name, nil
}

// namespacePrefix turns a test name into a DNS label prefix for GenerateName.
func namespacePrefix(testName string) string {
	var b strings.Builder
	dash := true // no leading dash
	for _, r := range strings.ToLower(testName) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	name := strings.TrimRight(b.String(), "-")
	if len(name) > 50 {
		name = strings.TrimRight(name[:50], "-")
	}
	if name == "" || name[0] >= '0' && name[0] <= '9' {
		name = "test-" + name
	}
	return strings.TrimRight(name, "-") + "-"
}

// ServiceAccount is an identity with exactly the permissions of one Role.
type ServiceAccount struct {
	Name      string
	Namespace string
	// Token is a bound token from the TokenRequest API, valid for an hour.
	Token string
	// Kubeconfig is inline YAML with the token and CA, its context set to Namespace.
	Kubeconfig []byte
	// Config is a client config authenticating with Token.
	Config *rest.Config
}

// ServiceAccount creates, in namespace, a ServiceAccount bound to a Role
// holding rules (no rules: no permissions at all) and mints a token for it,
// for tests of what a pipeline may and may not do. All of it is deleted with
// the namespace.
func (e *Env) ServiceAccount(t testing.TB, namespace string, rules ...rbacv1.PolicyRule) *ServiceAccount {
	t.Helper()
	sa, err := e.serviceAccount(t.Context(), namespace, rules)
	if err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	return sa
}

func (e *Env) serviceAccount(ctx context.Context, namespace string, rules []rbacv1.PolicyRule) (*ServiceAccount, error) {
	core, rbac := e.client.CoreV1(), e.client.RbacV1()
	sa, err := core.ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "kubetest-"},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create service account in %s: %w", namespace, err)
	}
	meta := metav1.ObjectMeta{Name: sa.Name, Namespace: namespace}
	if len(rules) > 0 {
		if _, err := rbac.Roles(namespace).Create(ctx, &rbacv1.Role{ObjectMeta: meta, Rules: rules}, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("create role %s/%s: %w", namespace, sa.Name, err)
		}
		binding := &rbacv1.RoleBinding{
			ObjectMeta: meta,
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: sa.Name},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: namespace}},
		}
		if _, err := rbac.RoleBindings(namespace).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("create role binding %s/%s: %w", namespace, sa.Name, err)
		}
	}
	expiry := int64(time.Hour / time.Second)
	tr, err := core.ServiceAccounts(namespace).CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("request token for service account %s/%s: %w", namespace, sa.Name, err)
	}
	token := tr.Status.Token
	kc, err := kubeconfig(e.config.Host, e.config.CAData, sa.Name, clientcmdapi.AuthInfo{Token: token}, namespace)
	if err != nil {
		return nil, err
	}
	return &ServiceAccount{
		Name:       sa.Name,
		Namespace:  namespace,
		Token:      token,
		Kubeconfig: kc,
		Config: &rest.Config{
			Host:            e.config.Host,
			BearerToken:     token,
			TLSClientConfig: rest.TLSClientConfig{CAData: e.config.CAData},
		},
	}, nil
}
