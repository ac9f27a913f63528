package agenttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/gitops-resource/gitops-resource/internal/proc"
)

// waitTCP waits until addr accepts a connection.
func waitTCP(ctx context.Context, p *proc.Process, addr string) error {
	return proc.Poll(ctx, p.Name+" at "+addr, p, func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// stack is the processes of one agent, stopped in reverse start order.
type stack struct {
	dir   string // removed by stop
	procs []*proc.Process
}

func (s *stack) start(name, bin string, env []string, args ...string) (*proc.Process, error) {
	p, err := proc.Start(name, bin, s.dir, env, args...)
	if err != nil {
		return nil, err
	}
	s.procs = append(s.procs, p)
	return p, nil
}

func (s *stack) stop() error {
	var errs []error
	for i := len(s.procs) - 1; i >= 0; i-- {
		errs = append(errs, s.procs[i].Stop(5*time.Second))
	}
	if s.dir != "" {
		if err := os.RemoveAll(s.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", s.dir, err))
		}
	}
	return errors.Join(errs...)
}

// Listeners are the TCP addresses the agent's processes listen on, each as
// "<process> <address>".
func (s *stack) Listeners() ([]string, error) {
	var all []string
	for _, p := range s.procs {
		addrs, err := p.Listeners()
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			all = append(all, p.Name+" "+a)
		}
	}
	return all, nil
}

// rss sums the resident memory of the stack's processes.
func (s *stack) rss() int64 {
	var n int64
	for _, p := range s.procs {
		n += p.RSS()
	}
	return n
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
