package resource

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Redacted replaces a secret in anything printed.
const Redacted = "[redacted]"

// Redactor removes known secret values, and credentials embedded in URLs,
// from text. It is the one place every output of the binaries passes through.
type Redactor struct {
	mu      sync.Mutex
	secrets []string
}

// urlCredentials matches user:password@ in a URL.
var urlCredentials = regexp.MustCompile(`(?i)([a-z][a-z0-9+.-]*://)[^/@\s:]+:[^/@\s]*@`)

// minSecretLen keeps tiny values (a one-letter password) from shredding
// every log line; they are still replaced when they stand alone.
const minSecretLen = 4

// Add registers secret values. Multi-line values (keys, kubeconfigs) are
// also registered line by line, and each value in the encodings it is likely
// to be printed in (URL-escaped, base64, inside basic auth).
func (r *Redactor) Add(values ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range values {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		r.secrets = append(r.secrets, v, url.QueryEscape(v), url.PathEscape(v),
			base64.StdEncoding.EncodeToString([]byte(v)))
		if strings.Contains(v, "\n") {
			for _, line := range strings.Split(v, "\n") {
				line = strings.TrimSpace(line)
				if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
					r.secrets = append(r.secrets, line)
				}
			}
		}
	}
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
}

// AddBasicAuth registers a username/password pair as sent in an HTTP header.
func (r *Redactor) AddBasicAuth(user, pass string) {
	if pass == "" {
		return
	}
	r.Add(pass, base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
}

// String returns s with every registered secret replaced.
func (r *Redactor) String(s string) string {
	if r == nil {
		return urlCredentials.ReplaceAllString(s, "${1}"+Redacted+"@")
	}
	r.mu.Lock()
	secrets := r.secrets
	r.mu.Unlock()
	for _, v := range secrets {
		if len(v) < minSecretLen && s != v {
			continue
		}
		s = strings.ReplaceAll(s, v, Redacted)
	}
	return urlCredentials.ReplaceAllString(s, "${1}"+Redacted+"@")
}

// Writer returns a writer that redacts w line by line. Close flushes a last
// line without a newline.
func (r *Redactor) Writer(w io.Writer) io.WriteCloser {
	return &redactingWriter{r: r, w: w}
}

type redactingWriter struct {
	mu  sync.Mutex
	r   *Redactor
	w   io.Writer
	buf []byte
}

func (rw *redactingWriter) Write(p []byte) (int, error) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	rw.buf = append(rw.buf, p...)
	for {
		i := bytes.IndexByte(rw.buf, '\n')
		if i < 0 {
			break
		}
		if _, err := io.WriteString(rw.w, rw.r.String(string(rw.buf[:i+1]))); err != nil {
			return len(p), err
		}
		rw.buf = rw.buf[i+1:]
	}
	return len(p), nil
}

func (rw *redactingWriter) Close() error {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if len(rw.buf) == 0 {
		return nil
	}
	_, err := io.WriteString(rw.w, rw.r.String(string(rw.buf)))
	rw.buf = nil
	return err
}
