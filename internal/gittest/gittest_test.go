package gittest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// client runs the git CLI as a user with no configuration would.
type client struct {
	t   testing.TB
	env []string
	dir string // scratch dir for clones
}

func newClient(t testing.TB) *client {
	t.Helper()
	home := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "SSH_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"HOME="+home,
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=/bin/false",
		"GIT_AUTHOR_NAME=client", "GIT_AUTHOR_EMAIL=client@example.invalid",
		"GIT_COMMITTER_NAME=client", "GIT_COMMITTER_EMAIL=client@example.invalid",
	)
	return &client{t: t, env: env, dir: t.TempDir()}
}

// withSSH makes the client use key and knownHosts for SSH, strictly.
func (c *client) withSSH(key []byte, knownHosts string) *client {
	c.t.Helper()
	dir := c.t.TempDir()
	keyFile := filepath.Join(dir, "id")
	khFile := filepath.Join(dir, "known_hosts")
	require.NoError(c.t, os.WriteFile(keyFile, key, 0o600))
	require.NoError(c.t, os.WriteFile(khFile, []byte(knownHosts), 0o600))
	cc := *c
	cc.env = append(append([]string(nil), c.env...), "GIT_SSH_COMMAND=ssh -F /dev/null -i "+keyFile+
		" -o UserKnownHostsFile="+khFile+" -o GlobalKnownHostsFile=/dev/null"+
		" -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o BatchMode=yes")
	return &cc
}

// git runs the git CLI in dir (relative to the client's scratch dir).
func (c *client) git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = filepath.Join(c.dir, dir)
	cmd.Env = c.env
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

func (c *client) mustGit(dir string, args ...string) string {
	c.t.Helper()
	out, err := c.git(dir, args...)
	require.NoError(c.t, err, "git %s: %s", strings.Join(args, " "), out)
	return out
}

// cloneEditPush clones url, commits one file and pushes it to main, and
// checks the server has it.
func cloneEditPush(t *testing.T, s *Server, c *client, url string) {
	t.Helper()
	first := s.Commit(t, "app", "main", map[string]string{"README.md": "hello\n"}, "first")

	c.mustGit("", "clone", "--quiet", url, "work")
	b, err := os.ReadFile(filepath.Join(c.dir, "work", "README.md"))
	require.NoError(t, err)
	require.Equal(t, "hello\n", string(b))
	require.Equal(t, first, c.mustGit("work", "rev-parse", "HEAD"))

	require.NoError(t, os.WriteFile(filepath.Join(c.dir, "work", "v"), []byte("1.0.0"), 0o644))
	c.mustGit("work", "add", "v")
	c.mustGit("work", "commit", "--quiet", "-m", "bump")
	c.mustGit("work", "push", "--quiet", "origin", "main")

	head := c.mustGit("work", "rev-parse", "HEAD")
	require.Equal(t, head, s.Tip(t, "app", "main"))
	got, ok := s.ReadFile(t, "app", "main", "v")
	require.True(t, ok)
	require.Equal(t, "1.0.0", got)
	log := s.Log(t, "app", "main")
	require.Len(t, log, 2)
	require.Equal(t, Commit{SHA: head, Parents: []string{first}, Message: "bump",
		Author: "client <client@example.invalid>", Committer: "client <client@example.invalid>"}, log[0])
}

func TestHTTPCloneAndPush(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.CreateRepo(t, "app")
	cloneEditPush(t, s, newClient(t), s.HTTPURL("app"))
}

func TestHTTPBasicAuth(t *testing.T) {
	t.Parallel()
	s := New(t, WithBasicAuth("ci", "s3cret"))
	s.CreateRepo(t, "app")
	withCreds := func(user, pass string) string {
		return strings.Replace(s.HTTPURL("app"), "http://", "http://"+user+":"+pass+"@", 1)
	}

	t.Run("no credentials", func(t *testing.T) {
		resp, err := http.Get(s.HTTPURL("app") + "/info/refs?service=git-upload-pack")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		require.Contains(t, resp.Header.Get("WWW-Authenticate"), "Basic")
	})
	t.Run("wrong password", func(t *testing.T) {
		c := newClient(t)
		s.Commit(t, "app", "main", map[string]string{"a": "a"}, "a")
		out, err := c.git("", "clone", withCreds("ci", "wrong"), "work")
		require.Error(t, err)
		require.Contains(t, out, "Authentication failed")
	})
	t.Run("right password", func(t *testing.T) {
		c := newClient(t)
		c.mustGit("", "clone", "--quiet", withCreds("ci", "s3cret"), "work")
		c.mustGit("work", "commit", "--quiet", "--allow-empty", "-m", "empty")
		c.mustGit("work", "push", "--quiet", "origin", "main")
		require.Equal(t, c.mustGit("work", "rev-parse", "HEAD"), s.Tip(t, "app", "main"))
	})
}

func TestSSHCloneAndPush(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.CreateRepo(t, "app")
	c := newClient(t).withSSH(s.ClientKey(), s.KnownHosts())
	cloneEditPush(t, s, c, s.SSHURL("app"))
}

func TestSSHRefusals(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.CreateRepo(t, "app")
	s.Commit(t, "app", "main", map[string]string{"a": "a"}, "a")

	t.Run("wrong key", func(t *testing.T) {
		c := newClient(t).withSSH(NewKey(t), s.KnownHosts())
		out, err := c.git("", "clone", s.SSHURL("app"), "work")
		require.Error(t, err)
		require.Contains(t, out, "Permission denied")
	})
	t.Run("host key mismatch", func(t *testing.T) {
		c := newClient(t).withSSH(s.ClientKey(), s.KnownHostsMismatch())
		out, err := c.git("", "clone", s.SSHURL("app"), "work")
		require.Error(t, err)
		require.Contains(t, out, "Host key verification failed")
	})
	t.Run("missing repo", func(t *testing.T) {
		c := newClient(t).withSSH(s.ClientKey(), s.KnownHosts())
		out, err := c.git("", "clone", s.SSHURL("nope"), "work")
		require.Error(t, err)
		require.Contains(t, out, "does not appear to be a git repository")
	})
	t.Run("authorized later", func(t *testing.T) {
		key := NewKey(t)
		s.Authorize(t, key)
		c := newClient(t).withSSH(key, s.KnownHosts())
		c.mustGit("", "clone", "--quiet", s.SSHURL("app"), "work")
	})
}

// dialSSH connects with the Go SSH client, pinning the host key through a
// known_hosts file, as go-git does.
func dialSSH(t *testing.T, s *Server, key []byte, passphrase string) *ssh.Client {
	t.Helper()
	var signer ssh.Signer
	var err error
	if passphrase != "" {
		signer, err = ssh.ParsePrivateKeyWithPassphrase(key, []byte(passphrase))
	} else {
		signer, err = ssh.ParsePrivateKey(key)
	}
	require.NoError(t, err)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	require.NoError(t, os.WriteFile(kh, []byte(s.KnownHosts()), 0o600))
	cb, err := knownhosts.New(kh)
	require.NoError(t, err)
	conn, err := ssh.Dial("tcp", s.SSHAddr(), &ssh.ClientConfig{
		User:            "git",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: cb,
	})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestSSHExec(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.CreateRepo(t, "app")
	tip := s.Commit(t, "app", "main", map[string]string{"a": "a"}, "a")
	conn := dialSSH(t, s, s.ClientKey(), "")

	run := func(command string) (string, string, int) {
		sess, err := conn.NewSession()
		require.NoError(t, err)
		defer sess.Close()
		var stdout, stderr bytes.Buffer
		sess.Stdout, sess.Stderr = &stdout, &stderr
		sess.Stdin = strings.NewReader("0000") // flush: end the negotiation
		err = sess.Run(command)
		var exit *ssh.ExitError
		switch {
		case err == nil:
			return stdout.String(), stderr.String(), 0
		case errors.As(err, &exit):
			return stdout.String(), stderr.String(), exit.ExitStatus()
		}
		t.Fatalf("%s: %v", command, err)
		return "", "", 0
	}
	for _, cmd := range []string{
		"git-upload-pack '/app.git'",
		"git-upload-pack 'app.git'",
		"git upload-pack '/app.git'",
		"git-upload-pack /app",
		"git-receive-pack '/app.git'",
	} {
		out, _, code := run(cmd)
		require.Equal(t, 0, code, cmd)
		require.Contains(t, out, tip+" refs/heads/main", cmd)
	}
	for _, cmd := range []string{
		"ls /",
		"git-upload-archive '/app.git'",
		"git-upload-pack '/../app.git'",
		"git-upload-pack '/app.git/../../repos/app.git'",
		"git-upload-pack '/nope.git'",
		"git-upload-pack '/app.git' extra",
		"git-upload-pack",
	} {
		_, stderr, code := run(cmd)
		require.Equal(t, 128, code, cmd)
		require.Contains(t, stderr, "fatal: gittest:", cmd)
	}

	sess, err := conn.NewSession()
	require.NoError(t, err)
	defer sess.Close()
	require.Error(t, sess.Shell(), "shell requests are refused")
}

func TestParseExec(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cmd, service, repo string
	}{
		{"git-upload-pack '/app.git'", "upload-pack", "/app.git"},
		{"git-receive-pack 'org/app.git'", "receive-pack", "org/app.git"},
		{"git receive-pack '/a b.git'", "receive-pack", "/a b.git"},
		{`git-upload-pack '/it'\''s.git'`, "upload-pack", "/it's.git"},
		{`git-upload-pack '/wow'\!'.git'`, "upload-pack", "/wow!.git"},
		{"git-upload-pack /plain.git", "upload-pack", "/plain.git"},
	} {
		service, repo, err := parseExec(tc.cmd)
		require.NoError(t, err, tc.cmd)
		require.Equal(t, tc.service, service, tc.cmd)
		require.Equal(t, tc.repo, repo, tc.cmd)
	}
	for _, cmd := range []string{"", "git", "sh -c x", "git-upload-pack '/x", "git-upload-pack a b"} {
		_, _, err := parseExec(cmd)
		require.Error(t, err, cmd)
	}
}

func TestHTTPFault(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		method string // requests to break; "" for all
		fault  Fault
		want   string
	}{
		{"500", "", Fault{Status: http.StatusInternalServerError}, "500"},
		{"hangup", "", Fault{Hangup: true}, ""},
		{"truncated advertisement", http.MethodGet, Fault{TruncateAfter: 20}, ""},
		{"truncated pack", http.MethodPost, Fault{TruncateAfter: 200}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var broken atomic.Bool
			broken.Store(true)
			s := New(t, WithHTTPFault(func(r *http.Request) Fault {
				if broken.Load() && (tc.method == "" || r.Method == tc.method) {
					return tc.fault
				}
				return Fault{}
			}))
			s.CreateRepo(t, "app")
			s.SeedHistory(t, "app", "main", 50, func(i int) map[string]string {
				return map[string]string{"f" + strconv.Itoa(i): strings.Repeat("x", 1000+i)}
			})
			c := newClient(t)
			out, err := c.git("", "clone", s.HTTPURL("app"), "first")
			require.Error(t, err, "the fault must break the clone: %s", out)
			require.Contains(t, out, tc.want)
			broken.Store(false)
			c.mustGit("", "clone", "--quiet", s.HTTPURL("app"), "second")
		})
	}

	t.Run("fail first", func(t *testing.T) {
		t.Parallel()
		s := New(t, WithHTTPFault(FailFirst(1, Fault{Status: http.StatusServiceUnavailable})))
		s.CreateRepo(t, "app")
		s.Commit(t, "app", "main", map[string]string{"a": "a"}, "a")
		c := newClient(t)
		out, err := c.git("", "clone", s.HTTPURL("app"), "first")
		require.Error(t, err, out)
		require.Contains(t, out, "503")
		c.mustGit("", "clone", "--quiet", s.HTTPURL("app"), "second")
	})

	t.Run("push", func(t *testing.T) {
		t.Parallel()
		s := New(t, WithHTTPFault(func(r *http.Request) Fault {
			if Service(r) == "git-receive-pack" && r.Method == http.MethodPost {
				return Fault{Status: http.StatusBadGateway}
			}
			return Fault{}
		}))
		s.CreateRepo(t, "app")
		tip := s.Commit(t, "app", "main", map[string]string{"a": "a"}, "a")
		c := newClient(t)
		c.mustGit("", "clone", "--quiet", s.HTTPURL("app"), "work")
		c.mustGit("work", "commit", "--quiet", "--allow-empty", "-m", "lost")
		out, err := c.git("work", "push", "origin", "main")
		require.Error(t, err, out)
		require.Contains(t, out, "502")
		require.Equal(t, tip, s.Tip(t, "app", "main"))
	})
}

func TestInstallHookRejectsPush(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.CreateRepo(t, "app")
	tip := s.Commit(t, "app", "main", map[string]string{"a": "a"}, "a")
	s.InstallHook(t, "app", "pre-receive", "echo 'rejected by policy' >&2\nexit 1\n")

	c := newClient(t)
	c.mustGit("", "clone", "--quiet", s.HTTPURL("app"), "work")
	c.mustGit("work", "commit", "--quiet", "--allow-empty", "-m", "nope")
	out, err := c.git("work", "push", "origin", "main")
	require.Error(t, err)
	require.Contains(t, out, "remote: rejected by policy")
	require.Equal(t, tip, s.Tip(t, "app", "main"))
}

func TestRepoHelpers(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.CreateRepo(t, "org/app.git")
	require.DirExists(t, filepath.Join(s.Root(), "org", "app.git"))
	require.Equal(t, "", s.Tip(t, "org/app", "main"))
	require.Empty(t, s.Log(t, "org/app", "main"))

	c1 := s.Commit(t, "org/app", "main", map[string]string{
		"deploy/app.yaml":            "image: web:1\n",
		"dir with space/\"q\"\t.txt": "odd",
		"gone":                       "x",
	}, "first\n\nbody")
	c2 := s.Commit(t, "org/app", "main", map[string]string{"gone": Deleted, "deploy/app.yaml": "image: web:2\n"}, "second")
	other := s.Commit(t, "org/app", "version", map[string]string{"version": "1.0.0"}, "orphan")

	require.Equal(t, c2, s.Tip(t, "org/app", "main"))
	got, ok := s.ReadFile(t, "org/app", "main", "deploy/app.yaml")
	require.True(t, ok)
	require.Equal(t, "image: web:2\n", got)
	got, ok = s.ReadFile(t, "org/app", c1, "deploy/app.yaml")
	require.True(t, ok)
	require.Equal(t, "image: web:1\n", got)
	got, ok = s.ReadFile(t, "org/app", c1, "dir with space/\"q\"\t.txt")
	require.True(t, ok)
	require.Equal(t, "odd", got)
	_, ok = s.ReadFile(t, "org/app", "main", "gone")
	require.False(t, ok)
	_, ok = s.ReadFile(t, "org/app", "main", "deploy")
	require.False(t, ok, "a tree is not a file")
	_, ok = s.ReadFile(t, "org/app", "nope", "deploy/app.yaml")
	require.False(t, ok)

	log := s.Log(t, "org/app", "main")
	require.Len(t, log, 2)
	require.Equal(t, Commit{SHA: c2, Parents: []string{c1}, Message: "second",
		Author: "gittest <gittest@example.invalid>", Committer: "gittest <gittest@example.invalid>"}, log[0])
	require.Equal(t, "first\n\nbody", log[1].Message)
	require.Empty(t, log[1].Parents)
	require.Empty(t, s.Log(t, "org/app", "version")[0].Parents)

	require.Equal(t, c1, s.Tag(t, "org/app", "v1.0.0", c1, "release 1.0.0"))
	require.Equal(t, c2, s.Tag(t, "org/app", "v1.1.0", "main", ""))
	require.Equal(t, map[string]string{"v1.0.0": c1, "v1.1.0": c2}, s.Tags(t, "org/app"))
	require.Equal(t, map[string]string{"main": c2, "version": other}, s.Branches(t, "org/app"))
	require.Equal(t, "main", s.Git(t, "org/app", "symbolic-ref", "--short", "HEAD"))
	_, err := s.GitErr("org/app", "rev-parse", "--verify", "nope")
	require.Error(t, err)
}

func TestSeedHistory(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.CreateRepo(t, "big")
	first := s.Commit(t, "big", "main", map[string]string{"version": "0.0.0"}, "start")
	const n = 10000
	tip := s.SeedHistory(t, "big", "main", n, func(i int) map[string]string {
		return map[string]string{"counter": strconv.Itoa(i), "dir/f" + strconv.Itoa(i%10): strconv.Itoa(i)}
	})
	require.Equal(t, tip, s.Tip(t, "big", "main"))
	require.Equal(t, strconv.Itoa(n+1), s.Git(t, "big", "rev-list", "--count", "main"))
	got, _ := s.ReadFile(t, "big", "main", "counter")
	require.Equal(t, strconv.Itoa(n-1), got)
	got, _ = s.ReadFile(t, "big", "main", "version")
	require.Equal(t, "0.0.0", got, "history continues from the existing tip")
	require.Equal(t, first, s.Git(t, "big", "rev-list", "--max-parents=0", "main"))
	require.Equal(t, "commit 9999", s.Git(t, "big", "log", "-1", "--format=%s", "main"))
}

func TestHTTPLargePush(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.CreateRepo(t, "app")
	s.Commit(t, "app", "main", map[string]string{"a": "a"}, "a")
	c := newClient(t)
	c.mustGit("", "clone", "--quiet", s.HTTPURL("app"), "work")
	// Over http.postBuffer (1 MiB), git sends the pack chunked, without
	// Content-Length.
	big := make([]byte, 3<<20)
	_, err := rand.Read(big)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(c.dir, "work", "big.bin"), big, 0o644))
	c.mustGit("work", "add", "big.bin")
	c.mustGit("work", "commit", "--quiet", "-m", "big")
	c.mustGit("work", "push", "--quiet", "origin", "main")
	require.Equal(t, c.mustGit("work", "rev-parse", "HEAD"), s.Tip(t, "app", "main"))
	got, ok := s.ReadFile(t, "app", "main", "big.bin")
	require.True(t, ok)
	require.Equal(t, string(big), got)
}

func TestHTTPFaultDelay(t *testing.T) {
	t.Parallel()
	s := New(t, WithHTTPFault(func(r *http.Request) Fault { return Fault{Delay: time.Hour} }))
	s.CreateRepo(t, "app")
	hc := &http.Client{Timeout: 200 * time.Millisecond}
	_, err := hc.Get(s.HTTPURL("app") + "/info/refs?service=git-upload-pack")
	require.Error(t, err, "the request is held past the client's timeout")

	// A request still held when the test ends must not hold up Cleanup.
	go func() {
		resp, err := http.Get(s.HTTPURL("app") + "/info/refs?service=git-upload-pack")
		if err == nil {
			resp.Body.Close()
		}
	}()
}

func TestSSHBlockingHookStopsWithServer(t *testing.T) {
	t.Parallel()
	var push *exec.Cmd
	drained := make(chan struct{})
	t.Cleanup(func() {
		// Registered before New, so it runs after the Server stopped: the
		// push fails rather than waits for the hook.
		if push == nil || push.Process == nil {
			return // failed before the push started
		}
		<-drained
		require.Error(t, push.Wait())
	})
	s := New(t)
	s.CreateRepo(t, "app")
	s.Commit(t, "app", "main", map[string]string{"a": "a"}, "a")
	s.InstallHook(t, "app", "pre-receive", "echo hook started >&2\nexec sleep 3600\n")
	c := newClient(t).withSSH(s.ClientKey(), s.KnownHosts())
	c.mustGit("", "clone", "--quiet", s.SSHURL("app"), "work")
	c.mustGit("work", "commit", "--quiet", "--allow-empty", "-m", "x")

	push = exec.Command("git", "push", "origin", "main")
	push.Dir = filepath.Join(c.dir, "work")
	push.Env = c.env
	stderr, err := push.StderrPipe()
	require.NoError(t, err)
	if err := push.Start(); err != nil {
		push = nil
		t.Fatal(err)
	}
	// Return once the hook runs; the pipe is drained so git never blocks.
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.Contains(sc.Text(), "hook started") {
	}
	go func() {
		defer close(drained)
		_, _ = io.Copy(io.Discard, stderr)
	}()
}
