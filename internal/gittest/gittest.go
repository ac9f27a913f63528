package gittest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// Identity used for commits made by the helpers.
const (
	AuthorName  = "gittest"
	AuthorEmail = "gittest@example.invalid"
)

// Server is a pair of git servers (smart HTTP and SSH) over one directory of
// bare repositories.
type Server struct {
	root string // GIT_PROJECT_ROOT: the bare repositories
	home string // HOME for every git process
	git  string // path of the git binary
	cfg  config
	log  io.Writer

	http *httptest.Server

	sshLn     net.Listener
	sshConfig *ssh.ServerConfig
	hostKey   ssh.Signer

	clientKey  ssh.Signer
	clientPriv any // the private key behind clientKey, for marshalling

	ctx    context.Context // cancelled by close: kills running git processes
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	authorized map[string]bool // ssh.PublicKey.Marshal() of authorized client keys
	conns      map[net.Conn]struct{}
	closed     bool

	encryptedKeys map[string][]byte // ClientKeyWithPassphrase, by passphrase
}

type config struct {
	tls        bool   // serve HTTPS with a self-signed certificate
	user, pass string // HTTP basic auth, when user != ""
	fault      func(*http.Request) Fault
	log        io.Writer
	// reachableSHA1InWant: repositories set
	// uploadpack.allowReachableSHA1InWant.
	reachableSHA1InWant bool
}

// Option configures a Server.
type Option func(*config)

// WithBasicAuth makes the HTTP server require these credentials (default: no
// auth). Missing or wrong credentials get 401 with `WWW-Authenticate: Basic`.
func WithBasicAuth(username, password string) Option {
	return func(c *config) { c.user, c.pass = username, password }
}

// WithHTTPFault lets f break smart-HTTP requests (default: none). f is
// consulted only for git service requests, the ref advertisement
// (GET .../info/refs?service=git-upload-pack|git-receive-pack) and the pack
// exchange (POST .../git-upload-pack|git-receive-pack), after basic auth; use
// Service(r) and r.Method to tell them apart. It may be called concurrently.
func WithHTTPFault(f func(r *http.Request) Fault) Option {
	return func(c *config) { c.fault = f }
}

// WithTLS serves smart HTTP over HTTPS with httptest's self-signed
// certificate, which clients do not trust unless told to skip verification.
func WithTLS() Option {
	return func(c *config) { c.tls = true }
}

// WithReachableSHA1InWant sets uploadpack.allowReachableSHA1InWant in every
// repository the Server creates, as GitHub and GitLab allow: upload-pack then
// advertises allow-reachable-sha1-in-want and serves any commit reachable
// from a ref by its SHA. Without it (the default) the servers run git's
// default upload-pack settings, as a stock git http-backend or git daemon
// does, and serve by SHA only the tips of refs.
func WithReachableSHA1InWant() Option {
	return func(c *config) { c.reachableSHA1InWant = true }
}

// WithLog sends the servers' diagnostics (http-backend stderr, refused SSH
// requests) to w (default: discarded).
func WithLog(w io.Writer) Option {
	return func(c *config) { c.log = w }
}

// New starts an HTTP and an SSH git server on 127.0.0.1, each on a free port,
// serving the repositories made with CreateRepo. They stop when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := Start(t.TempDir(), opts...)
	if err != nil {
		t.Fatalf("gittest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Start is New for a program: the servers keep their repositories under dir
// and run until Close.
func Start(dir string, opts ...Option) (*Server, error) {
	gitPath, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("git not found in PATH (install it, e.g. `apt-get install git`): %w", err)
	}
	s := &Server{
		git:        gitPath,
		authorized: map[string]bool{},
		conns:      map[net.Conn]struct{}{},

		encryptedKeys: map[string][]byte{},
	}
	for _, o := range opts {
		o(&s.cfg)
	}
	s.log = s.cfg.log
	if s.log == nil {
		s.log = io.Discard
	}
	s.root = filepath.Join(dir, "repos")
	s.home = filepath.Join(dir, "home")
	for _, d := range []string{s.root, s.home} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.startHTTP(); err != nil {
		s.Close()
		return nil, fmt.Errorf("start http server: %w", err)
	}
	if err := s.startSSH(); err != nil {
		s.Close()
		return nil, fmt.Errorf("start ssh server: %w", err)
	}
	return s, nil
}

// Close stops both servers, kills running git processes and waits for every
// goroutine the Server started.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.cancel()
	if s.sshLn != nil {
		s.sshLn.Close()
	}
	if s.http != nil {
		s.http.CloseClientConnections()
		s.http.Close()
	}
	s.wg.Wait()
}

// Root is the directory holding the bare repositories (GIT_PROJECT_ROOT).
func (s *Server) Root() string { return s.root }

// RepoPath is the directory of the bare repository name on disk.
func (s *Server) RepoPath(name string) string {
	return filepath.Join(s.root, filepath.FromSlash(repoName(name)))
}

// HTTPURL is the smart-HTTP clone URL of repository name,
// http://127.0.0.1:PORT/name.git.
func (s *Server) HTTPURL(name string) string {
	return s.http.URL + "/" + repoName(name)
}

// HTTPAddr is the HTTP server's host:port.
func (s *Server) HTTPAddr() string { return s.http.Listener.Addr().String() }

// SSHURL is the SSH clone URL of repository name,
// ssh://git@127.0.0.1:PORT/name.git.
func (s *Server) SSHURL(name string) string {
	return "ssh://git@" + s.SSHAddr() + "/" + repoName(name)
}

// SSHAddr is the SSH server's host:port.
func (s *Server) SSHAddr() string { return s.sshLn.Addr().String() }

// repoName normalises a repository name: no leading slash, ".git" suffix.
func repoName(name string) string {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if !strings.HasSuffix(name, ".git") {
		name += ".git"
	}
	return name
}

func (s *Server) logf(format string, args ...any) {
	fmt.Fprintf(s.log, "gittest: "+format+"\n", args...)
}

// track registers a connection so close can break it; it reports false when
// the server is already closing.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// gitEnv is the environment of every git process the Server runs: the
// caller's environment without GIT_* variables, plus isolation and identity.
func (s *Server) gitEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GIT_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"HOME="+s.home,
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME="+AuthorName,
		"GIT_AUTHOR_EMAIL="+AuthorEmail,
		"GIT_COMMITTER_NAME="+AuthorName,
		"GIT_COMMITTER_EMAIL="+AuthorEmail,
	)
	return append(env, extra...)
}
