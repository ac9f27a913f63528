package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
	"github.com/gitops-resource/gitops-resource/pkg/app"
)

func TestMain(m *testing.M) { rt.Main(m) }

// clusterConfigError is what kind cluster says of a source with nothing to
// connect by: only the cluster binary knows it.
const clusterConfigError = "source.kubeconfig (inline YAML) or source.server with source.token is required for kind cluster"

// TestClusterRunsInItsOwnBinary: check, in and out hand a request of kind
// cluster to the cluster binary beside them, with the request, the verb and
// the build dir, and its answer is theirs.
func TestClusterRunsInItsOwnBinary(t *testing.T) {
	t.Parallel()
	req := map[string]any{"source": map[string]any{"kind": "cluster"}}
	for _, verb := range []string{"check", "in", "out"} {
		t.Run(verb, func(t *testing.T) {
			t.Parallel()
			rt.Run(t, verb, t.TempDir(), req, nil).Fails(t, "error: "+clusterConfigError)
		})
	}
	// A request larger than a pipe's buffer reaches it whole: the cluster
	// binary names the key after 1 MiB of padding.
	big := map[string]any{"source": map[string]any{"kind": "cluster", "padding": strings.Repeat("x", 1<<20), "zz_last": 1}}
	rt.Run(t, "check", "", big, nil).Fails(t, `error: source: unknown key "padding"`, `unknown key "zz_last"`)
	// The build dir is the cluster binary's to check.
	res := rt.RunCommand(t.Context(), t, []string{filepath.Join(rt.Binaries(t), "in")}, "", req, nil)
	res.Fails(t, "error: usage: in <build dir>")
	require.NotContains(t, res.Stderr, clusterConfigError)
}

// TestClusterBinaryMissing: check without the cluster binary beside it
// fails naming the file it looked for, never one found in PATH.
func TestClusterBinaryMissing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join(rt.Binaries(t), "check"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "check"), data, 0o755))
	env := map[string]string{"PATH": rt.Binaries(t) + ":" + os.Getenv("PATH")}
	res := rt.RunCommand(t.Context(), t, []string{filepath.Join(dir, "check")}, "", map[string]any{"source": map[string]any{"kind": "cluster"}}, env)
	res.Fails(t, "error: start "+filepath.Join(dir, "cluster")+": no such file: it is built with check, in and out (make build, make image)")
	require.NotContains(t, res.Stderr, clusterConfigError)
}

// TestClusterHandOffIsExec: the cluster binary replaces check in the same
// process (not a child), so Concourse's SIGTERM reaches it and its exit
// code is the step's.
func TestClusterHandOffIsExec(t *testing.T) {
	t.Parallel()
	hit := make(chan struct{}, 1)
	done := make(chan struct{})
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case hit <- struct{}{}:
		default:
		}
		select { // hang until the client goes away
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(api.Close)
	t.Cleanup(func() { close(done) })
	req, err := json.Marshal(map[string]any{"source": map[string]any{
		"kind": "cluster", "server": api.URL, "token": "the-api-token", "insecure_skip_tls_verify": true,
		"resources": []string{"deployment/web"},
	}})
	require.NoError(t, err)

	bin := rt.Binaries(t)
	cmd := exec.CommandContext(t.Context(), filepath.Join(bin, "check"))
	cmd.Stdin = bytes.NewReader(req)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TMPDIR=" + t.TempDir()}
	require.NoError(t, cmd.Start())
	select {
	case <-hit:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the cluster binary never asked the API server:\n%s", stderr.String())
	}
	exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "exe"))
	require.NoError(t, err)
	require.Equal(t, filepath.Join(bin, "cluster"), exe, "the process check started is now the cluster binary")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	err = cmd.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "stderr: %s", stderr.String())
	require.Equal(t, 1, exit.ExitCode(), "the cluster binary caught SIGTERM and failed the step itself: %s", stderr.String())
	require.Empty(t, stdout.String())
	require.Contains(t, stderr.String(), "error: ")
	require.NotContains(t, stderr.String(), "the-api-token")
}

// TestRunRefusesClusterInProcess: Run (in this process, for tests and
// profiles) does not exec: a request of kind cluster fails, saying where it
// runs.
func TestRunRefusesClusterInProcess(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	code := app.Run(context.Background(), app.Check, nil, strings.NewReader(`{"source": {"kind": "cluster"}}`), &stdout, &stderr, func(string) string { return "" })
	require.Equal(t, 1, code)
	require.Empty(t, stdout.String())
	require.Equal(t, "error: source.kind \"cluster\" runs in the cluster binary, not in this process\n", stderr.String())

	stderr.Reset()
	code = app.Run(context.Background(), app.Check, nil, strings.NewReader(`{"source": {"kind": "nope"}}`), &stdout, &stderr, func(string) string { return "" })
	require.Equal(t, 1, code)
	require.Contains(t, stderr.String(), "artifact, cluster, manifest, semver", "the kinds of both binaries are named")
}
