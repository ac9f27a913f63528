package agenttest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/gitops-resource/gitops-resource/internal/proc"
	"github.com/gitops-resource/gitops-resource/internal/testenv/kubetest"
)

// ArgoCDNamespace is the namespace Argo CD runs for: its ConfigMaps, the
// AppProject default and the Applications it reconciles live there.
const ArgoCDNamespace = "argocd"

// ArgoCD is a running redis, argocd-repo-server and
// argocd-application-controller.
//
// Every listener is on 127.0.0.1 on a free port (the controller's metrics
// server too: Argo CD hard-codes 0.0.0.0 there, which hack/agents-build.sh
// patches, tools/argocd/metrics-on-loopback.patch); the repo-server's askpass socket and temp files are in Dir
// (ARGOCD_ASK_PASS_SOCK, TMPDIR), so several stacks can run side by side.
type ArgoCD struct {
	stack
	repoServerAddr string
	redisAddr      string
}

// StartArgoCD installs Argo CD's CRDs into env, creates the argocd namespace
// with the argocd-* ConfigMaps and Secret of a stock install and the
// AppProject default (any repo, any destination), starts redis,
// argocd-repo-server and argocd-application-controller (in-cluster cluster =
// env), waits until they are ready, and stops them when t ends. Missing
// binaries skip t, or fail it in CI.
func StartArgoCD(t testing.TB, env *kubetest.Env, opts ...Option) *ArgoCD {
	t.Helper()
	return start(t, func(ctx context.Context) (*ArgoCD, error) { return LaunchArgoCD(ctx, env, opts...) })
}

// LaunchArgoCD is StartArgoCD for callers without a testing.TB: ctx bounds
// the start only, and the caller calls Stop.
func LaunchArgoCD(ctx context.Context, env *kubetest.Env, opts ...Option) (_ *ArgoCD, err error) {
	o := defaults()
	for _, opt := range opts {
		opt(&o)
	}
	ctx, cancel := context.WithTimeout(ctx, o.startTimeout)
	defer cancel()
	bin, err := argoCDAgent.find(ctx, o.binDir)
	if err != nil {
		return nil, fmt.Errorf("start argocd: %w", err)
	}
	redisServer, err := findRedis()
	if err != nil {
		return nil, fmt.Errorf("start argocd: %w", err)
	}
	began := time.Now()
	manifests := filepath.Join(bin, "..", "manifests")
	ap, err := newApplier(env.Config())
	if err != nil {
		return nil, fmt.Errorf("start argocd: %w", err)
	}
	if err := ap.installCRDs(ctx, filepath.Join(manifests, "crds")); err != nil {
		return nil, fmt.Errorf("start argocd: install CRDs: %w", err)
	}
	config, err := readManifests(filepath.Join(manifests, "config"))
	if err != nil {
		return nil, fmt.Errorf("start argocd: %w", err)
	}
	objs := append([]*unstructured.Unstructured{namespaceObject(ArgoCDNamespace)}, config...)
	objs = append(objs, defaultProject())
	if err := ap.apply(ctx, ArgoCDNamespace, objs...); err != nil {
		return nil, fmt.Errorf("start argocd: %w", err)
	}
	installed := time.Since(began)

	dir, err := os.MkdirTemp("", "agenttest-argocd-")
	if err != nil {
		return nil, fmt.Errorf("start argocd: create work dir: %w", err)
	}
	a := &ArgoCD{stack: stack{dir: dir}}
	defer func() {
		if err != nil {
			_ = a.Stop()
		}
	}()
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("start argocd: %w", err)
	}
	ports, err := proc.FreePorts(4)
	if err != nil {
		return nil, fmt.Errorf("start argocd: %w", err)
	}
	a.redisAddr, a.repoServerAddr = addr(ports[0]), addr(ports[1])
	repoMetricsPort, controllerMetricsPort := ports[2], ports[3]

	redis, err := a.start("redis-server", redisServer, nil,
		"--bind", "127.0.0.1", "--port", strconv.Itoa(ports[0]),
		"--save", "", "--appendonly", "no", "--dir", dir, "--protected-mode", "no")
	if err != nil {
		return nil, fmt.Errorf("start argocd: %w", err)
	}
	if err := waitTCP(ctx, redis, a.redisAddr); err != nil {
		return nil, fmt.Errorf("start argocd: %w", err)
	}

	procEnv := []string{
		"KUBECONFIG=" + env.KubeconfigPath(),
		"ARGOCD_FAKE_IN_CLUSTER=true",
		"ARGOCD_GPG_ENABLED=false",
		"ARGOCD_ASK_PASS_SOCK=" + filepath.Join(dir, "askpass.sock"),
		"TMPDIR=" + tmp,
		// git runs GIT_ASKPASS=argocd for credentials: the multi-call binary.
		"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
	}
	repo, err := a.start("argocd-repo-server", filepath.Join(bin, "argocd-repo-server"), procEnv,
		"--address", "127.0.0.1", "--port", strconv.Itoa(ports[1]),
		"--metrics-address", "127.0.0.1", "--metrics-port", strconv.Itoa(repoMetricsPort),
		"--disable-tls", "--redis", a.redisAddr, "--loglevel", "info")
	if err != nil {
		return nil, fmt.Errorf("start argocd: %w", err)
	}
	ctrl, err := a.start("argocd-application-controller", filepath.Join(bin, "argocd-application-controller"), procEnv,
		"--namespace", ArgoCDNamespace,
		"--repo-server", a.repoServerAddr, "--repo-server-plaintext",
		"--redis", a.redisAddr,
		"--metrics-port", strconv.Itoa(controllerMetricsPort),
		"--persist-resource-health=true",
		"--loglevel", "info")
	if err != nil {
		return nil, fmt.Errorf("start argocd: %w", err)
	}
	if err := proc.WaitHTTP(ctx, repo, "http://"+addr(repoMetricsPort)+"/healthz"); err != nil {
		return nil, fmt.Errorf("start argocd: %w", err)
	}
	if err := proc.WaitHTTP(ctx, ctrl, "http://"+addr(controllerMetricsPort)+"/healthz"); err != nil {
		return nil, fmt.Errorf("start argocd: %w", err)
	}
	fmt.Fprintf(o.log, "agenttest: argocd ready in %s (CRDs and config %s; repo-server %s, redis %s, logs in %s)\n",
		time.Since(began).Round(time.Millisecond), installed.Round(time.Millisecond), a.repoServerAddr, a.redisAddr, dir)
	return a, nil
}

// findRedis is $GITOPS_REDIS_SERVER, else redis-server from PATH.
func findRedis() (string, error) {
	if p := os.Getenv(EnvRedisServer); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("%w: redis-server not in PATH: run 'hack/agents-build.sh argocd' "+
			"(it installs it) or apt-get install redis-server, or set %s", ErrNoBinaries, EnvRedisServer)
	}
	return p, nil
}

// defaultProject is the AppProject default of a stock install: any source
// repository, any destination, every cluster-scoped kind.
func defaultProject() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1",
		"kind":       "AppProject",
		"metadata":   map[string]any{"name": "default", "namespace": ArgoCDNamespace},
		"spec": map[string]any{
			"sourceRepos":              []any{"*"},
			"destinations":             []any{map[string]any{"server": "*", "namespace": "*"}},
			"clusterResourceWhitelist": []any{map[string]any{"group": "*", "kind": "*"}},
		},
	}}
}

// Namespace is where the Applications go: argocd.
func (a *ArgoCD) Namespace() string { return ArgoCDNamespace }

// RepoServerAddr is argocd-repo-server's gRPC address (plaintext), 127.0.0.1:<port>.
func (a *ArgoCD) RepoServerAddr() string { return a.repoServerAddr }

// RedisAddr is the redis Argo CD caches in, 127.0.0.1:<port>.
func (a *ArgoCD) RedisAddr() string { return a.redisAddr }

// Dir holds one <process>.log per process, the askpass socket and the
// repo-server's checkouts. Stop removes it.
func (a *ArgoCD) Dir() string { return a.dir }

// RSS is the resident memory of the processes, in bytes (Linux; 0 elsewhere).
func (a *ArgoCD) RSS() int64 { return a.rss() }

// Stop stops the processes by process group (SIGTERM, then SIGKILL) and
// removes Dir. The CRDs, the namespace and its objects stay.
func (a *ArgoCD) Stop() error {
	if err := a.stop(); err != nil {
		return fmt.Errorf("stop argocd: %w", err)
	}
	return nil
}
