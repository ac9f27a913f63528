package gittest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// Deleted, as the content of a path in the files given to Commit or
// SeedHistory, removes that path from the tree.
const Deleted = "\x00gittest:deleted\x00"

// Commit is one commit as Log reports it.
type Commit struct {
	SHA     string
	Parents []string
	// Message is the full commit message without trailing newlines.
	Message string
	// Author and Committer are "Name <email>".
	Author    string
	Committer string
}

// CreateRepo makes an empty bare repository name ("name" and "name.git" are
// the same; "org/name" nests) with default branch main, served over HTTP
// (push enabled) and SSH. upload-pack runs with git's default settings, as on
// a stock self-hosted server: a commit can be fetched by SHA only when it is
// a ref's tip, unless the Server was made WithReachableSHA1InWant.
func (s *Server) CreateRepo(t testing.TB, name string) {
	t.Helper()
	if err := s.CreateRepoErr(name); err != nil {
		t.Fatalf("gittest: %v", err)
	}
}

// CreateRepoErr is CreateRepo returning the error instead of failing a test.
func (s *Server) CreateRepoErr(name string) error {
	dir := s.RepoPath(name)
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("create repo %s: already exists", repoName(name))
	}
	if _, err := s.run(nil, s.root, "init", "--quiet", "--bare", "--initial-branch=main", dir); err != nil {
		return fmt.Errorf("create repo %s: %w", repoName(name), err)
	}
	settings := [][2]string{{"http.receivepack", "true"}}
	if s.cfg.reachableSHA1InWant {
		settings = append(settings, [2]string{"uploadpack.allowReachableSHA1InWant", "true"})
	}
	for _, kv := range settings {
		if _, err := s.run(nil, dir, "config", kv[0], kv[1]); err != nil {
			return fmt.Errorf("create repo %s: %w", repoName(name), err)
		}
	}
	return nil
}

// Git runs git with args in the bare repository and returns its stdout
// without trailing newlines; it fails the test when git fails.
func (s *Server) Git(t testing.TB, repo string, args ...string) string {
	t.Helper()
	out, err := s.GitErr(repo, args...)
	if err != nil {
		t.Fatalf("gittest: %v", err)
	}
	return out
}

// GitErr is Git for commands that are expected to fail: it returns the error
// (with git's stderr) instead of failing the test. It is safe to call from
// any goroutine.
func (s *Server) GitErr(repo string, args ...string) (string, error) {
	out, err := s.run(nil, s.repoDir(repo), args...)
	return strings.TrimRight(out, "\n"), err
}

// Commit makes one commit on branch (created, with no parent, if missing)
// whose tree is the branch tip's with files set (path → content; Deleted
// removes a path), and returns its sha. Its parent is the current tip.
func (s *Server) Commit(t testing.TB, repo, branch string, files map[string]string, message string) string {
	t.Helper()
	sha, err := s.CommitErr(repo, branch, files, message)
	if err != nil {
		t.Fatalf("gittest: %v", err)
	}
	return sha
}

// CommitErr is Commit returning the error instead of failing a test.
func (s *Server) CommitErr(repo, branch string, files map[string]string, message string) (string, error) {
	sha, err := s.fastImport(repo, branch, 1, time.Now(), func(int) (map[string]string, string) {
		return files, message
	})
	if err != nil {
		return "", fmt.Errorf("commit to %s %s: %w", repoName(repo), branch, err)
	}
	return sha, nil
}

// SeedHistory appends n commits to branch quickly, in one `git fast-import`
// run; commit i (0-based) sets files(i) (nil means an empty change) and has
// message "commit i". Committer dates are one second apart, ending now.
// It returns the new tip.
func (s *Server) SeedHistory(t testing.TB, repo, branch string, n int, files func(i int) map[string]string) string {
	t.Helper()
	start := time.Now().Add(-time.Duration(n) * time.Second)
	sha, err := s.fastImport(repo, branch, n, start, func(i int) (map[string]string, string) {
		var f map[string]string
		if files != nil {
			f = files(i)
		}
		return f, fmt.Sprintf("commit %d", i)
	})
	if err != nil {
		t.Fatalf("gittest: seed %d commits to %s %s: %v", n, repoName(repo), branch, err)
	}
	return sha
}

// fastImport appends n commits to branch with one fast-import stream and
// returns the new tip. Commit i is dated start+i seconds.
func (s *Server) fastImport(repo, branch string, n int, start time.Time, commit func(i int) (map[string]string, string)) (string, error) {
	if n <= 0 {
		return s.tip(repo, branch), nil
	}
	dir := s.repoDir(repo)
	ref := branchRef(branch)
	parent := s.tip(repo, branch)
	f, err := os.CreateTemp(s.home, "marks-")
	if err != nil {
		return "", err
	}
	f.Close()
	marks := f.Name()
	defer os.Remove(marks)

	cmd := exec.Command(s.git, "fast-import", "--quiet", "--done", "--export-marks="+marks)
	cmd.Dir = dir
	// glibc's default malloc trimming makes fast-import spend seconds in
	// brk() when it builds on existing history; padding the heap avoids it.
	cmd.Env = s.gitEnv("MALLOC_TOP_PAD_=67108864")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	w := bufio.NewWriterSize(stdin, 1<<16)
	werr := writeStream(w, ref, parent, n, start, commit)
	if werr == nil {
		werr = w.Flush()
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		return "", fmt.Errorf("git fast-import: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	if werr != nil {
		return "", fmt.Errorf("git fast-import: %v", werr)
	}
	b, err := os.ReadFile(marks)
	if err != nil {
		return "", err
	}
	// The marks file lists ":mark sha" lines; mark n is the last commit.
	want := fmt.Sprintf(":%d ", n)
	for _, line := range strings.Split(string(b), "\n") {
		if sha, ok := strings.CutPrefix(line, want); ok {
			return sha, nil
		}
	}
	return "", fmt.Errorf("git fast-import: no mark for the last commit")
}

func writeStream(w io.Writer, ref, parent string, n int, start time.Time, commit func(i int) (map[string]string, string)) error {
	_, tz := start.Zone()
	zone := fmt.Sprintf("%+03d%02d", tz/3600, abs(tz%3600)/60)
	for i := 0; i < n; i++ {
		files, msg := commit(i)
		when := fmt.Sprintf("%d %s", start.Unix()+int64(i), zone)
		fmt.Fprintf(w, "commit %s\nmark :%d\n", ref, i+1)
		fmt.Fprintf(w, "author %s <%s> %s\n", AuthorName, AuthorEmail, when)
		fmt.Fprintf(w, "committer %s <%s> %s\n", AuthorName, AuthorEmail, when)
		fmt.Fprintf(w, "data %d\n%s\n", len(msg), msg)
		switch {
		case i > 0:
			fmt.Fprintf(w, "from :%d\n", i)
		case parent != "":
			fmt.Fprintf(w, "from %s\n", parent)
		}
		paths := make([]string, 0, len(files))
		for p := range files {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			if p == "" || strings.HasPrefix(p, "/") {
				return fmt.Errorf("bad path %q: paths are relative, with / as separator", p)
			}
			content := files[p]
			if content == Deleted {
				fmt.Fprintf(w, "D %s\n", quotePath(p))
				continue
			}
			fmt.Fprintf(w, "M 100644 inline %s\ndata %d\n%s\n", quotePath(p), len(content), content)
		}
		if _, err := fmt.Fprintln(w); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(w, "done")
	return err
}

// quotePath quotes a path C-style, as fast-import reads it.
func quotePath(p string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\%03o`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// Tip is the sha branch points at, or "" when the branch does not exist.
func (s *Server) Tip(t testing.TB, repo, branch string) string {
	t.Helper()
	s.mustExist(t, repo)
	return s.tip(repo, branch)
}

func (s *Server) tip(repo, branch string) string {
	out, err := s.GitErr(repo, "rev-parse", "--verify", "--quiet", branchRef(branch)+"^{commit}")
	if err != nil {
		return ""
	}
	return out
}

// ReadFile is the content of path at ref (a branch, tag or sha), and whether
// it exists there.
func (s *Server) ReadFile(t testing.TB, repo, ref, path string) (string, bool) {
	t.Helper()
	s.mustExist(t, repo)
	sha, err := s.GitErr(repo, "rev-parse", "--verify", "--quiet", ref+":"+path)
	if err != nil || sha == "" {
		return "", false
	}
	if typ := s.Git(t, repo, "cat-file", "-t", sha); typ != "blob" {
		return "", false
	}
	out, err := s.run(nil, s.repoDir(repo), "cat-file", "blob", sha)
	if err != nil {
		t.Fatalf("gittest: read %s:%s: %v", ref, path, err)
	}
	return out, true
}

// Log lists the commits reachable from branch, newest first (git log order);
// empty when the branch does not exist.
func (s *Server) Log(t testing.TB, repo, branch string) []Commit {
	t.Helper()
	s.mustExist(t, repo)
	if s.tip(repo, branch) == "" {
		return nil
	}
	out := s.Git(t, repo, "log", "--format=%H%x00%P%x00%an <%ae>%x00%cn <%ce>%x00%B%x1e", branchRef(branch), "--")
	var log []Commit
	for _, rec := range strings.Split(out, "\x1e") {
		rec = strings.TrimLeft(rec, "\n")
		if rec == "" {
			continue
		}
		f := strings.SplitN(rec, "\x00", 5)
		if len(f) != 5 {
			t.Fatalf("gittest: log %s: unexpected record %q", branch, rec)
		}
		log = append(log, Commit{
			SHA:       f[0],
			Parents:   strings.Fields(f[1]),
			Author:    f[2],
			Committer: f[3],
			Message:   strings.TrimRight(f[4], "\n"),
		})
	}
	return log
}

// Tags maps every tag of the repository to the commit it peels to.
func (s *Server) Tags(t testing.TB, repo string) map[string]string {
	t.Helper()
	return s.refs(t, repo, "refs/tags/")
}

// Branches maps every branch of the repository to its tip.
func (s *Server) Branches(t testing.TB, repo string) map[string]string {
	t.Helper()
	return s.refs(t, repo, "refs/heads/")
}

func (s *Server) refs(t testing.TB, repo, prefix string) map[string]string {
	t.Helper()
	s.mustExist(t, repo)
	out := s.Git(t, repo, "for-each-ref", "--format=%(refname)", prefix)
	m := map[string]string{}
	for _, ref := range strings.Fields(out) {
		m[strings.TrimPrefix(ref, prefix)] = s.Git(t, repo, "rev-parse", "--verify", ref+"^{commit}")
	}
	return m
}

// Tag creates tag name on rev: annotated with message, or lightweight when
// message is "". It returns the commit the tag peels to.
func (s *Server) Tag(t testing.TB, repo, name, rev, message string) string {
	t.Helper()
	args := []string{"tag", name, rev}
	if message != "" {
		args = []string{"tag", "-a", "-m", message, name, rev}
	}
	s.Git(t, repo, args...)
	return s.Git(t, repo, "rev-parse", "--verify", "refs/tags/"+name+"^{commit}")
}

// InstallHook installs script as the git hook name (e.g. "pre-receive",
// "update", "post-receive") of the bare repository. A script without "#!"
// runs with /bin/sh. Hooks run with the pushing client's output as stderr, so
// what they print reaches the client as "remote: ..." lines. Stopping the
// Server kills hooks started over SSH; over HTTP a hook that blocks holds up
// the Server's shutdown until it exits, so test timeouts with Fault.Delay.
func (s *Server) InstallHook(t testing.TB, repo, name, script string) {
	t.Helper()
	s.mustExist(t, repo)
	if !strings.HasPrefix(script, "#!") {
		script = "#!/bin/sh\n" + script
	}
	hooks := filepath.Join(s.repoDir(repo), "hooks")
	if err := os.MkdirAll(hooks, 0o755); err != nil {
		t.Fatalf("gittest: install hook: %v", err)
	}
	// Write then rename, so git never runs a half-written file.
	tmp, err := os.CreateTemp(hooks, "."+name+"-*")
	if err != nil {
		t.Fatalf("gittest: install hook: %v", err)
	}
	_, err = tmp.WriteString(script)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o755)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(hooks, name))
	}
	if err != nil {
		os.Remove(tmp.Name())
		t.Fatalf("gittest: install hook %s: %v", name, err)
	}
}

// repoDir is the bare repository's directory.
func (s *Server) repoDir(repo string) string { return s.RepoPath(repo) }

func (s *Server) mustExist(t testing.TB, repo string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(s.repoDir(repo), "HEAD")); err != nil {
		t.Fatalf("gittest: repository %s does not exist (CreateRepo first)", repoName(repo))
	}
}

// branchRef turns "main" into "refs/heads/main"; a full ref is kept.
func branchRef(branch string) string {
	if strings.HasPrefix(branch, "refs/") {
		return branch
	}
	return "refs/heads/" + branch
}

// run runs git in dir and returns its stdout.
func (s *Server) run(stdin io.Reader, dir string, args ...string) (string, error) {
	cmd := exec.Command(s.git, args...)
	cmd.Dir = dir
	cmd.Env = s.gitEnv()
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		var exit *exec.ExitError
		if errors.As(err, &exit) && msg != "" {
			return stdout.String(), fmt.Errorf("git %s: %s", strings.Join(args, " "), msg)
		}
		return stdout.String(), fmt.Errorf("git %s: %v %s", strings.Join(args, " "), err, msg)
	}
	return stdout.String(), nil
}
