package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// Backoff is a bounded retry policy with jittered exponential delays: the
// wait after attempt n is drawn from [w/2, w], where the window w is
// Base·2^(n-1), at most Max.
type Backoff struct {
	Attempts int
	Base     time.Duration
	Max      time.Duration
}

type retryableError struct{ err error }

func (r retryableError) Error() string { return r.err.Error() }
func (r retryableError) Unwrap() error { return r.err }

// Retryable marks err as worth another try (nil stays nil).
func Retryable(err error) error {
	if err == nil {
		return nil
	}
	return retryableError{err}
}

type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent marks err as final even when it wraps a Retryable one (nil
// stays nil): a retry loop gave up on it, or retrying at this level would
// repeat what already happened (a push that landed, then failed to verify).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsRetryable reports whether err is marked Retryable and not Permanent.
func IsRetryable(err error) bool {
	var r retryableError
	return errors.As(err, &r) && !IsPermanent(err)
}

// IsPermanent reports whether err is marked Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// delay is the jittered wait after attempt n (n >= 1): full jitter over an
// exponentially growing window, so concurrent writers spread out.
func (b Backoff) delay(n int) time.Duration {
	window := b.Base << min(n-1, 16)
	if window <= 0 || window > b.Max {
		window = b.Max
	}
	return window/2 + rand.N(window/2+1)
}

// Do runs fn until it succeeds, returns an error that is not Retryable, the
// attempts are used up, or ctx ends. Each retry is logged to log with what
// failed and why. What it gives up on is Permanent, so an outer Do does not
// retry it again.
func (b Backoff) Do(ctx context.Context, log io.Writer, what string, fn func() error) error {
	attempts := max(b.Attempts, 1)
	for n := 1; ; n++ {
		err := fn()
		if err == nil || !IsRetryable(err) {
			return err
		}
		if n >= attempts {
			return Permanent(fmt.Errorf("%w (gave up after %d attempts)", err, n))
		}
		wait := b.delay(n)
		fmt.Fprintf(log, "%s failed (attempt %d of %d), retrying in %s: %v\n", what, n, attempts, wait.Round(time.Millisecond), err)
		select {
		case <-ctx.Done():
			return Permanent(fmt.Errorf("%w (stopped retrying: %w)", err, context.Cause(ctx)))
		case <-time.After(wait):
		}
	}
}
