package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/pkg/retry"
)

func TestStopKillsTheWholeGroup(t *testing.T) {
	dir := t.TempDir()
	// The shell starts a child that ignores SIGTERM, then waits.
	p, err := Start("sh", "/bin/sh", dir, nil, "-c", `trap "" TERM; sleep 300 & echo $! > child.pid; echo started; wait`)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var child int
	require.NoError(t, Poll(ctx, "the child's pid", p, func(context.Context) error {
		data, err := os.ReadFile(dir + "/child.pid")
		if err != nil {
			return err
		}
		child, err = strconv.Atoi(strings.TrimSpace(string(data)))
		return err
	}))
	require.NoError(t, p.Stop(200*time.Millisecond))
	require.Error(t, p.Exited(), "stopped")
	require.Eventually(t, func() bool { return gone(child) }, 5*time.Second, 10*time.Millisecond, "the child is gone too")
}

// gone reports whether pid has ended. An orphan killed with its group is
// reparented to PID 1, which in a container may never reap it: a zombie counts
// as gone.
func gone(pid int) bool {
	if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	// pid (comm) state ...: comm may hold spaces, so read after the last ')'.
	_, rest, _ := strings.Cut(string(stat[strings.LastIndexByte(string(stat), ')')+1:]), " ")
	return strings.HasPrefix(rest, "Z")
}

func TestRelaunchRunsTheSameCommandAndKeepsTheLog(t *testing.T) {
	dir := t.TempDir()
	p, err := Start("echo", "/bin/sh", dir, []string{"WHAT=again"}, "-c", `echo "run $WHAT"; exec sleep 300`)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Stop(time.Second) })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	runs := func(p *Process, n int) func(context.Context) error {
		return func(context.Context) error {
			if strings.Count(p.Tail(10), "run again") != n {
				return errors.New("log: " + p.Tail(10))
			}
			return nil
		}
	}
	require.NoError(t, Poll(ctx, "the first run in the log", p, runs(p, 1)))
	require.NoError(t, p.Stop(time.Second))
	t.Setenv("UNRELATED", "x") // the environment may change in between
	np, err := p.Relaunch()
	require.NoError(t, err)
	t.Cleanup(func() { _ = np.Stop(time.Second) })
	require.NoError(t, Poll(ctx, "the second run in the log", np, runs(np, 2)))
	require.NotEqual(t, p.PID(), np.PID())
}

func TestExitedNamesTheLogTail(t *testing.T) {
	p, err := Start("fails", "/bin/sh", t.TempDir(), []string{"WHAT=boom"}, "-c", `echo "address already in use: $WHAT" >&2; exit 3`)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err = Poll(ctx, "fails", p, func(context.Context) error { return errors.New("not ready") })
	require.ErrorContains(t, err, "fails exited (exit status 3)")
	require.ErrorContains(t, err, "address already in use: boom")
}

func TestPoll(t *testing.T) {
	calls := 0
	err := Poll(t.Context(), "x", nil, func(context.Context) error {
		calls++
		return retry.Permanent(errors.New("never"))
	})
	require.EqualError(t, err, "never")
	require.Equal(t, 1, calls, "a permanent error ends the poll at once")

	ctx, cancel := context.WithTimeout(t.Context(), 250*time.Millisecond)
	defer cancel()
	err = Poll(ctx, "the thing", nil, func(context.Context) error { return errors.New("still not") })
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "wait for the thing")
	require.ErrorContains(t, err, "still not")
}

func TestFreePortsAreDistinct(t *testing.T) {
	ports, err := FreePorts(20)
	require.NoError(t, err)
	seen := map[int]bool{}
	for _, p := range ports {
		require.False(t, seen[p])
		seen[p] = true
	}
}

func TestCachedBinDirAsksTheScript(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "hack"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "pkg", "x"), 0o755))
	script := `echo "building nothing" >&2
if [ "$1" != --check ]; then echo "no --check" >&2; exit 2; fi
echo progress
echo /cache/$2/bin
[ "$2" = built ] || { echo "$2 is not built; run build.sh $2" >&2; exit 1; }
`
	require.NoError(t, os.WriteFile(filepath.Join(root, "hack", "build.sh"), []byte(script), 0o644))
	t.Chdir(filepath.Join(root, "pkg", "x"))

	dir, err := CachedBinDir(t.Context(), "build.sh", "built")
	require.NoError(t, err)
	require.Equal(t, "/cache/built/bin", dir, "the last line of stdout")

	_, err = CachedBinDir(t.Context(), "build.sh", "other")
	require.ErrorContains(t, err, "build.sh --check other: exit status 1: building nothing")

	_, err = CachedBinDir(t.Context(), "missing.sh")
	require.ErrorContains(t, err, "no "+filepath.Join("hack", "missing.sh")+" in ")
}

func TestProcNetAddr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"0100007F:1F90", "127.0.0.1:8080"},
		{"00000000:0050", "0.0.0.0:80"},
		{"00000000000000000000000000000000:2382", "[::]:9090"},
		{"0000000000000000FFFF00000100007F:0050", "127.0.0.1:80"},
		{"00000000000000000000000001000000:0016", "[::1]:22"},
	}
	for _, tt := range tests {
		got, err := procNetAddr(tt.in)
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.want, got, tt.in)
	}
	_, err := procNetAddr("zz:1")
	require.Error(t, err)
}

func TestListeners(t *testing.T) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox (busybox-static, installed by hack/deps.sh)")
	}
	ports, err := FreePorts(1)
	require.NoError(t, err)
	want := "127.0.0.1:" + strconv.Itoa(ports[0])
	p, err := Start("httpd", "/bin/busybox", t.TempDir(), nil, "httpd", "-f", "-p", want)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Stop(time.Second) })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, Poll(ctx, "httpd to listen", p, func(context.Context) error {
		got, err := p.Listeners()
		if err != nil {
			return err
		}
		if !slices.Equal(got, []string{want}) {
			return fmt.Errorf("listeners %v, want [%s]", got, want)
		}
		return nil
	}))
}
