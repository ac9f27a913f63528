package concourse

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// hold keeps the stack up after the demo's green build so a person can look
// at it: Concourse's web is exposed on this machine's 127.0.0.1 (port 8080
// when free), and the lines printed say how to log in with fly, where the
// kubeconfig and the git repos are. It returns on Ctrl-C (SIGINT), SIGTERM
// or a minute before the test's deadline; the cleanups then stop everything.
func (e *e2e) hold(t *testing.T, namespace string) {
	s := e.stack
	ln, err := net.Listen("tcp", "127.0.0.1:8080")
	if err != nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	require.NoError(t, err)
	web := "127.0.0.1:8080" // where web listens inside the namespace
	t.Cleanup(forward(ln, func() (net.Conn, error) { return dialIn(s.env["NETNS"], web) }))
	url := "http://" + ln.Addr().String()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if deadline, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-time.Minute))
		defer cancel()
	}
	fmt.Fprintf(os.Stderr, `
── The pipeline "direct" delivered web 0.1.1: Concourse, git and the control plane stay up.
   Concourse  %s  (user test, password test; pipeline "direct")
   fly        %s -t demo login -c %s -u test -p test
              %s -t demo trigger-job -j direct/build-and-deploy -w
   git        git clone %s   (the config repo; direct-app holds the version)
   cluster    export KUBECONFIG=%s   (namespace %s)
   Ctrl-C stops and removes everything.
`, url, s.env["FLY"], url, s.env["FLY"], e.git.HTTPURL("direct-config"), e.kubeconfigPath(), namespace)
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "── stopping the stack")
}

// kubeconfigPath is the control plane's admin kubeconfig, or a note that
// there is none.
func (e *e2e) kubeconfigPath() string {
	if e.kube == nil {
		return "(no control plane built: make tools-k8s)"
	}
	return e.kube.KubeconfigPath()
}
