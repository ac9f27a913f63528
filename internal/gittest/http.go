package gittest

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"
)

// Fault tells the HTTP server how to break one request. The zero Fault serves
// the request normally.
type Fault struct {
	// Status, when non-zero, answers with this HTTP status and a short text
	// body instead of serving the request.
	Status int
	// Hangup closes the connection without answering.
	Hangup bool
	// TruncateAfter, when positive, serves the request but closes the
	// connection after this many bytes of response body, mid-response.
	TruncateAfter int
	// Delay holds the request this long before the rest of the fault (or
	// the normal answer) happens; it ends early when the client goes away or
	// the Server stops. Use it to test timeouts.
	Delay time.Duration
}

// FailFirst returns a fault function for WithHTTPFault that applies f to the
// first n git service requests it sees and serves the rest normally.
func FailFirst(n int, f Fault) func(*http.Request) Fault {
	var seen atomic.Int64
	return func(*http.Request) Fault {
		if seen.Add(1) <= int64(n) {
			return f
		}
		return Fault{}
	}
}

// Service names the git service a smart-HTTP request belongs to,
// "git-upload-pack" or "git-receive-pack", or "" for any other request.
func Service(r *http.Request) string {
	p := r.URL.Path
	switch {
	case strings.HasSuffix(p, "/info/refs"):
		switch svc := r.URL.Query().Get("service"); svc {
		case "git-upload-pack", "git-receive-pack":
			return svc
		}
	case strings.HasSuffix(p, "/git-upload-pack"):
		return "git-upload-pack"
	case strings.HasSuffix(p, "/git-receive-pack"):
		return "git-receive-pack"
	}
	return ""
}

func (s *Server) startHTTP() error {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	if !strings.HasPrefix(srv.Listener.Addr().String(), "127.0.0.1:") {
		// httptest falls back to [::1] when 127.0.0.1 is unavailable; the
		// URLs we promise are 127.0.0.1.
		srv.Listener.Close()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv.Listener = ln
	}
	srv.Config.ErrorLog = log.New(s.log, "gittest: http: ", 0)
	if s.cfg.tls {
		srv.StartTLS()
		s.http = srv
		return nil
	}
	srv.Start()
	s.http = srv
	return nil
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	var env []string
	if s.cfg.user != "" {
		user, pass, ok := r.BasicAuth()
		if !ok ||
			subtle.ConstantTimeCompare([]byte(user), []byte(s.cfg.user)) != 1 ||
			subtle.ConstantTimeCompare([]byte(pass), []byte(s.cfg.pass)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="gittest"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		env = append(env, "REMOTE_USER="+user)
	}
	if s.cfg.fault != nil && Service(r) != "" {
		f := s.cfg.fault(r)
		if f.Delay > 0 {
			timer := time.NewTimer(f.Delay)
			select {
			case <-timer.C:
			case <-r.Context().Done():
				timer.Stop()
				return
			case <-s.ctx.Done():
				timer.Stop()
				hangup(w)
				return
			}
		}
		switch {
		case f.Hangup:
			hangup(w)
			return
		case f.Status != 0:
			http.Error(w, "gittest: injected fault", f.Status)
			return
		case f.TruncateAfter > 0:
			w = &truncatingWriter{ResponseWriter: w, left: f.TruncateAfter}
		}
	}
	if r.ContentLength < 0 || len(r.TransferEncoding) > 0 {
		// net/http/cgi refuses chunked bodies, which git sends for packs
		// over http.postBuffer; CGI wants a length, so read the body first.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "gittest: read request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.TransferEncoding = nil
	}
	h := &cgi.Handler{
		Path:   s.git,
		Args:   []string{"http-backend"},
		Dir:    s.root,
		Env:    s.gitEnv(append(env, "GIT_PROJECT_ROOT="+s.root, "GIT_HTTP_EXPORT_ALL=1")...),
		Logger: log.New(s.log, "gittest: http-backend: ", 0),
		Stderr: s.log,
	}
	h.ServeHTTP(w, r)
}

// hangup closes the request's connection without a response.
func hangup(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

var errTruncated = errors.New("gittest: response truncated by injected fault")

// truncatingWriter passes through the first left bytes of the body, then
// flushes them and closes the connection.
type truncatingWriter struct {
	http.ResponseWriter
	left int
	done bool
}

func (w *truncatingWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, errTruncated
	}
	if len(p) < w.left {
		w.left -= len(p)
		return w.ResponseWriter.Write(p)
	}
	n, _ := w.ResponseWriter.Write(p[:w.left])
	w.done = true
	rc := http.NewResponseController(w.ResponseWriter)
	_ = rc.Flush()
	hangup(w.ResponseWriter)
	return n, errTruncated
}
