package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// permanentError stops retries: the same request would fail the same way.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
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

// Do runs fn until it succeeds, returns a permanent error, the attempts are
// used up, or ctx ends. Each retry is logged with its reason.
func (b Backoff) Do(ctx context.Context, log io.Writer, what string, fn func() error) error {
	attempts := max(b.Attempts, 1)
	var err error
	for n := 1; ; n++ {
		if err = fn(); err == nil || IsPermanent(err) {
			return err
		}
		if n >= attempts {
			return fmt.Errorf("%w (gave up after %d attempts)", err, n)
		}
		wait := b.delay(n)
		fmt.Fprintf(log, "%s failed (attempt %d of %d), retrying in %s: %v\n", what, n, attempts, wait.Round(time.Millisecond), err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (stopped retrying: %v)", err, context.Cause(ctx))
		case <-time.After(wait):
		}
	}
}
