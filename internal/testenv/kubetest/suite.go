package kubetest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"testing"
)

// Suite shares one control plane among the tests of a package. The zero
// value is ready: TestMain calls Main, each test calls Env.
type Suite struct {
	env     *Env
	skip    error // why Env skips: binaries missing outside CI, or -short
	started bool
}

// errShort is why tests skip under go test -short.
var errShort = errors.New("the control plane is not started under -short")

// Main starts the control plane (reusing GITOPS_TEST_KUBECONFIG when set),
// runs the package's tests, stops it and exits with the tests' status. When
// the binaries are missing it fails at once in CI (CI=true), and elsewhere
// lets every test skip with the message saying how to build them. Under
// -short nothing starts and the tests skip.
func (s *Suite) Main(m *testing.M, opts ...Option) {
	os.Exit(s.run(m, opts))
}

func (s *Suite) run(m *testing.M, opts []Option) (code int) {
	s.started = true
	flag.Parse()
	if testing.Short() {
		s.skip = errShort
		return m.Run()
	}
	env, err := Start(context.Background(), opts...)
	switch {
	case errors.Is(err, ErrNoBinaries) && !inCI():
		s.skip = err
		return m.Run()
	case err != nil:
		fmt.Fprintf(os.Stderr, "kubetest: %v\n", err)
		return 1
	}
	s.env = env
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "kubetest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}()
	return m.Run()
}

// Env returns the suite's control plane, or skips t when Main could not
// start one for a reason that allows skipping.
func (s *Suite) Env(t testing.TB) *Env {
	t.Helper()
	switch {
	case s.env != nil:
		return s.env
	case s.skip != nil:
		t.Skipf("kubetest: %v", s.skip)
	case !s.started:
		t.Fatal("kubetest: Suite.Env called without Suite.Main: call it from TestMain")
	}
	t.Fatal("kubetest: no control plane")
	return nil
}

// New starts a control plane for t alone (or reuses GITOPS_TEST_KUBECONFIG)
// and stops it when t ends. Missing binaries skip t, or fail it in CI.
func New(t testing.TB, opts ...Option) *Env {
	t.Helper()
	env, err := Start(t.Context(), opts...)
	switch {
	case errors.Is(err, ErrNoBinaries) && !inCI():
		t.Skipf("kubetest: %v", err)
	case err != nil:
		t.Fatalf("kubetest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("kubetest: %v", err)
		}
	})
	return env
}
