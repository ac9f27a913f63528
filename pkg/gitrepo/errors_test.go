package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// dialTimeout is what net returns for a dial that timed out: a net.Error
// whose Timeout() is true and which also matches context.DeadlineExceeded.
type dialTimeout struct{}

func (dialTimeout) Error() string   { return "i/o timeout" }
func (dialTimeout) Timeout() bool   { return true }
func (dialTimeout) Temporary() bool { return true }
func (dialTimeout) Is(err error) bool {
	return err == context.DeadlineExceeded
}

func TestDescribeKeepsNetworkTimeoutsRetryable(t *testing.T) {
	c, err := New("http://127.0.0.1:1/r.git", Auth{})
	require.NoError(t, err)
	timeout := &net.OpError{Op: "dial", Net: "tcp", Err: dialTimeout{}}
	require.True(t, errors.Is(timeout, context.DeadlineExceeded), "the premise: net timeouts match DeadlineExceeded")

	tests := []struct {
		name      string
		err       error
		permanent bool
	}{
		{"dial timeout", fmt.Errorf("get refs: %w", timeout), false},
		{"step deadline", fmt.Errorf("get refs: %w", context.DeadlineExceeded), true},
		{"canceled", context.Canceled, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.permanent, IsPermanent(c.describe("fetch main from", tt.err)))
		})
	}
}
