package proc

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestStopKillsTheWholeGroup(t *testing.T) {
	dir := t.TempDir()
	// The shell starts a child that ignores SIGTERM, then waits.
	p, err := Start("sh", "/bin/sh", dir, nil, "-c", `trap "" TERM; sleep 300 & echo $! > child.pid; echo started; wait`)
	require.NoError(t, err)
	var child int
	require.NoError(t, Poll(context.Background(), "the child's pid", p, func(context.Context) error {
		data, err := os.ReadFile(dir + "/child.pid")
		if err != nil {
			return err
		}
		child, err = strconv.Atoi(strings.TrimSpace(string(data)))
		return err
	}))
	require.NoError(t, p.Stop(200*time.Millisecond))
	require.Error(t, p.Exited(), "stopped")
	require.Eventually(t, func() bool { return errors.Is(syscall.Kill(child, 0), syscall.ESRCH) }, 5*time.Second, 10*time.Millisecond, "the child is gone too")
}

func TestExitedNamesTheLogTail(t *testing.T) {
	p, err := Start("fails", "/bin/sh", t.TempDir(), []string{"WHAT=boom"}, "-c", `echo "address already in use: $WHAT" >&2; exit 3`)
	require.NoError(t, err)
	err = Poll(context.Background(), "fails", p, func(context.Context) error { return errors.New("not ready") })
	require.ErrorContains(t, err, "fails exited (exit status 3)")
	require.ErrorContains(t, err, "address already in use: boom")
}

func TestPoll(t *testing.T) {
	calls := 0
	err := Poll(context.Background(), "x", nil, func(context.Context) error {
		calls++
		return Permanent(errors.New("never"))
	})
	require.EqualError(t, err, "never")
	require.Equal(t, 1, calls, "a permanent error ends the poll at once")

	ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
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
