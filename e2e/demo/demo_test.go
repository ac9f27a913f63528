// Package demo runs the main job of gitops-resource end to end on embedded
// servers (a git server over HTTP on loopback), driving the built binaries as
// Concourse does and printing each step: `make demo`.
package demo

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
)

func TestMain(m *testing.M) { rt.Main(m) }

func show(t *testing.T, step string, req any, res rt.Result) {
	t.Helper()
	body, _ := json.MarshalIndent(req, "  ", "  ")
	t.Logf("── %s\n  request: %s\n  stderr:\n%s  stdout: %s", step, body, indent(res.Stderr), res.Stdout)
}

func indent(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		b.WriteString("    " + line)
	}
	return b.String()
}

// TestDemo is the release job: check the version, bump it, fetch it.
func TestDemo(t *testing.T) {
	srv := gittest.New(t)
	srv.CreateRepo(t, "app")
	srv.Commit(t, "app", "version", map[string]string{"version": "1.4.2"}, "start at 1.4.2")
	env := rt.Env("release", "1")
	src := map[string]any{"kind": "semver", "uri": srv.HTTPURL("app"), "branch": "version", "file": "version"}

	req := map[string]any{"source": src}
	res := rt.Run(t, "check", "", req, nil)
	show(t, "check version", req, res)
	res.OK(t, nil)

	req = map[string]any{"source": src, "params": map[string]any{"bump": "minor", "pre": "rc"}}
	res = rt.Run(t, "out", t.TempDir(), req, env)
	show(t, "put version (bump: minor, pre: rc)", req, res)
	var out struct {
		Version map[string]string `json:"version"`
	}
	res.OK(t, &out)
	require.Equal(t, "1.5.0-rc.1", out.Version["number"])

	req = map[string]any{"source": src, "version": out.Version}
	res = rt.Run(t, "in", t.TempDir(), req, env)
	show(t, "get version", req, res)
	res.OK(t, nil)
	t.Logf("── the commit on the version branch:\n%s", srv.Git(t, "app", "log", "-1", "--format=%H%n%an <%ae>%n%n%B", "version"))
}
