package agenttest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitops-resource/gitops-resource/internal/proc"
	"github.com/gitops-resource/gitops-resource/internal/testenv/kubetest"
)

// FluxNamespace is the namespace the Flux controllers run for (RUNTIME_NAMESPACE).
const FluxNamespace = "flux-system"

// Flux is a running source-controller and kustomize-controller (and
// helm-controller, WithHelmController).
type Flux struct {
	stack
	storageAddr string
}

// StartFlux installs the Flux CRDs into env, creates the flux-system namespace,
// starts source-controller and kustomize-controller watching all namespaces,
// waits until both report ready, and stops them when t ends. Missing binaries
// skip t, or fail it in CI.
func StartFlux(t testing.TB, env *kubetest.Env, opts ...Option) *Flux {
	t.Helper()
	return start(t, func(ctx context.Context) (*Flux, error) { return LaunchFlux(ctx, env, opts...) })
}

// LaunchFlux is StartFlux for callers without a testing.TB (TestMain, hack
// tools): ctx bounds the start only, and the caller calls Stop.
func LaunchFlux(ctx context.Context, env *kubetest.Env, opts ...Option) (_ *Flux, err error) {
	o := defaults()
	for _, opt := range opts {
		opt(&o)
	}
	ctx, cancel := context.WithTimeout(ctx, o.startTimeout)
	defer cancel()
	bin, err := fluxAgent.find(ctx, o.binDir)
	if err != nil {
		return nil, fmt.Errorf("start flux: %w", err)
	}
	var helmBin string
	if o.helm {
		if helmBin, err = helmAgent.find(ctx, o.helmBinDir); err != nil {
			return nil, fmt.Errorf("start flux: helm-controller: %w", err)
		}
	}
	began := time.Now()
	a, err := newApplier(env.Config())
	if err != nil {
		return nil, fmt.Errorf("start flux: %w", err)
	}
	if err := a.installCRDs(ctx, filepath.Join(bin, "..", "manifests", "crds")); err != nil {
		return nil, fmt.Errorf("start flux: install CRDs: %w", err)
	}
	if o.helm {
		if err := a.installCRDs(ctx, filepath.Join(helmBin, "..", "manifests", "crds")); err != nil {
			return nil, fmt.Errorf("start flux: install helm-controller's CRDs: %w", err)
		}
	}
	if err := a.apply(ctx, "", namespaceObject(FluxNamespace)); err != nil {
		return nil, fmt.Errorf("start flux: %w", err)
	}
	installed := time.Since(began)

	dir, err := os.MkdirTemp("", "agenttest-flux-")
	if err != nil {
		return nil, fmt.Errorf("start flux: create work dir: %w", err)
	}
	f := &Flux{stack: stack{dir: dir}}
	defer func() {
		if err != nil {
			_ = f.Stop()
		}
	}()
	ports, err := proc.FreePorts(7)
	if err != nil {
		return nil, fmt.Errorf("start flux: %w", err)
	}
	f.storageAddr = addr(ports[0])
	storage, tmp := filepath.Join(dir, "storage"), filepath.Join(dir, "tmp")
	for _, d := range []string{storage, tmp} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, fmt.Errorf("start flux: %w", err)
		}
	}
	// A temp dir of their own: the controllers build each artifact in
	// one, and what they leave goes with Dir.
	procEnv := []string{"KUBECONFIG=" + env.KubeconfigPath(), "RUNTIME_NAMESPACE=" + FluxNamespace, "TMPDIR=" + tmp}
	common := []string{"--events-addr=", "--enable-leader-election=false", "--watch-all-namespaces=true", "--log-encoding=console"}

	src, err := f.start("source-controller", filepath.Join(bin, "source-controller"), procEnv, append([]string{
		"--storage-path=" + storage,
		"--storage-addr=" + f.storageAddr,
		"--storage-adv-addr=" + f.storageAddr,
		"--metrics-addr=" + addr(ports[1]),
		"--health-addr=" + addr(ports[2]),
	}, common...)...)
	if err != nil {
		return nil, fmt.Errorf("start flux: %w", err)
	}
	kus, err := f.start("kustomize-controller", filepath.Join(bin, "kustomize-controller"), procEnv, append([]string{
		"--metrics-addr=" + addr(ports[3]),
		"--health-addr=" + addr(ports[4]),
	}, common...)...)
	if err != nil {
		return nil, fmt.Errorf("start flux: %w", err)
	}
	if err := proc.WaitHTTP(ctx, src, "http://"+addr(ports[2])+"/readyz"); err != nil {
		return nil, fmt.Errorf("start flux: %w", err)
	}
	if err := proc.WaitHTTP(ctx, kus, "http://"+addr(ports[4])+"/readyz"); err != nil {
		return nil, fmt.Errorf("start flux: %w", err)
	}
	if o.helm {
		helm, err := f.start("helm-controller", filepath.Join(helmBin, "helm-controller"), procEnv, append([]string{
			"--metrics-addr=" + addr(ports[5]),
			"--health-addr=" + addr(ports[6]),
		}, common...)...)
		if err != nil {
			return nil, fmt.Errorf("start flux: %w", err)
		}
		if err := proc.WaitHTTP(ctx, helm, "http://"+addr(ports[6])+"/readyz"); err != nil {
			return nil, fmt.Errorf("start flux: %w", err)
		}
	}
	fmt.Fprintf(o.log, "agenttest: flux ready in %s (CRDs %s; artifacts at http://%s, logs in %s)\n",
		time.Since(began).Round(time.Millisecond), installed.Round(time.Millisecond), f.storageAddr, dir)
	return f, nil
}

// Namespace is where the controllers run: flux-system.
func (f *Flux) Namespace() string { return FluxNamespace }

// StorageAddr is source-controller's artifact server, 127.0.0.1:<port>.
func (f *Flux) StorageAddr() string { return f.storageAddr }

// Dir holds the artifact storage and one <controller>.log per process.
// Stop removes it.
func (f *Flux) Dir() string { return f.dir }

// RSS is the resident memory of the controllers, in bytes (Linux; 0 elsewhere).
func (f *Flux) RSS() int64 { return f.rss() }

// Stop stops the controllers by process group (SIGTERM, then SIGKILL) and
// removes Dir. The CRDs and the namespace stay.
func (f *Flux) Stop() error {
	if err := f.stop(); err != nil {
		return fmt.Errorf("stop flux: %w", err)
	}
	return nil
}
