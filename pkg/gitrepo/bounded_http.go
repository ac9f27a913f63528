package gitrepo

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// Bounds on the other answers of a smart-HTTP server. go-git reads a ref
// advertisement into memory to its end, and the body of an error answer
// too: a server that never stops sending would fill the worker.
const (
	// MaxRefsBytes bounds a ref advertisement (and a push's report): about
	// a million refs, where a repository with 100,000 pull requests
	// advertises 200,000 (GitHub lists each one's head and merge refs).
	MaxRefsBytes = 64 << 20

	// MaxErrorBytes is what is read of an answer that is not a success;
	// the start of it is quoted in the error.
	MaxErrorBytes = 64 << 10
)

// installHTTP puts boundedTransport under go-git's http and https
// transports, once per process: go-git takes its HTTP client from a
// process-wide table and has no per-call option for it.
var installHTTP sync.Once

func installBoundedHTTP() {
	installHTTP.Do(func() {
		secure := http.DefaultTransport.(*http.Transport).Clone()
		insecure := secure.Clone()
		insecure.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
		c := githttp.NewClient(&http.Client{Transport: boundedTransport{secure: secure, insecure: insecure}})
		client.InstallProtocol("http", c)
		client.InstallProtocol("https", c)
	})
}

// skipTLSVerify is the context key by which a Client asks boundedTransport
// not to verify the server's certificate (source.skip_ssl_verification).
// go-git's own option for it requires its client's transport to be an
// *http.Transport, which boundedTransport cannot be.
type skipTLSVerify struct{}

// withTLSOptions is the context for go-git calls of c.
func (c *Client) withTLSOptions(ctx context.Context) context.Context {
	if c.insecure {
		return context.WithValue(ctx, skipTLSVerify{}, true)
	}
	return ctx
}

// boundedTransport caps what is read of each answer: MaxRefsBytes of a ref
// advertisement or push report, MaxPackBytes (and MaxRefsBytes of
// negotiation around it) of a fetch, MaxErrorBytes of an error.
type boundedTransport struct{ secure, insecure http.RoundTripper }

func (t boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt := t.secure
	if skip, _ := req.Context().Value(skipTLSVerify{}).(bool); skip {
		rt = t.insecure
	}
	res, err := rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	switch {
	case res.StatusCode < 200 || res.StatusCode >= 300:
		// go-git quotes none of it, we quote the start: no need for more.
		res.Body = readCloser{io.LimitReader(res.Body, MaxErrorBytes), res.Body}
	case req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/git-upload-pack"):
		res.Body = capBody(res.Body, req, MaxPackBytes+MaxRefsBytes, "gitrepo.MaxPackBytes")
	default:
		res.Body = capBody(res.Body, req, MaxRefsBytes, "gitrepo.MaxRefsBytes")
	}
	return res, nil
}

func capBody(body io.ReadCloser, req *http.Request, max int64, bound string) io.ReadCloser {
	return &cappedBody{ReadCloser: body, max: max, left: max, what: req.Method + " " + req.URL.Redacted(), bound: bound}
}

type readCloser struct {
	io.Reader
	io.Closer
}

// cappedBody fails a read past max bytes.
type cappedBody struct {
	io.ReadCloser
	max, left   int64
	what, bound string
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		if n, err := b.ReadCloser.Read(one[:]); n == 0 && err != nil {
			return 0, err // the answer ended right at the bound
		}
		return 0, fmt.Errorf("the server's answer to %s goes on past the %s a step reads (%s)", b.what, bytesText(b.max), b.bound)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
