package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/pkg/retry"
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
		retryable bool
	}{
		{"dial timeout", fmt.Errorf("get refs: %w", timeout), true},
		{"step deadline", fmt.Errorf("get refs: %w", context.DeadlineExceeded), false},
		{"canceled", context.Canceled, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.retryable, retry.IsRetryable(c.describe("fetch main from", tt.err)))
		})
	}
}

func TestDescribeRetriesOnlyWhatMayGoDifferently(t *testing.T) {
	c, err := New("http://127.0.0.1:1/r.git", Auth{})
	require.NoError(t, err)
	status := func(code int, reason string) error {
		u, _ := url.Parse("http://127.0.0.1:1/r.git/info/refs")
		return plumbing.NewUnexpectedError(&githttp.Err{Response: &http.Response{StatusCode: code, Request: &http.Request{URL: u}}, Reason: reason})
	}
	tests := []struct {
		name      string
		err       error
		retryable bool
		want      string
	}{
		{"500", status(500, "oops"), true, "the server answered 500 Internal Server Error: oops"},
		{"503", status(503, ""), true, "the server answered 503 Service Unavailable"},
		{"429", status(429, "slow down"), true, "429 Too Many Requests: slow down"},
		{"408", status(408, ""), true, "408 Request Timeout"},
		{"431", status(431, "headers\ntoo\x1b[31m large"), false, "431 Request Header Fields Too Large: headers too[31m large"},
		{"400", status(400, ""), false, "400 Bad Request"},
		{"hang-up", plumbing.NewUnexpectedError(&url.Error{Op: "Post", URL: "http://x", Err: io.EOF}), true, "the connection to 127.0.0.1:1 failed"},
		{"reset", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, true, "connection reset"},
		{"cut short, flattened", errors.New("error decoding upload-pack response: unexpected EOF"), true, "unexpected EOF"},
		{"pack cut short", fmt.Errorf("the pack ended in object 3 of 9: %w", io.ErrUnexpectedEOF), true, "object 3 of 9"},
		{"bad pack", badPack("it claims 4294967295 objects"), false, "the server sent a bad pack: it claims 4294967295 objects"},
		{"pack refused", errors.New("unpack error: index-pack abnormal exit"), false, "the server refused the pack: unpack error"},
		{"server error line", errors.New("remote error: upload-pack: not our ref"), false, "not our ref"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.describe("fetch main from", tt.err)
			require.Equal(t, tt.retryable, retry.IsRetryable(err), err.Error())
			require.ErrorContains(t, err, "fetch main from http://127.0.0.1:1/r.git: ")
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestServerWordsDropProgressAndEscapes(t *testing.T) {
	var w serverWords
	fmt.Fprint(&w, "Resolving deltas:  50% (1/2)\rResolving deltas: 100% (2/2), done.\n")
	fmt.Fprint(&w, "error: object 1234: gitmodulesUrl: disallowed submodule url\x1b]0;pwned\x07\n")
	fmt.Fprint(&w, "fatal: fsck error in pack objects\n")
	err := w.explain(errors.New("unpack error: index-pack abnormal exit"))
	require.EqualError(t, err, "unpack error: index-pack abnormal exit (the server said: error: object 1234: gitmodulesUrl: disallowed submodule url]0;pwned; fatal: fsck error in pack objects)")

	var long serverWords
	for range 10000 {
		fmt.Fprint(&long, "remote: a hook that will not stop talking\n")
	}
	require.LessOrEqual(t, len(long.buf), 4*maxServerWords)
	require.Less(t, len(long.explain(errors.New("x")).Error()), 2*maxServerWords)
}
