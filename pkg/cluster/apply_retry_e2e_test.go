package cluster_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
)

// TestApplyRetriesABusyAPIServer: an API server that answers 503 and then
// 429 to an apply (overloaded, or restarting behind a load balancer) is
// asked again with the one retry policy, and the put lands.
func TestApplyRetriesABusyAPIServer(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	sa := env.ServiceAccount(t, ns, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"*"}})

	// A TLS proxy in front of the real API server, failing the first
	// applies of ConfigMap busy.
	upstream, err := url.Parse(env.Host())
	require.NoError(t, err)
	cas := x509.NewCertPool()
	require.True(t, cas.AppendCertsFromPEM(env.CAData()))
	proxy := httputil.NewSingleHostReverseProxy(upstream)
	proxy.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cas}}
	busy := []int{http.StatusServiceUnavailable, http.StatusTooManyRequests}
	var patches atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPatch && strings.HasSuffix(r.URL.Path, "/configmaps/busy") {
			if n := int(patches.Add(1)); n <= len(busy) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(busy[n-1])
				fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"busy, try again","code":%d}`, busy[n-1])
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	src := map[string]any{"kind": "cluster", "server": srv.URL, "token": sa.Token, "certificate_authority": string(ca), "namespace": ns}
	dir := build(t, map[string]string{"cm.yaml": configMap("busy")})
	res := rt.Run(t, "out", dir, map[string]any{"source": src, "params": map[string]any{"path": "cm.yaml"}}, nil)
	res.OK(t, nil)
	res.NoSecrets(t, sa.Token)
	require.Equal(t, int32(len(busy)+2), patches.Load(), "two refused, then the dry run and the apply")
	_, err = env.Client().CoreV1().ConfigMaps(ns).Get(t.Context(), "busy", metav1.GetOptions{})
	require.NoError(t, err)
}
