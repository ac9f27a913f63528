package agenttest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitops-resource/gitops-resource/internal/proc"
)

// Environment variables read by this package.
const (
	// EnvFluxBin names the dir holding the Flux controllers.
	EnvFluxBin = "GITOPS_FLUX_BIN"
	// EnvHelmBin names the dir holding Flux's helm-controller.
	EnvHelmBin = "GITOPS_HELM_BIN"
	// EnvArgoCDBin names the dir holding the Argo CD binaries.
	EnvArgoCDBin = "GITOPS_ARGOCD_BIN"
	// EnvRedisServer names the redis-server executable Argo CD uses.
	EnvRedisServer = "GITOPS_REDIS_SERVER"
)

// ErrNoBinaries is wrapped by the errors of LaunchFlux and LaunchArgoCD when
// an agent is not built. StartFlux and StartArgoCD skip the test outside CI and
// fail it in CI.
var ErrNoBinaries = errors.New("agent binaries are missing")

// Option configures StartFlux, LaunchFlux, StartArgoCD and LaunchArgoCD.
type Option func(*options)

type options struct {
	binDir       string
	helm         bool
	helmBinDir   string
	log          io.Writer
	startTimeout time.Duration
}

// defaults: binaries from the agent's env var or the build cache, no progress
// output, one minute to become ready.
func defaults() options {
	return options{log: io.Discard, startTimeout: time.Minute}
}

// WithBinDir takes the agent's binaries from dir (and its manifests from
// dir/../manifests), overriding the agent's env var.
func WithBinDir(dir string) Option { return func(o *options) { o.binDir = dir } }

// WithHelmController also starts Flux's helm-controller (StartFlux and
// LaunchFlux), from dir, else $GITOPS_HELM_BIN, else the build cache
// (hack/agents-build.sh helm), and installs its CRDs.
func WithHelmController(dir string) Option {
	return func(o *options) { o.helm, o.helmBinDir = true, dir }
}

// WithLog writes one line per started process (address, time to ready) to w.
// Process output itself goes to log files in the agent's Dir.
func WithLog(w io.Writer) Option { return func(o *options) { o.log = w } }

// WithStartTimeout bounds the bring-up (default 1m).
func WithStartTimeout(d time.Duration) Option { return func(o *options) { o.startTimeout = d } }

// agent describes what one agent needs from a build.
type agent struct {
	name     string   // as hack/agents-build.sh calls it: flux, helm, argocd
	envVar   string   // overrides the build cache
	binaries []string // executables the bin dir must hold
}

var (
	fluxAgent   = agent{"flux", EnvFluxBin, []string{"source-controller", "kustomize-controller"}}
	helmAgent   = agent{"helm", EnvHelmBin, []string{"helm-controller"}}
	argoCDAgent = agent{"argocd", EnvArgoCDBin, []string{"argocd-application-controller", "argocd-repo-server"}}
)

func (a agent) hint() string {
	return "run 'hack/agents-build.sh " + a.name + "' (a cold build takes about 7 minutes per agent on 2 cores), " +
		"or set " + a.envVar + " to a dir holding " + strings.Join(a.binaries, " and ") + " with ../manifests next to it"
}

// find returns dir, else $envVar, else the dir hack/agents-build.sh --check
// reports, after checking every executable and the manifests are there. It
// never builds: a missing build is an ErrNoBinaries error.
func (a agent) find(ctx context.Context, dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv(a.envVar)
	}
	if dir == "" {
		var err error
		if dir, err = a.buildCacheDir(ctx); err != nil {
			return "", err
		}
	}
	var missing []string
	for _, name := range a.binaries {
		if info, err := os.Stat(filepath.Join(dir, name)); err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
			missing = append(missing, name)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "..", "manifests", "crds")); err != nil {
		missing = append(missing, "../manifests/crds")
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("%w: %s not in %s: %s", ErrNoBinaries, strings.Join(missing, ", "), dir, a.hint())
	}
	return dir, nil
}

// buildCacheDir asks hack/agents-build.sh, found in a parent of the working
// dir, where its cache puts the agent's binaries.
func (a agent) buildCacheDir(ctx context.Context) (string, error) {
	dir, err := proc.CachedBinDir(ctx, "agents-build.sh", a.name)
	if err != nil {
		return "", fmt.Errorf("%w: %s is not set and %w: %s", ErrNoBinaries, a.envVar, err, a.hint())
	}
	return dir, nil
}

func inCI() bool { return proc.InCI() }

// start launches an agent for t: missing binaries skip t (or fail it in CI),
// and the agent is stopped when t ends.
func start[A interface{ Stop() error }](t testing.TB, launch func(context.Context) (A, error)) A {
	t.Helper()
	a, err := launch(t.Context())
	switch {
	case errors.Is(err, ErrNoBinaries) && !inCI():
		t.Skipf("agenttest: %v", err)
	case err != nil:
		t.Fatalf("agenttest: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Stop(); err != nil {
			t.Errorf("agenttest: %v", err)
		}
	})
	return a
}
