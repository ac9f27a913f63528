package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var fast = Backoff{Attempts: 3, Base: time.Millisecond, Max: time.Millisecond}

func TestDo(t *testing.T) {
	errBusy := errors.New("503 Service Unavailable")
	tests := []struct {
		name     string
		results  []error // what fn returns, call by call
		calls    int
		err      string // "" for success
		retryLog int    // retry notices logged
	}{
		{"success at once", []error{nil}, 1, "", 0},
		{"success after retries", []error{Retryable(errBusy), Retryable(errBusy), nil}, 3, "", 2},
		{"unmarked errors are final", []error{errBusy}, 1, "503 Service Unavailable", 0},
		{"permanent wins over retryable", []error{Permanent(Retryable(errBusy))}, 1, "503 Service Unavailable", 0},
		{"gives up after the attempts", []error{Retryable(errBusy), Retryable(errBusy), Retryable(errBusy)}, 3, "503 Service Unavailable (gave up after 3 attempts)", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log strings.Builder
			calls := 0
			err := fast.Do(context.Background(), &log, "fetch main", func() error {
				calls++
				return tt.results[calls-1]
			})
			require.Equal(t, tt.calls, calls)
			if tt.err == "" {
				require.NoError(t, err)
			} else {
				require.EqualError(t, err, tt.err)
				require.ErrorIs(t, err, errBusy)
				require.False(t, IsRetryable(err), "what Do returns is never retried again")
			}
			require.Equal(t, tt.retryLog, strings.Count(log.String(), "retrying"), log.String())
		})
	}
}

func TestDoLogsEachRetry(t *testing.T) {
	var log strings.Builder
	n := 0
	err := fast.Do(context.Background(), &log, "fetch main from https://git.example/r.git", func() error {
		if n++; n < 2 {
			return Retryable(errors.New("connection refused"))
		}
		return nil
	})
	require.NoError(t, err)
	require.Regexp(t, `^fetch main from https://git.example/r.git failed \(attempt 1 of 3\), retrying in [0-9.]+m?s: connection refused\n$`, log.String())
}

// TestGivingUpIsFinal: an inner retry loop's give-up is not retried again
// by an outer one.
func TestGivingUpIsFinal(t *testing.T) {
	calls := 0
	err := fast.Do(context.Background(), io.Discard, "outer", func() error {
		return fast.Do(context.Background(), io.Discard, "inner", func() error {
			calls++
			return Retryable(errors.New("503"))
		})
	})
	require.ErrorContains(t, err, "gave up after 3 attempts")
	require.Equal(t, 3, calls)
}

func TestDoStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	timedOut := errors.New("the step's timeout ran out")
	cancel(timedOut)
	slow := Backoff{Attempts: 5, Base: time.Hour, Max: time.Hour}
	calls := 0
	start := time.Now()
	err := slow.Do(ctx, io.Discard, "push", func() error {
		calls++
		return Retryable(errors.New("502"))
	})
	require.EqualError(t, err, "502 (stopped retrying: the step's timeout ran out)")
	require.ErrorIs(t, err, timedOut, "callers can tell the step's end from the failure")
	require.Equal(t, 1, calls)
	require.Less(t, time.Since(start), time.Minute)
}

func TestDelayStaysInItsWindow(t *testing.T) {
	b := Backoff{Attempts: 40, Base: 100 * time.Millisecond, Max: 3 * time.Second}
	for n := 1; n < 40; n++ {
		window := min(b.Base<<min(n-1, 16), b.Max)
		for range 50 {
			d := b.delay(n)
			require.GreaterOrEqual(t, d, window/2, fmt.Sprint("attempt ", n))
			require.LessOrEqual(t, d, window, fmt.Sprint("attempt ", n))
		}
	}
}

func TestMarksKeepNil(t *testing.T) {
	require.NoError(t, Retryable(nil))
	require.NoError(t, Permanent(nil))
	require.False(t, IsRetryable(nil))
}
