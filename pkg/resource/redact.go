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

// urlScheme matches the start of a URL, up to the userinfo.
var urlScheme = regexp.MustCompile(`(?i)[a-z][a-z0-9+.-]*://`)

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
		return redactURLs(s)
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
	return redactURLs(s)
}

// redactURLs replaces the user:password of every scheme://user:password@host
// in text, a line at a time.
func redactURLs(text string) string {
	starts := urlScheme.FindAllStringIndex(text, -1)
	var b strings.Builder
	done := 0
	for i, loc := range starts {
		end := len(text)
		if i+1 < len(starts) {
			end = starts[i+1][0]
		}
		if nl := strings.IndexByte(text[loc[1]:end], '\n'); nl >= 0 {
			end = loc[1] + nl
		}
		if at := userinfoEnd(text[loc[1]:end]); at >= 0 {
			b.WriteString(text[done:loc[1]])
			b.WriteString(Redacted)
			done = loc[1] + at
		}
	}
	if done == 0 {
		return text
	}
	b.WriteString(text[done:])
	return b.String()
}

// RedactURL is raw, one remote URL as written, with the user:password of
// its userinfo replaced, also when the URL does not parse and in the
// scp-like form user:password@host:path.
func RedactURL(raw string) string {
	rest := afterScheme(raw)
	at := userinfoEnd(rest)
	if at < 0 {
		return raw
	}
	return raw[:len(raw)-len(rest)] + Redacted + rest[at:]
}

// URLUserinfo returns the user and password written in a remote URL, as
// written (not unescaped), also when the URL does not parse. Both are ""
// when it holds no password.
func URLUserinfo(raw string) (user, password string) {
	rest := afterScheme(raw)
	at := userinfoEnd(rest)
	if at < 0 {
		return "", ""
	}
	user, password, _ = strings.Cut(rest[:at], ":")
	return user, password
}

// afterScheme is raw without its leading "scheme://".
func afterScheme(raw string) string {
	if loc := urlScheme.FindStringIndex(raw); loc != nil && loc[0] == 0 {
		return raw[loc[1]:]
	}
	return raw
}

// userinfoEnd finds the user:password at the start of s (what follows
// "scheme://", or a whole scp-like URL) and returns the index of the "@"
// that ends it, or -1 when s starts with none. Passwords often hold
// characters a URL must escape (/, #, ?, @, spaces): so the user runs to
// the first ":", and the password to the last "@" before a host, in the
// first word when that has one, else anywhere in s (which may then take in
// a later "@" of the text: over-redacting is the safe mistake). A ":"
// followed by digits and then "/", the end or punctuation is a port, and
// one followed by a space ends a phrase ("https://host: refused"), not a
// password.
func userinfoEnd(s string) int {
	colon := strings.IndexAny(s, ":@/"+space)
	if colon < 0 || s[colon] != ':' {
		return -1
	}
	after := s[colon+1:]
	rest := strings.TrimLeft(after, "0123456789")
	switch {
	case after == "" || strings.IndexAny(after[:1], space) == 0:
		return -1
	case len(rest) < len(after) && (rest == "" || strings.IndexAny(rest[:1], "/?#\"'<>(){},;"+space) == 0):
		return -1
	}
	word := s
	if sp := strings.IndexAny(s, space); sp >= 0 {
		word = s[:sp]
	}
	if at := lastAtBeforeHost(word); at > colon {
		return at
	}
	if at := lastAtBeforeHost(s); at > colon {
		return at
	}
	return -1
}

const space = " \t\r\n"

// lastAtBeforeHost is the index of the last "@" in s that a host name (or
// an IPv6 literal) follows, or -1.
func lastAtBeforeHost(s string) int {
	for at := strings.LastIndexByte(s, '@'); at >= 0; at = strings.LastIndexByte(s[:at], '@') {
		if at+1 < len(s) && isHostStart(s[at+1]) {
			return at
		}
	}
	return -1
}

func isHostStart(c byte) bool {
	return c == '[' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
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
