package kube

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
)

// APIError is a failed call to the API server, explained for a pipeline
// author: what was being done, to which object, on which host, and what to
// check. Code is the HTTP status (0 when the server was not reached).
type APIError struct {
	Op     string // "apply", "dry-run apply", "get", "watch", ...
	Object string // Deployment/ns/web, or "" for calls about no object
	Host   string
	Code   int
	Hint   string
	Err    error
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Object != "" {
		b.WriteString(" " + e.Object)
	}
	b.WriteString(": ")
	b.WriteString(e.reason())
	if e.Hint != "" {
		b.WriteString(": " + e.Hint)
	}
	return b.String()
}

func (e *APIError) reason() string {
	var status apierrors.APIStatus
	if errors.As(e.Err, &status) {
		return strings.TrimSpace(status.Status().Message)
	}
	return e.Err.Error()
}

func (e *APIError) Unwrap() error { return e.Err }

// explain wraps err from an API call in an APIError with a hint. verb,
// resource and namespace describe the call for RBAC messages.
func (c *Client) explain(op, object, verb, resource, namespace string, err error) error {
	if err == nil {
		return nil
	}
	var already *APIError
	if errors.As(err, &already) {
		return err
	}
	e := &APIError{Op: op, Object: object, Host: c.host, Err: err}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		e.Code = int(status.Status().Code)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		// A network timeout reads as a deadline too: say both.
		e.Hint = fmt.Sprintf("gave up waiting for %s: the step's timeout ran out, or the connection timed out (is the API server reachable from the worker?)", c.host)
	case apierrors.IsUnauthorized(err):
		e.Hint = fmt.Sprintf("the API server %s rejected the credentials (401 Unauthorized): check source.token/kubeconfig (expired token?)", c.host)
	case apierrors.IsForbidden(err):
		if m := forbiddenVerb.FindStringSubmatch(err.Error()); m != nil {
			verb = m[1] // the server knows best: applying a new object needs create
		}
		where := "cluster-wide"
		if namespace != "" {
			where = "in namespace " + namespace
		}
		e.Hint = fmt.Sprintf("forbidden (403): the credentials may not %s %s %s: grant it in a Role bound to the pipeline's identity, or use other credentials", verb, resource, where)
		if op == "watch" {
			e.Hint += " (waiting watches what was applied: it needs get, list and watch; or set params.wait: false)"
		}
	case meta.IsNoMatchError(err):
		e.Hint = "the API server does not serve this kind: is its CRD installed (or part of the set), and the apiVersion right?"
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		e.Hint = "the server rejected the object: fix the manifest"
	case apierrors.IsNotFound(err) && strings.Contains(err.Error(), "namespaces"):
		e.Hint = "the namespace does not exist: create it, or add a Namespace object to the set"
	default:
		if h := connectionHint(c.host, err); h != "" {
			e.Hint = h
		}
	}
	return e
}

// forbiddenVerb finds the verb in the API server's RBAC denial.
var forbiddenVerb = regexp.MustCompile(`cannot (\S+) resource "`)

// connectionHint explains transport failures, naming the host.
func connectionHint(host string, err error) string {
	var ua x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr *x509.CertificateInvalidError
	var urlErr *url.Error
	var netErr net.Error
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.As(err, &ua), errors.As(err, &hostErr), errors.As(err, &certErr),
		strings.Contains(err.Error(), "x509:"), strings.Contains(err.Error(), "tls:"):
		return fmt.Sprintf("TLS with %s failed: check source.certificate_authority (or the kubeconfig's certificate-authority-data)", host)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("cannot resolve the API server host of %s: check source.server (or the kubeconfig's cluster server)", host)
	case errors.As(err, &opErr), errors.As(err, &netErr), errors.As(err, &urlErr),
		strings.Contains(err.Error(), "connection refused"):
		return fmt.Sprintf("cannot reach the API server %s: check source.server (or the kubeconfig's cluster server) and that the worker can reach it", host)
	}
	return ""
}

// Unreachable reports whether err means the API server was not reached.
func Unreachable(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Code == 0 && strings.Contains(e.Hint, "cannot reach")
}

// Explain wraps err from an API call made outside this package (through
// Dynamic or Typed) the way this package's own calls are: an APIError naming
// the operation, the object and the host, with a hint for 401, 403 (verb,
// resource, namespace), unknown kinds and unreachable servers.
func (c *Client) Explain(op, object, verb, resource, namespace string, err error) error {
	return c.explain(op, object, verb, resource, namespace, err)
}
