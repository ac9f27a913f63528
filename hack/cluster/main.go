package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/gitops-resource/gitops-resource/internal/testenv/kubetest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	flags := flag.NewFlagSet("cluster", flag.ContinueOnError)
	flags.SetOutput(stderr)
	apiOnly := flags.Bool("api-only", false, "run only etcd and kube-apiserver")
	if err := flags.Parse(args); err != nil {
		return err
	}
	mode := kubetest.Full
	if *apiOnly {
		mode = kubetest.APIOnly
	}
	env, err := kubetest.Start(ctx, mode, kubetest.NoReuse(), kubetest.WithLog(stderr))
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(stderr, "cluster: stopping")
		if stopErr := env.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()
	fmt.Fprintf(stderr, "cluster: component logs in %s; Ctrl-C stops everything\n", env.Dir())
	fmt.Fprintf(stdout, "export KUBECONFIG=%s %s=%s\n", env.KubeconfigPath(), kubetest.EnvKubeconfig, env.KubeconfigPath())
	<-ctx.Done()
	return nil
}
