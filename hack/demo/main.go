package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	"github.com/gitops-resource/gitops-resource/internal/testenv/concourse"
	"github.com/gitops-resource/gitops-resource/internal/testenv/kubetest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log io.Writer) (err error) {
	if err := concourse.CheckRuntime(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "gitops-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	git, err := gittest.Start(dir)
	if err != nil {
		return fmt.Errorf("start the git server: %w", err)
	}
	defer git.Close()
	kube, err := kubetest.Start(ctx, kubetest.Full, kubetest.NoReuse(), kubetest.WithLog(log))
	switch {
	case errors.Is(err, kubetest.ErrNoBinaries):
		fmt.Fprintf(log, "no control plane (%v): running without the cluster put; `make tools-k8s` builds it\n", err)
		kube = nil
	case err != nil:
		return fmt.Errorf("start the control plane: %w", err)
	default:
		defer func() { err = errors.Join(err, kube.Stop()) }()
	}
	env, err := concourse.Up(ctx, log, git, kube)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(log, "── stopping the stack")
		err = errors.Join(err, env.Close())
	}()

	ns, kubeconfig := "", "(no control plane built: make tools-k8s)"
	if kube != nil {
		if ns, err = kube.CreateNamespace(ctx, "demo-"); err != nil {
			return err
		}
		kubeconfig = kube.KubeconfigPath()
	}
	cfg, _, err := env.PushDirect(ctx, dir, ns)
	if err != nil {
		return err
	}
	url, err := env.Stack.ExposeWeb()
	if err != nil {
		return err
	}
	fly := env.Stack.Fly()
	fmt.Fprintf(log, `
── The pipeline "direct" delivered web 0.1.1: Concourse, git and the control plane stay up.
   Concourse  %s  (user test, password test; pipeline "direct")
   fly        %s -t demo login -c %s -u test -p test
              %s -t demo trigger-job -j direct/build-and-deploy -w
   git        git clone %s   (the config repo; direct-app holds the version)
   cluster    export KUBECONFIG=%s   (namespace %s)
   Ctrl-C stops and removes everything.
`, url, fly, url, fly, git.HTTPURL(cfg), kubeconfig, ns)
	<-ctx.Done()
	return nil
}
