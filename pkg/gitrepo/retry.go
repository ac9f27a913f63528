package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// retryableError marks a failure that the same request may not meet again:
// the network failed, the server answered 5xx, 429 or 408, or another writer
// pushed first. Backoff.Do retries these and nothing else.
type retryableError struct{ err error }

func (r retryableError) Error() string { return r.err.Error() }
func (r retryableError) Unwrap() error { return r.err }

// retryable marks err as worth another try.
func retryable(err error) error {
	if err == nil {
		return nil
	}
	return retryableError{err}
}

// permanentError marks a failure as final even when it wraps a retryable
// one: a retry loop gave up on it, or retrying at this level would repeat
// what already happened (a push that landed, then failed to verify).
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying, whatever it wraps.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// isRetryable reports whether err is worth another try: marked retryable
// and not Permanent.
func isRetryable(err error) bool {
	var p permanentError
	var r retryableError
	return errors.As(err, &r) && !errors.As(err, &p)
}

// delay is the jittered wait before attempt n (n >= 1): full jitter over an
// exponentially growing window, so concurrent writers spread out.
func (b Backoff) delay(n int) time.Duration {
	window := b.Base << min(n-1, 16)
	if window <= 0 || window > b.Max {
		window = b.Max
	}
	return window/2 + rand.N(window/2+1)
}

// Do runs fn until it succeeds, returns an error that is not retryable, the
// attempts are used up, or ctx ends. Each retry is logged with its reason.
// What it gives up on is Permanent, so an outer Do does not retry it again.
func (b Backoff) Do(ctx context.Context, log io.Writer, what string, fn func() error) error {
	attempts := max(b.Attempts, 1)
	var err error
	for n := 1; ; n++ {
		if err = fn(); err == nil || !isRetryable(err) {
			return err
		}
		if n >= attempts {
			return Permanent(fmt.Errorf("%w (gave up after %d attempts)", err, n))
		}
		wait := b.delay(n)
		fmt.Fprintf(log, "%s failed (attempt %d of %d), retrying in %s: %v\n", what, n, attempts, wait.Round(time.Millisecond), err)
		select {
		case <-ctx.Done():
			return Permanent(fmt.Errorf("%w (stopped retrying: %v)", err, context.Cause(ctx)))
		case <-time.After(wait):
		}
	}
}
