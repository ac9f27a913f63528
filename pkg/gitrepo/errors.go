package gitrepo

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

// describe wraps a transport error with what was tried, against which
// remote, and what to check. Errors that retrying cannot fix are marked
// Permanent.
func (c *Client) describe(op string, err error) error {
	if err == nil {
		return nil
	}
	where := op + " " + c.URL()
	var unknownAuthority x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var netErr net.Error
	var opErr *net.OpError
	msg := err.Error()
	switch {
	case errors.Is(err, context.Canceled),
		// A dial or read timeout (a *net.OpError) also matches
		// DeadlineExceeded; it is worth retrying. The step's own deadline is
		// final (and Backoff.Do stops once the step's context is done).
		errors.Is(err, context.DeadlineExceeded) && !errors.As(err, &opErr):
		return Permanent(fmt.Errorf("%s: %w", where, err))
	case errors.Is(err, transport.ErrAuthenticationRequired):
		return Permanent(fmt.Errorf("%s: authentication required or refused: check source.username and source.password", where))
	case errors.Is(err, transport.ErrAuthorizationFailed):
		return Permanent(fmt.Errorf("%s: not authorized: check that the credentials may access this repository", where))
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return Permanent(fmt.Errorf("%s: repository not found: check source.uri (some servers also answer this to missing credentials)", where))
	case errors.Is(err, ErrHostKeyMismatch):
		return Permanent(fmt.Errorf("%s: %w: check source.known_hosts", where, err))
	case strings.Contains(msg, "declined"), strings.Contains(msg, "protected branch"):
		return Permanent(fmt.Errorf("%s: the server refused the push: %w: check branch protection and hooks on %s", where, err, c.ep.host()))
	case strings.Contains(msg, "unable to authenticate"):
		return Permanent(fmt.Errorf("%s: ssh authentication failed as %q: check that source.private_key is authorized on %s", where, c.sshUser(), c.ep.host()))
	case errors.As(err, &unknownAuthority), errors.As(err, &hostErr), strings.Contains(msg, "x509:"):
		return Permanent(fmt.Errorf("%s: the TLS certificate of %s is not trusted: %v (source.skip_ssl_verification: true skips the check)", where, c.ep.host(), err))
	case errors.As(err, &netErr), strings.Contains(msg, "connection refused"), strings.Contains(msg, "no such host"):
		return fmt.Errorf("%s: cannot reach %s: %w: check the URL and that the server is up", where, c.ep.host(), err)
	}
	return fmt.Errorf("%s: %w", where, err)
}

func (c *Client) sshUser() string {
	if c.ep.ep.User != "" {
		return c.ep.ep.User
	}
	return "git"
}
