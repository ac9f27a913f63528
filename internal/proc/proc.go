package proc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gitops-resource/gitops-resource/pkg/retry"
)

// Process is one started executable.
type Process struct {
	Name string
	bin  string
	env  []string // added to this process's environment
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
	err  error         // exit status, valid after done
}

// Start starts bin with args in dir, with env added to this process's
// environment; stdout and stderr go to dir/<name>.log.
func Start(name, bin, dir string, env []string, args ...string) (*Process, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create log file for %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, bin: bin, env: env, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// Relaunch starts the same command again (after Stop), appending to its log.
func (p *Process) Relaunch() (*Process, error) {
	return Start(p.Name, p.bin, p.cmd.Dir, p.env, p.cmd.Args[1:]...)
}

// PID is the process's ID (and its process group's).
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Log is the path of its log file.
func (p *Process) Log() string { return p.log }

// Exited is nil while the process runs; after it ended, an error naming its
// exit status and the end of its log.
func (p *Process) Exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited (%v); last lines of %s:\n%s", p.Name, p.err, p.log, p.Tail(25))
	default:
		return nil
	}
}

// Tail returns the last n lines of the log, indented.
func (p *Process) Tail(n int) string {
	data, err := os.ReadFile(p.log)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(string(bytes.TrimRight(data, "\n")), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

// Stop sends SIGTERM to the process group, and SIGKILL when it has not
// exited after grace. It returns when the process is gone.
func (p *Process) Stop(grace time.Duration) error {
	pid := p.PID()
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := signalGroup(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop %s (pid %d): %w", p.Name, pid, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	if err := signalGroup(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %s (pid %d): %w", p.Name, pid, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.Name, pid)
	}
}

// RSS is the resident memory of the process in bytes (0 when unknown).
func (p *Process) RSS() int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID()) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1. The listeners
// are all held open until every port is chosen, so no port is returned
// twice; a port can still be taken by someone else before it is bound.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port on 127.0.0.1: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// PollInterval is how often Poll checks; no wait sleeps longer.
const PollInterval = 100 * time.Millisecond

// Poll calls check every PollInterval until it returns nil, returns an
// error marked retry.Permanent, p (if not nil) exits, or ctx ends. The error names what
// was awaited, the last check error, and the end of p's log.
func Poll(ctx context.Context, what string, p *Process, check func(context.Context) error) error {
	ticker := time.NewTicker(PollInterval)
	defer ticker.Stop()
	for {
		last := check(ctx)
		if last == nil {
			return nil
		}
		if retry.IsPermanent(last) {
			return last
		}
		if p != nil {
			if err := p.Exited(); err != nil {
				return fmt.Errorf("wait for %s: %w", what, err)
			}
		}
		select {
		case <-ctx.Done():
			err := fmt.Errorf("wait for %s: %w (last: %w)", what, context.Cause(ctx), last)
			if p != nil {
				err = fmt.Errorf("%w; last lines of the %s log:\n%s", err, p.Name, p.Tail(25))
			}
			return err
		case <-ticker.C:
		}
	}
}

// InCI reports whether the tests run in CI (CI=true), where a missing tool
// fails a test instead of skipping it.
func InCI() bool { return os.Getenv("CI") == "true" }

// FindUp looks for rel in the working dir and its parents.
func FindUp(rel string) (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("get working dir: %w", err)
	}
	for dir := wd; ; {
		path := filepath.Join(dir, rel)
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no %s in %s or its parents", rel, wd)
		}
		dir = parent
	}
}

// CachedBinDir asks a build script (hack/<script>, found in a parent of the
// working dir) with --check where its cache keeps the binaries: the last
// line it prints. The error says why when they are not built.
func CachedBinDir(ctx context.Context, script string, args ...string) (string, error) {
	path, err := FindUp(filepath.Join("hack", script))
	if err != nil {
		return "", err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", append([]string{path, "--check"}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	dir := lines[len(lines)-1]
	what := strings.Join(append([]string{path, "--check"}, args...), " ")
	if runErr != nil {
		why, _, _ := strings.Cut(strings.TrimSpace(stderr.String()), "\n")
		if why == "" && dir != "" {
			why = "nothing built in " + dir
		}
		if why == "" {
			return "", fmt.Errorf("%s: %w", what, runErr)
		}
		return "", fmt.Errorf("%s: %w: %s", what, runErr, why)
	}
	if dir == "" {
		return "", fmt.Errorf("%s printed no dir", what)
	}
	return dir, nil
}

// Listeners are the TCP addresses the process listens on ("127.0.0.1:8080",
// "[::]:9090"), read from /proc (Linux): for a test to check that what it
// started is reachable only where it should be.
func (p *Process) Listeners() ([]string, error) {
	dir := "/proc/" + strconv.Itoa(p.PID())
	fds, err := os.ReadDir(dir + "/fd")
	if err != nil {
		return nil, fmt.Errorf("listeners of %s: %w", p.Name, err)
	}
	sockets := map[string]bool{}
	for _, fd := range fds {
		if link, err := os.Readlink(dir + "/fd/" + fd.Name()); err == nil {
			if inode, ok := strings.CutPrefix(link, "socket:["); ok {
				sockets[strings.TrimSuffix(inode, "]")] = true
			}
		}
	}
	var addrs []string
	for _, table := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(dir + "/net/" + table)
		if err != nil {
			return nil, fmt.Errorf("listeners of %s: %w", p.Name, err)
		}
		for line := range strings.Lines(string(data)) {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" || !sockets[f[9]] { // 0A: LISTEN
				continue
			}
			if a, err := procNetAddr(f[1]); err == nil {
				addrs = append(addrs, a)
			}
		}
	}
	return addrs, nil
}

// procNetAddr decodes a /proc/net/tcp{,6} address: the IP as hex of
// native-endian (little-endian here) 32-bit words, then the port.
func procNetAddr(s string) (string, error) {
	hexIP, hexPort, ok := strings.Cut(s, ":")
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if !ok || err != nil || (len(hexIP) != 8 && len(hexIP) != 32) {
		return "", fmt.Errorf("bad address %q", s)
	}
	ip := make(net.IP, len(hexIP)/2)
	for w := 0; w < len(ip)/4; w++ {
		word, err := strconv.ParseUint(hexIP[w*8:w*8+8], 16, 32)
		if err != nil {
			return "", fmt.Errorf("bad address %q", s)
		}
		binary.LittleEndian.PutUint32(ip[w*4:], uint32(word))
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(int(port))), nil
}

// WaitHTTP polls (Poll) until url answers 200 OK, while p runs.
func WaitHTTP(ctx context.Context, p *Process, url string) error {
	return Poll(ctx, p.Name+" at "+url, p, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	})
}
