package gittest

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

func (s *Server) startSSH() error {
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	if s.hostKey, err = ssh.NewSignerFromKey(hostPriv); err != nil {
		return err
	}
	_, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	if s.clientKey, err = ssh.NewSignerFromKey(clientPriv); err != nil {
		return err
	}
	s.clientPriv = clientPriv
	s.authorized[string(s.clientKey.PublicKey().Marshal())] = true

	s.sshConfig = &ssh.ServerConfig{
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			s.mu.Lock()
			ok := s.authorized[string(key.Marshal())]
			s.mu.Unlock()
			if !ok {
				return nil, fmt.Errorf("key %s is not authorized", ssh.FingerprintSHA256(key))
			}
			return &ssh.Permissions{}, nil
		},
	}
	s.sshConfig.AddHostKey(s.hostKey)

	s.sshLn, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.wg.Add(1)
	go s.acceptSSH()
	return nil
}

func (s *Server) acceptSSH() {
	defer s.wg.Done()
	for {
		c, err := s.sshLn.Accept()
		if err != nil {
			return // listener closed
		}
		if !s.track(c) {
			c.Close()
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			defer c.Close()
			s.serveSSHConn(c)
		}()
	}
}

func (s *Server) serveSSHConn(c net.Conn) {
	// A client that never finishes the handshake must not hold up close.
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	sc, chans, reqs, err := ssh.NewServerConn(c, s.sshConfig)
	if err != nil {
		s.logf("ssh: handshake with %s: %v", c.RemoteAddr(), err)
		return
	}
	_ = c.SetDeadline(time.Time{})
	defer sc.Close()
	go ssh.DiscardRequests(reqs)

	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only session channels are served")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			s.logf("ssh: accept channel: %v", err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer ch.Close()
			s.serveSession(ch, chReqs)
		}()
	}
}

// serveSession answers env and exec requests on one session channel; it runs
// at most one git command and returns when it has exited.
func (s *Server) serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	var env []string
	for req := range reqs {
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			if err := ssh.Unmarshal(req.Payload, &kv); err != nil || kv.Name != "GIT_PROTOCOL" {
				_ = req.Reply(false, nil)
				continue
			}
			env = append(env, "GIT_PROTOCOL="+kv.Value)
			_ = req.Reply(true, nil)
		case "exec":
			var cmd struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &cmd); err != nil {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			go ssh.DiscardRequests(reqs)
			code := s.runGitCommand(ch, cmd.Command, env)
			_ = ch.CloseWrite()
			_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
			return
		default: // shell, pty-req, subsystem, ...
			s.logf("ssh: refused %q request", req.Type)
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		}
	}
}

// runGitCommand runs the git service named by an SSH exec command with its
// standard streams wired to ch, and returns its exit status. A command it
// refuses gets a message on stderr and status 128, as git itself would give.
func (s *Server) runGitCommand(ch ssh.Channel, command string, env []string) int {
	service, repo, err := parseExec(command)
	if err == nil {
		repo, err = s.resolveRepo(repo)
	}
	if err != nil {
		s.logf("ssh: refused %q: %v", command, err)
		fmt.Fprintf(ch.Stderr(), "fatal: gittest: %v\n", err)
		return 128
	}
	cmd := exec.CommandContext(s.ctx, s.git, service, repo)
	cmd.Dir = repo
	cmd.Env = s.gitEnv(env...)
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	killGroup(cmd) // stopping the Server also stops hooks git started
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		fmt.Fprintf(ch.Stderr(), "fatal: gittest: %v\n", err)
		return 128
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(ch.Stderr(), "fatal: gittest: %v\n", err)
		return 128
	}
	// Copy stdin ourselves: os/exec would wait for the copy to end, and a
	// client may keep its side open until it sees exit-status.
	go func() {
		_, _ = io.Copy(stdin, ch)
		stdin.Close()
	}()
	err = cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		return exit.ExitCode()
	default:
		s.logf("ssh: %s %s: %v", service, repo, err)
		return 128
	}
}

// parseExec splits an SSH exec command as git clients send it,
// `git-upload-pack '/repo.git'` (or `git upload-pack ...`, or
// git-receive-pack), into the git subcommand and the repository path.
func parseExec(command string) (service, repo string, err error) {
	rest := strings.TrimSpace(command)
	name, rest, _ := strings.Cut(rest, " ")
	if name == "git" {
		name, rest, _ = strings.Cut(strings.TrimLeft(rest, " "), " ")
		name = "git-" + name
	}
	switch name {
	case "git-upload-pack", "git-receive-pack":
	default:
		return "", "", fmt.Errorf("only git-upload-pack and git-receive-pack are served, not %q", command)
	}
	repo, err = unquoteShell(strings.TrimSpace(rest))
	if err != nil {
		return "", "", err
	}
	if repo == "" {
		return "", "", errors.New("no repository named")
	}
	return strings.TrimPrefix(name, "git-"), repo, nil
}

// unquoteShell undoes the quoting git applies to the path argument
// (sq_quote: the word in single quotes, a quote or ! in it closed, escaped
// with a backslash and reopened); an unquoted word is taken as it is.
func unquoteShell(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		switch c := s[i]; c {
		case '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return "", fmt.Errorf("unterminated quote in %q", s)
			}
			b.WriteString(s[i+1 : i+1+end])
			i += end + 2
		case '\\':
			if i+1 >= len(s) {
				return "", fmt.Errorf("trailing backslash in %q", s)
			}
			b.WriteByte(s[i+1])
			i += 2
		case ' ', '\t', '\n':
			return "", fmt.Errorf("more than one argument in %q", s)
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), nil
}

// resolveRepo maps the path a client asked for to a bare repository under
// the root. It refuses paths that leave the root and repositories that do
// not exist; "name" means "name.git" when only the latter exists.
func (s *Server) resolveRepo(p string) (string, error) {
	clean := path.Clean("/" + strings.TrimPrefix(p, "~"))
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." {
			return "", fmt.Errorf("repository path %q leaves the server root", p)
		}
	}
	rel := strings.TrimPrefix(clean, "/")
	if rel == "" {
		return "", fmt.Errorf("'%s' does not appear to be a git repository", p)
	}
	for _, cand := range []string{rel, rel + ".git"} {
		dir := filepath.Join(s.root, filepath.FromSlash(cand))
		if fi, err := os.Stat(filepath.Join(dir, "HEAD")); err == nil && fi.Mode().IsRegular() {
			return dir, nil
		}
	}
	return "", fmt.Errorf("'%s' does not appear to be a git repository", p)
}
