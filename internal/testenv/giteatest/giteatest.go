package giteatest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitops-resource/gitops-resource/internal/proc"
)

// EnvBinDir names the dir holding the gitea binary (with ../options).
const EnvBinDir = "GITOPS_GITEA_BIN"

// ErrNoBinaries is wrapped by Launch's error when gitea is not built. Start
// and Suite.Server skip the test outside CI and fail it in CI.
var ErrNoBinaries = errors.New("gitea is missing")

// buildHint says how to get the binary; it ends every ErrNoBinaries error.
const buildHint = "run 'make tools-gitea' or hack/gitea-build.sh (a cold build takes about 5 minutes on 2 cores), " +
	"or set " + EnvBinDir + " to a dir holding gitea with ../options next to it"

// Admin is the name of the admin user Launch creates.
const Admin = "gitea-admin"

// Server is a running Gitea.
type Server struct {
	// URL is its base URL, http://127.0.0.1:<port>, without a slash.
	URL string
	// Admin and Password log in as its admin user (also over git's HTTP).
	Admin, Password string
	// Token is an access token of the admin user with every scope.
	Token string
	// Dir holds its config, data, repositories and log (gitea.log).
	Dir string

	process *proc.Process
}

// Launch starts a Gitea: writes its config into a temp dir, migrates the
// database, creates the admin user and its token, then runs `gitea web` and
// waits (up to a minute) until it answers /api/healthz. Stop it with Stop.
func Launch(ctx context.Context) (*Server, error) {
	bin, err := findBinary(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "giteatest-")
	if err != nil {
		return nil, fmt.Errorf("giteatest: %w", err)
	}
	s, err := launch(ctx, bin, dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func launch(ctx context.Context, bin, dir string) (*Server, error) {
	ports, err := proc.FreePorts(1)
	if err != nil {
		return nil, err
	}
	s := &Server{
		URL:      "http://127.0.0.1:" + strconv.Itoa(ports[0]),
		Admin:    Admin,
		Password: "pw-" + randomHex(12),
		Dir:      dir,
	}
	config := filepath.Join(dir, "app.ini")
	if err := os.WriteFile(config, []byte(appIni(dir, filepath.Dir(filepath.Dir(bin)), ports[0])), 0o600); err != nil {
		return nil, fmt.Errorf("giteatest: write %s: %w", config, err)
	}
	env := environ(dir)
	run := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, append([]string{"--config", config, "--work-path", dir}, args...)...)
		cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("giteatest: gitea %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()+"\n"+stdout.String()))
		}
		return strings.TrimSpace(stdout.String()), nil
	}
	if _, err := run("migrate"); err != nil {
		return nil, err
	}
	if _, err := run("admin", "user", "create", "--username", s.Admin, "--password", s.Password,
		"--email", s.Admin+"@example.com", "--admin", "--must-change-password=false"); err != nil {
		return nil, err
	}
	token, err := run("admin", "user", "generate-access-token", "--username", s.Admin,
		"--token-name", "giteatest", "--scopes", "all", "--raw")
	if err != nil {
		return nil, err
	}
	s.Token = lastLine(token)
	s.process, err = proc.Start("gitea", bin, dir, env, "--config", config, "--work-path", dir, "web")
	if err != nil {
		return nil, fmt.Errorf("giteatest: %w", err)
	}
	readyCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := proc.WaitHTTP(readyCtx, s.process, s.URL+"/api/healthz"); err != nil {
		_ = s.process.Stop(10 * time.Second)
		return nil, fmt.Errorf("giteatest: %w", err)
	}
	return s, nil
}

// Stop stops gitea (SIGTERM, then SIGKILL after 10 s) and removes its dir.
func (s *Server) Stop() error {
	if err := s.process.Stop(10 * time.Second); err != nil {
		return fmt.Errorf("giteatest: %w", err)
	}
	if err := os.RemoveAll(s.Dir); err != nil {
		return fmt.Errorf("giteatest: %w", err)
	}
	return nil
}

// RSS is gitea's resident memory in bytes.
func (s *Server) RSS() int64 { return s.process.RSS() }

// Listeners are the TCP addresses gitea listens on.
func (s *Server) Listeners() ([]string, error) { return s.process.Listeners() }

// Log is the path of gitea's log.
func (s *Server) Log() string { return s.process.Log() }

// Start launches a Gitea for t alone and stops it when t ends. A missing
// binary skips t, or fails it in CI.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := Launch(t.Context())
	switch {
	case errors.Is(err, ErrNoBinaries) && !proc.InCI():
		t.Skipf("giteatest: %v", err)
	case err != nil:
		t.Fatalf("giteatest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("giteatest: %v", err)
		}
	})
	return s
}

// Suite shares one Gitea among the tests of a package, started by the first
// test that asks for it. The zero value is ready: TestMain calls Main, each
// test calls Server.
type Suite struct {
	once    sync.Once
	mu      sync.Mutex
	server  *Server
	err     error
	started bool
}

// Main runs the package's tests, then stops the Gitea if one was started,
// and exits with the tests' status.
func (s *Suite) Main(m *testing.M) {
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	code := m.Run()
	s.mu.Lock()
	srv := s.server
	s.mu.Unlock()
	if srv != nil {
		if err := srv.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "giteatest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// Server returns the suite's Gitea, starting it on first use. Under -short,
// or when the binary is missing outside CI, it skips t.
func (s *Suite) Server(t testing.TB) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("giteatest: Gitea is not started under -short")
	}
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if !started {
		t.Fatal("giteatest: Suite.Server called without Suite.Main: call it from TestMain")
	}
	s.once.Do(func() {
		// Not t's context: the server outlives t.
		srv, err := Launch(context.Background())
		s.mu.Lock()
		s.server, s.err = srv, err
		s.mu.Unlock()
	})
	switch {
	case errors.Is(s.err, ErrNoBinaries) && !proc.InCI():
		t.Skipf("giteatest: %v", s.err)
	case s.err != nil:
		t.Fatalf("giteatest: %v", s.err)
	}
	return s.server
}

// findBinary returns $GITOPS_GITEA_BIN/gitea, else the gitea that
// hack/gitea-build.sh --check reports, after checking ../options is there.
// It never builds: a missing build is an ErrNoBinaries error.
func findBinary(ctx context.Context) (string, error) {
	dir := os.Getenv(EnvBinDir)
	if dir == "" {
		var err error
		if dir, err = proc.CachedBinDir(ctx, "gitea-build.sh"); err != nil {
			return "", fmt.Errorf("%w: %s is not set and %w: %s", ErrNoBinaries, EnvBinDir, err, buildHint)
		}
	}
	bin := filepath.Join(dir, "gitea")
	if info, err := os.Stat(bin); err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%w: no gitea in %s: %s", ErrNoBinaries, dir, buildHint)
	}
	if _, err := os.Stat(filepath.Join(dir, "..", "options", "locale")); err != nil {
		return "", fmt.Errorf("%w: no ../options/locale next to %s: %s", ErrNoBinaries, dir, buildHint)
	}
	return bin, nil
}

// environ is gitea's environment: its own HOME and work dir.
func environ(dir string) []string {
	return []string{"HOME=" + filepath.Join(dir, "home"), "GITEA_WORK_DIR=" + dir, "GITEA_CUSTOM=" + filepath.Join(dir, "custom")}
}

// appIni is gitea's config: default settings, except what a test server
// needs (loopback, SQLite, no mail, no SSH, in-memory caches and queues)
// and what spares the machine (no indexers, no cron, no Actions). As root
// (CI containers) it sets the switch without which gitea refuses to run.
func appIni(dir, static string, port int) string {
	runUser := "root"
	if u, err := user.Current(); err == nil {
		runUser = u.Username
	}
	return fmt.Sprintf(`APP_NAME = giteatest
RUN_MODE = prod
RUN_USER = %[4]s
WORK_PATH = %[1]s
I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = %[6]t

[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = %[3]d
ROOT_URL = http://127.0.0.1:%[3]d/
DOMAIN = 127.0.0.1
DISABLE_SSH = true
START_SSH_SERVER = false
OFFLINE_MODE = true
LFS_START_SERVER = false
STATIC_ROOT_PATH = %[2]s
APP_DATA_PATH = %[1]s/data

[database]
DB_TYPE = sqlite3
PATH = %[1]s/data/gitea.db
SQLITE_JOURNAL_MODE = WAL

[repository]
ROOT = %[1]s/repositories
DEFAULT_BRANCH = main

[security]
INSTALL_LOCK = true
SECRET_KEY = %[5]s

[oauth2]
ENABLED = false

[service]
DISABLE_REGISTRATION = true
REQUIRE_SIGNIN_VIEW = false
DEFAULT_ALLOW_CREATE_ORGANIZATION = true

[mailer]
ENABLED = false

[session]
PROVIDER = memory

[cache]
ADAPTER = memory

[queue]
TYPE = channel

[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false

[cron]
ENABLED = false

[cron.update_checker]
ENABLED = false

[actions]
ENABLED = false

[log]
MODE = console
LEVEL = Info
ROOT_PATH = %[1]s/log
`, dir, static, port, runUser, randomHex(32), os.Geteuid() == 0)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
