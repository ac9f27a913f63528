package resourcetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Main runs the tests and then removes the binaries built for them. Call it
// from TestMain; a TestMain that does more calls Cleanup itself.
func Main(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// Cleanup removes the binaries built by Binaries, if any.
func Cleanup() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

// Binaries returns a dir holding check, in and out (one binary, hard-linked
// under three names) and cluster, which they start for kind cluster, as in
// the image.
func Binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "gitops-resource-bin-")
		if buildErr != nil {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		// One go build of both: the packages they share compile once.
		cmd := exec.Command("go", "build", "-o", binDir, "./check", "./cluster")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./check ./cluster: %v\n%s", err, out)
			return
		}
		for _, name := range []string{"in", "out"} {
			if buildErr = os.Link(filepath.Join(binDir, "check"), filepath.Join(binDir, name)); buildErr != nil {
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatalf("build the resource binaries: %v", buildErr)
	}
	return binDir
}

// Result is one run of a binary.
type Result struct {
	Stdout, Stderr string
	Code           int
	MaxRSS         int64 // peak resident memory in bytes: set by RunPeakRSS only
}

// Env is the Concourse build environment of a step.
func Env(job, build string) map[string]string {
	return map[string]string{
		"BUILD_ID":            "42",
		"BUILD_NAME":          build,
		"BUILD_JOB_NAME":      job,
		"BUILD_PIPELINE_NAME": "app",
		"BUILD_TEAM_NAME":     "main",
		"ATC_EXTERNAL_URL":    "https://ci.example.com",
	}
}

// tempDirs holds each running test's TMPDIR for the binaries it runs.
var tempDirs sync.Map // testing.TB -> string

// testTempDir is the TMPDIR of every run of one test: the runs of a test
// share what a step keeps there (semver's check cache, say), as the checks
// of one Concourse resource do, and tests never see each other's. A test
// server's URL is only unique while it runs: a port is reused by the next
// test, whose check must not find the last one's cache entry.
func testTempDir(t testing.TB) string {
	if dir, ok := tempDirs.Load(t); ok {
		return dir.(string)
	}
	dir := t.TempDir()
	tempDirs.Store(t, dir)
	t.Cleanup(func() { tempDirs.Delete(t) })
	return dir
}

// Run runs verb (check, in, out) with request on stdin and dir as its
// argument (ignored for check). HOME is a fresh empty dir, so a test can
// assert nothing was written there.
func Run(t testing.TB, verb, dir string, request any, env map[string]string) Result {
	t.Helper()
	return RunContext(context.Background(), t, verb, dir, request, env)
}

// RunContext is Run with a context that can stop the process.
func RunContext(ctx context.Context, t testing.TB, verb, dir string, request any, env map[string]string) Result {
	t.Helper()
	return RunCommand(ctx, t, []string{filepath.Join(Binaries(t), verb)}, dir, request, env)
}

// RunCommand is RunContext for another build of the binary: command ends
// with its path under the verb's name (check, in, out), and may start with
// an emulator (qemu-aarch64-static /tmp/arm64/check).
func RunCommand(ctx context.Context, t testing.TB, command []string, dir string, request any, env map[string]string) Result {
	t.Helper()
	verb := filepath.Base(command[len(command)-1])
	data, err := json.Marshal(request)
	if err != nil {
		t.Fatalf("encode request: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var args []string
	if verb != "check" {
		args = []string{dir}
	}
	cmd := exec.CommandContext(ctx, command[0], append(command[1:], args...)...)
	cmd.Stdin = bytes.NewReader(data)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	home := t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "TMPDIR=" + testTempDir(t)}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	err = cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}

	if exit, ok := err.(*exec.ExitError); ok {
		res.Code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s: %v", verb, err)
	}
	if entries, _ := os.ReadDir(home); len(entries) > 0 {
		t.Errorf("%s wrote to $HOME: %v", verb, entries)
	}
	return res
}

// OK fails the test unless the run succeeded, and decodes stdout into v.
func (r Result) OK(t testing.TB, v any) {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(r.Stdout), v); err != nil {
			t.Fatalf("stdout is not the JSON response: %v\nstdout: %s\nstderr: %s", err, r.Stdout, r.Stderr)
		}
	}
}

// Fails fails the test unless the run failed with a message containing
// each of want, and with nothing on stdout.
func (r Result) Fails(t testing.TB, want ...string) {
	t.Helper()
	if r.Code == 0 {
		t.Fatalf("expected failure, got success\nstdout: %s\nstderr: %s", r.Stdout, r.Stderr)
	}
	if strings.TrimSpace(r.Stdout) != "" {
		t.Errorf("a failed step printed on stdout: %s", r.Stdout)
	}
	for _, w := range want {
		if !strings.Contains(r.Stderr, w) {
			t.Errorf("stderr does not mention %q:\n%s", w, r.Stderr)
		}
	}
}

// NoSecrets fails the test if any secret appears in the run's output.
func (r Result) NoSecrets(t testing.TB, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
			line = strings.TrimSpace(line)
			if len(line) < 6 || strings.HasPrefix(line, "-----") {
				continue
			}
			if strings.Contains(r.Stdout, line) || strings.Contains(r.Stderr, line) {
				t.Errorf("secret %q leaked:\nstdout: %s\nstderr: %s", line[:6]+"…", r.Stdout, r.Stderr)
			}
		}
	}
}

// Response is what in and out print on stdout.
type Response struct {
	Version  map[string]string   `json:"version"`
	Metadata []map[string]string `json:"metadata"`
}

// Meta returns every value of the metadata field name, in order.
func (r Response) Meta(name string) []string {
	var out []string
	for _, m := range r.Metadata {
		if m["name"] == name {
			out = append(out, m["value"])
		}
	}
	return out
}

// Meta1 returns the first value of the metadata field name, or "".
func (r Response) Meta1(name string) string {
	if v := r.Meta(name); len(v) > 0 {
		return v[0]
	}
	return ""
}
