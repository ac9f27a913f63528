package concourse

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gitops-resource/gitops-resource/internal/image"
	"github.com/gitops-resource/gitops-resource/internal/proc"
)

// CheckRuntime says what the machine lacks to run the stack: root, Debian
// packages, the concourse build; nil when nothing.
func CheckRuntime() error {
	if os.Geteuid() != 0 {
		return errors.New("the Concourse stack needs root (network namespace, containerd, mounts)")
	}
	var lack []string
	for _, c := range []string{"containerd", "runc", "iptables", "nsenter", "setpriv", "curl", "git"} {
		if _, err := exec.LookPath(c); err != nil {
			lack = append(lack, c)
		}
	}
	for _, f := range []string{"/usr/lib/cni/bridge", "/bin/busybox"} {
		if _, err := os.Stat(f); err != nil {
			lack = append(lack, f)
		}
	}
	if pg, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres"); len(pg) == 0 {
		lack = append(lack, "postgres")
	}
	if len(lack) > 0 {
		return fmt.Errorf("the Concourse stack lacks %s: apt-get install containerd runc iptables containernetworking-plugins busybox-static postgresql curl git", strings.Join(lack, ", "))
	}
	if _, err := Bin(false); err != nil {
		return fmt.Errorf("concourse is not built: run `nice -n 10 hack/concourse-build.sh` (~11 min cold)\n%w", err)
	}
	return nil
}

// Stack is a Concourse started by stack.sh up. Close tears it down.
type Stack struct {
	script, work string
	env          map[string]string
	lock         *os.File
	log          io.Writer
	stops        []func() // forwarders, stopped by Close
}

// LockMachine takes the machine's stack lock, waiting for whoever holds it:
// one Concourse stack runs at a time (Concourse fixes the containerd
// socket), and a test whose load would starve a running stack (the image
// build's cold compiles) takes turns with it. Closing the file releases it.
func LockMachine(log io.Writer) (*os.File, error) {
	lock, err := os.OpenFile("/run/gitops-concourse-e2e.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		fmt.Fprintln(log, "another process runs a Concourse stack or holds its lock; waiting for it")
		if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
			lock.Close()
			return nil, fmt.Errorf("lock the Concourse stack: %w", err)
		}
	}
	return lock, nil
}

// Start runs stack.sh up in a fresh work dir, after taking the machine's
// stack lock (Concourse fixes the containerd socket: one stack per
// machine), and logs its progress to log. On error nothing is left up.
func Start(ctx context.Context, log io.Writer) (_ *Stack, err error) {
	lock, err := LockMachine(log)
	if err != nil {
		return nil, err
	}
	// Not a temp dir removed by Go: stack.sh down removes it after
	// unmounting what the worker mounted under it, and postgres (another
	// user) must reach it.
	work, err := os.MkdirTemp("", "gitops-concourse-e2e-")
	if err != nil {
		lock.Close()
		return nil, err
	}
	s := &Stack{script: filepath.Join(Root(), "e2e", "concourse", "stack.sh"), work: work, env: map[string]string{}, lock: lock, log: log}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Close())
		}
	}()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, s.script, "up", work)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return s, fmt.Errorf("stack.sh up: %w\n%s%s", err, stderr.String(), s.Logs("web", 30))
	}
	fmt.Fprintln(log, strings.TrimSpace(stderr.String()))
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			s.env[k] = v
		}
	}
	for _, k := range []string{"NETNS", "REGISTRY", "GATEWAY", "FLY"} {
		if s.env[k] == "" {
			return s, fmt.Errorf("stack.sh up printed no %s:\n%s", k, stdout.String())
		}
	}
	return s, nil
}

// Close stops the forwarders, then the stack (processes, containers,
// mounts, namespace, work dir), and releases the lock.
func (s *Stack) Close() error {
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
	s.stops = nil
	var err error
	if out, downErr := exec.Command(s.script, "down", s.work).CombinedOutput(); downErr != nil {
		err = fmt.Errorf("stack.sh down: %w\n%s", downErr, out)
	}
	s.lock.Close()
	return err
}

// Registry is the stack's registry (host:port, plain HTTP), reachable from
// inside the namespace.
func (s *Stack) Registry() string { return s.env["REGISTRY"] }

// Fly is the path of the fly binary.
func (s *Stack) Fly() string { return s.env["FLY"] }

// Logs is the last n lines of the log of a stack component (web, worker).
func (s *Stack) Logs(name string, n int) string {
	b, _ := os.ReadFile(filepath.Join(s.work, "logs", name+".log"))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Run runs args inside the stack's network namespace and returns stdout
// and stderr together.
func (s *Stack) Run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.script, append([]string{"exec", s.work}, args...)...)
	cmd.Dir = s.work
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// RunFly runs fly against the stack's web, logged in as test, for at most
// three minutes; its error describes the namespace's network.
func (s *Stack) RunFly(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	out, err := s.Run(ctx, append([]string{s.Fly(), "-t", "e2e"}, args...)...)
	if err != nil {
		return out, fmt.Errorf("fly %s: %w\n%s\n%s", strings.Join(args, " "), err, out, s.network())
	}
	return out, nil
}

// network describes the namespace's network (addresses, routes, neighbours,
// listeners, firewall), for a failure that looks like a network one.
func (s *Stack) network() string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var b strings.Builder
	for _, cmd := range [][]string{{"ip", "-br", "addr"}, {"ip", "route"}, {"ip", "neigh"}, {"ss", "-ltn"}, {"iptables-save"}} {
		out, err := s.Run(ctx, cmd...)
		fmt.Fprintf(&b, "── %s (in the stack's namespace; err %v):\n%s\n", strings.Join(cmd, " "), err, out)
	}
	return b.String()
}

// Expose makes target (host:port in this process's namespace) reachable
// from the stack's containers at GATEWAY:<port>, and returns that address,
// until Close.
func (s *Stack) Expose(target string) (string, error) {
	ln, err := listenIn(s.env["NETNS"], net.JoinHostPort(s.env["GATEWAY"], "0"))
	if err != nil {
		return "", fmt.Errorf("expose %s in the stack: %w", target, err)
	}
	s.stops = append(s.stops, forward(ln, func() (net.Conn, error) { return net.Dial("tcp", target) }))
	return ln.Addr().String(), nil
}

// ExposeWeb makes Concourse's web reachable on this machine at
// 127.0.0.1:8080 (another port when that one is taken), until Close, and
// returns its URL.
func (s *Stack) ExposeWeb() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:8080")
	if err != nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return "", fmt.Errorf("expose Concourse's web: %w", err)
	}
	const web = "127.0.0.1:8080" // where web listens inside the namespace
	s.stops = append(s.stops, forward(ln, func() (net.Conn, error) { return dialIn(s.env["NETNS"], web) }))
	return "http://" + ln.Addr().String(), nil
}

// SetPipeline validates the pipeline file (--strict) with the vars file,
// sets it as pipeline, unpauses it and checks each of resources. A failing
// check leaves a triggered build pending forever: checking first fails
// here, with the check's log, when an image or a source is broken.
func (s *Stack) SetPipeline(ctx context.Context, pipeline, pipelineFile, varsFile string, resources []string) error {
	steps := [][]string{
		{"validate-pipeline", "--strict", "-c", pipelineFile, "-l", varsFile},
		{"set-pipeline", "-n", "-p", pipeline, "-c", pipelineFile, "-l", varsFile},
		{"unpause-pipeline", "-p", pipeline},
	}
	for _, r := range resources {
		steps = append(steps, []string{"check-resource", "-r", pipeline + "/" + r})
	}
	for _, args := range steps {
		if _, err := s.RunFly(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// RegistryTransport carries requests to the stack's registry: it dials
// inside the namespace, where the registry listens.
func (s *Stack) RegistryTransport() http.RoundTripper {
	dial := func(_ context.Context, _, addr string) (net.Conn, error) { return dialIn(s.env["NETNS"], addr) }
	return &http.Transport{DialContext: dial}
}

// Push pushes img to ref in the stack's registry.
func (s *Stack) Push(ctx context.Context, img v1.Image, ref string) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := remote.Write(r, img, remote.WithContext(ctx), remote.WithTransport(s.RegistryTransport())); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

// PushImage builds this tree's image and pushes it to ref in the stack's
// registry: internal/image.Make, as `make image PUSH=ref` runs it, so
// Concourse runs what users build (both platforms; the worker pulls
// linux/amd64). The builder's story goes to the stack's log.
func (s *Stack) PushImage(ctx context.Context, ref string) error {
	fmt.Fprintf(s.log, "make image PUSH=%s:\n", ref)
	if _, err := image.Make(ctx, image.Options{Root: Root(), Push: []string{ref}, Transport: s.RegistryTransport(), Log: s.log}); err != nil {
		return fmt.Errorf("make the image: %w", err)
	}
	return nil
}

// Serve serves h inside the namespace at GATEWAY:<port>, where containers
// reach it, until Close, and returns its URL.
func (s *Stack) Serve(h http.Handler) (string, error) {
	ln, err := listenIn(s.env["NETNS"], net.JoinHostPort(s.env["GATEWAY"], "0"))
	if err != nil {
		return "", fmt.Errorf("serve in the stack: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Minute}
	go srv.Serve(ln)
	s.stops = append(s.stops, func() { srv.Close() })
	return "http://" + ln.Addr().String(), nil
}

// WatchJob waits for the first build of job (pipeline/job), started by the
// job's triggers, and watches it to its end, at most timeout in all. It
// returns the build's output, and an error unless the build succeeded.
func (s *Stack) WatchJob(ctx context.Context, job string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	began := time.Now()
	var build string
	err := proc.Poll(ctx, "a build of "+job, nil, func(ctx context.Context) error {
		out, err := s.Run(ctx, s.Fly(), "-t", "e2e", "builds", "-j", job, "--json")
		if err != nil {
			return fmt.Errorf("fly builds -j %s: %w: %s", job, err, out)
		}
		var builds []struct{ Name string }
		if err := json.Unmarshal([]byte(out), &builds); err != nil {
			return fmt.Errorf("fly builds -j %s: %w: %s", job, err, out)
		}
		if len(builds) == 0 {
			return errors.New("no build yet")
		}
		build = builds[len(builds)-1].Name // newest first
		return nil
	})
	if err != nil {
		return "", err
	}
	args := []string{"watch", "-j", job, "-b", build}
	out, err := s.Run(ctx, append([]string{s.Fly(), "-t", "e2e"}, args...)...)
	fmt.Fprintf(s.log, "── fly %s:\n%s\n", strings.Join(args, " "), out)
	// Under load the worker can lose a step's process before web attaches
	// to it (worker.log: attach.failed, process does not exist; the step
	// errors with "unexpected end of JSON input": concourse/concourse#8676).
	// Such a build is rerun, at most twice, and the log says so.
	for reruns := 0; err != nil && reruns < 2 && strings.Contains(out, "unexpected end of JSON input"); reruns++ {
		fmt.Fprintf(s.log, "%s #%s: Concourse lost a step's output (concourse/concourse#8676): rerunning it\n", job, build)
		args = []string{"rerun-build", "-j", job, "-b", build, "-w"}
		out, err = s.Run(ctx, append([]string{s.Fly(), "-t", "e2e"}, args...)...)
		fmt.Fprintf(s.log, "── fly %s:\n%s\n", strings.Join(args, " "), out)
	}
	if err != nil {
		return out, fmt.Errorf("build %s of %s did not succeed: %w", build, job, err)
	}
	fmt.Fprintf(s.log, "%s #%s green %s after it was awaited\n", job, build, time.Since(began).Round(100*time.Millisecond))
	return out, nil
}
