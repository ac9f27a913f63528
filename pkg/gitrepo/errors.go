package gitrepo

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"unicode"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/gitops-resource/gitops-resource/pkg/retry"
)

// describe wraps a transport error with what was tried, against which
// remote, what the server said and what to check. Only what may go
// differently next time is retryable: the network failing, an HTTP 5xx, 429
// (too many requests) or 408 (request timeout). Everything else — a 4xx, a
// refused pack, a bad pack, a refused ref — fails at once.
func (c *Client) describe(op string, err error) error {
	if err == nil {
		return nil
	}
	where := op + " " + c.URL()
	var unknownAuthority x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var status *githttp.Err
	var opErr *net.OpError
	msg := err.Error()
	cause := goGitCause(err)
	switch {
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: %w", where, err)
	// A dial or read timeout (a *net.OpError) also matches
	// DeadlineExceeded; it is worth retrying. The step's own deadline is
	// final (and retry.Backoff.Do stops once the step's context is done).
	case errors.Is(err, context.DeadlineExceeded) && !errors.As(err, &opErr):
		return fmt.Errorf("%s: timed out (source.timeout): %w", where, err)
	case errors.Is(err, transport.ErrAuthenticationRequired):
		return fmt.Errorf("%s: authentication required or refused: check source.username and source.password", where)
	case errors.Is(err, transport.ErrAuthorizationFailed):
		return fmt.Errorf("%s: not authorized: check that the credentials may access this repository", where)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return fmt.Errorf("%s: repository not found: check source.uri (some servers also answer this to missing credentials)", where)
	case errors.Is(err, ErrHostKeyMismatch):
		return fmt.Errorf("%s: %w: check source.known_hosts", where, err)
	case strings.Contains(msg, "declined"), strings.Contains(msg, "protected branch"):
		return fmt.Errorf("%s: the server refused the push: %w: check branch protection and hooks on %s", where, err, c.ep.host())
	case strings.HasPrefix(msg, "unpack error"):
		return fmt.Errorf("%s: the server refused the pack: %w", where, err)
	case strings.Contains(msg, "unable to authenticate"):
		return fmt.Errorf("%s: ssh authentication failed as %q: check that source.private_key is authorized on %s", where, c.sshUser(), c.ep.host())
	case errors.As(err, &unknownAuthority), errors.As(err, &hostErr), strings.Contains(msg, "x509:"):
		return fmt.Errorf("%s: the TLS certificate of %s is not trusted: %v (source.skip_ssl_verification: true skips the check)", where, c.ep.host(), err)
	case errors.As(cause, &status):
		return c.describeStatus(where, status)
	case isNetworkFailure(cause):
		return retry.Retryable(fmt.Errorf("%s: the connection to %s failed: %w: check the URL and that the server is up", where, c.ep.host(), err))
	}
	return fmt.Errorf("%s: %w", where, err)
}

// describeStatus describes an HTTP answer that is not a success, with the
// server's words. 5xx, 429 and 408 may go differently next time.
func (c *Client) describeStatus(where string, e *githttp.Err) error {
	code := e.StatusCode()
	err := fmt.Errorf("%s: the server answered %d %s", where, code, http.StatusText(code))
	if words := quoteServer(e.Reason); words != "" {
		err = fmt.Errorf("%w: %s", err, words)
	}
	if code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout {
		return retry.Retryable(err)
	}
	return err
}

// goGitCause is what go-git's UnexpectedError and PermanentError wrap:
// they have no Unwrap.
func goGitCause(err error) error {
	for {
		var unexpected *plumbing.UnexpectedError
		var permanent *plumbing.PermanentError
		switch {
		case errors.As(err, &unexpected):
			err = unexpected.Err
		case errors.As(err, &permanent):
			err = permanent.Err
		default:
			return err
		}
	}
}

// isNetworkFailure tells a connection that failed (refused, reset, timed
// out, cut short, a name that did not resolve) from an answer.
func isNetworkFailure(err error) bool {
	var opErr *net.OpError
	var dnsErr *net.DNSError
	var netErr net.Error
	return errors.As(err, &opErr) || errors.As(err, &dnsErr) ||
		errors.As(err, &netErr) && netErr.Timeout() ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		// go-git flattens some with %s.
		strings.Contains(err.Error(), "unexpected EOF") ||
		strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "connection reset")
}

// maxServerWords bounds what an error quotes of a server.
const maxServerWords = 512

// quoteServer makes what a server said safe to print on one line: control
// characters (terminal escapes) dropped, whitespace collapsed, at most
// maxServerWords bytes.
func quoteServer(s string) string {
	s = strings.Join(strings.Fields(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && !unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)), " ")
	if len(s) > maxServerWords {
		s = strings.ToValidUTF8(s[:maxServerWords], "") + "…"
	}
	return s
}

// serverWords keeps the last lines a server printed on git's progress
// channel (the "remote:" lines: hook output, fsck errors) to quote in an
// error, without its progress meters. The push writing to it may outlive
// the step's deadline, hence the lock.
type serverWords struct {
	mu  sync.Mutex
	buf []byte
}

func (w *serverWords) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if len(w.buf) > 4*maxServerWords {
		w.buf = append(w.buf[:0], w.buf[len(w.buf)-maxServerWords:]...)
	}
	return len(p), nil
}

// explain adds what the server said to err.
func (w *serverWords) explain(err error) error {
	w.mu.Lock()
	text := string(w.buf)
	w.mu.Unlock()
	var lines []string
	for _, line := range strings.FieldsFunc(text, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if line = strings.TrimSpace(line); line != "" && !strings.Contains(line, "% (") {
			lines = append(lines, line)
		}
	}
	said := quoteServer(strings.Join(lines, "; "))
	if err == nil || said == "" {
		return err
	}
	return fmt.Errorf("%w (the server said: %s)", err, said)
}

func (c *Client) sshUser() string {
	if c.ep.ep.User != "" {
		return c.ep.ep.User
	}
	return "git"
}
