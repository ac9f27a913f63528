package semver_test

import (
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
)

// countingServer is a git server that counts the git requests it is sent
// (ref advertisements and pack exchanges, fetch and push alike), and among
// them the fetches (upload-pack exchanges: a pack was asked for).
type countingServer struct {
	*gittest.Server
	requests, fetches atomic.Int64
}

func newCountingServer(t *testing.T) *countingServer {
	t.Helper()
	c := &countingServer{}
	c.Server = gittest.New(t, gittest.WithHTTPFault(func(r *http.Request) gittest.Fault {
		c.requests.Add(1)
		if r.Method == http.MethodPost && gittest.Service(r) == "git-upload-pack" {
			c.fetches.Add(1)
		}
		return gittest.Fault{}
	}))
	return c
}

// TestInvalidConfigFailsBeforeAnyRequest runs check and out with a source or
// params git would refuse (a path, a branch, a tag, a timeout): each fails at
// once naming the field, the server saw no request at all, and the remote is
// unchanged.
func TestInvalidConfigFailsBeforeAnyRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		src    map[string]any
		params map[string]any
		want   []string
	}{
		{name: "file leaving the repository", src: map[string]any{"file": "../../evil"}, want: []string{"source.file", `".."`}},
		{name: "file in .git", src: map[string]any{"file": ".git/config"}, want: []string{"source.file", ".git"}},
		{name: "file .GIT in any case", src: map[string]any{"file": "a/.GIT/hooks/post-checkout"}, want: []string{"source.file", ".git"}},
		{name: "file NTFS short name of .git", src: map[string]any{"file": "GIT~1/config"}, want: []string{"source.file", ".git"}},
		{name: "file .git with trailing dots and spaces", src: map[string]any{"file": ".git. . /config"}, want: []string{"source.file", ".git"}},
		{name: "file .git with an HFS+ ignorable code point", src: map[string]any{"file": ".g\u200cit/config"}, want: []string{"source.file", ".git"}},
		{name: "file dot", src: map[string]any{"file": "."}, want: []string{"source.file", `"."`}},
		{name: "file absolute", src: map[string]any{"file": "/etc/version"}, want: []string{"source.file", "relative"}},
		{name: "file with an empty component", src: map[string]any{"file": "a//version"}, want: []string{"source.file", "empty"}},
		{name: "file with a trailing slash", src: map[string]any{"file": "version/"}, want: []string{"source.file", "empty"}},
		{name: "file with a backslash", src: map[string]any{"file": `a\version`}, want: []string{"source.file", "backslash"}},
		{name: "file with NUL", src: map[string]any{"file": "version\x00x"}, want: []string{"source.file", "NUL"}},

		{name: "branch with NUL", src: map[string]any{"branch": "version\x00x"}, want: []string{"source.branch", "not a valid branch name"}},
		{name: "branch with a space", src: map[string]any{"branch": "a b"}, want: []string{`source.branch "a b" is not a valid branch name`}},
		{name: "branch ~1", src: map[string]any{"branch": "~1"}, want: []string{`source.branch "~1"`}},
		{name: "branch .lock", src: map[string]any{"branch": "version.lock"}, want: []string{`source.branch "version.lock"`}},
		{name: "branch @{-1}", src: map[string]any{"branch": "@{-1}"}, want: []string{`source.branch "@{-1}"`}},
		{name: "branch with ..", src: map[string]any{"branch": "a..b"}, want: []string{`source.branch "a..b"`}},
		{name: "branch starting with -", src: map[string]any{"branch": "-x"}, want: []string{`source.branch "-x"`}},
		{name: "branch HEAD", src: map[string]any{"branch": "HEAD"}, want: []string{`source.branch "HEAD"`}},

		{name: "tag_prefix with ..", src: map[string]any{"driver": "tags", "file": nil, "tag_prefix": "v.."}, want: []string{"source.tag_prefix", `"v..0.0.0"`}},
		{name: "tag_prefix component starting with a dot", src: map[string]any{"driver": "tags", "file": nil, "tag_prefix": "api/.v"}, want: []string{"source.tag_prefix"}},
		{name: "tag_prefix with a space", src: map[string]any{"driver": "tags", "file": nil, "tag_prefix": "release v"}, want: []string{"source.tag_prefix"}},

		{name: "timeout negative number", src: map[string]any{"timeout": -5}, want: []string{"source.timeout", "greater than zero"}},
		{name: "timeout zero", src: map[string]any{"timeout": 0}, want: []string{"source.timeout", "greater than zero"}},
		{name: "timeout huge number", src: map[string]any{"timeout": 1e300}, want: []string{"source.timeout", "at most 24h"}},
		{name: "timeout NaN", src: map[string]any{"timeout": "NaN"}, want: []string{"source.timeout", "not a duration"}},
		{name: "timeout infinite", src: map[string]any{"timeout": "+Inf"}, want: []string{"source.timeout", "at most 24h"}},
		{name: "timeout negative string", src: map[string]any{"timeout": "-5s"}, want: []string{"source.timeout", "greater than zero"}},
		{name: "timeout huge string", src: map[string]any{"timeout": "2000h"}, want: []string{"source.timeout", "at most 24h"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newCountingServer(t)
			srv.CreateRepo(t, "app")
			tip := srv.Commit(t, "app", "version", map[string]string{"version": "1.0.0"}, "seed")
			srv.Tag(t, "app", "v1.0.0", tip, "1.0.0")
			src := source(map[string]any{"uri": srv.HTTPURL("app")})
			for k, v := range tt.src {
				if v == nil {
					delete(src, k)
				} else {
					src[k] = v
				}
			}
			for _, verb := range []string{"check", "out"} {
				res := rt.Run(t, verb, t.TempDir(), map[string]any{"source": src, "params": map[string]any{"bump": "patch"}}, rt.Env("j", "1"))
				res.Fails(t, tt.want...)
				require.NotContains(t, res.Stderr, "attempt", "a config error is never retried")
			}
			require.Zero(t, srv.requests.Load(), "no request reached the git server")
			require.Equal(t, tip, srv.Tip(t, "app", "version"), "the branch is unchanged")
			require.Equal(t, map[string]string{"v1.0.0": tip}, srv.Tags(t, "app"), "no tag was made")
		})
	}
}

// TestVersionThatMakesAnInvalidTagFailsBeforeAnyRequest sets (params.file)
// a valid semantic version that is not a valid tag name.
func TestVersionThatMakesAnInvalidTagFailsBeforeAnyRequest(t *testing.T) {
	t.Parallel()
	srv := newCountingServer(t)
	srv.CreateRepo(t, "app")
	tip := srv.Commit(t, "app", "main", map[string]string{"README": "x"}, "seed")
	build := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(build, "v"), []byte("1.0.0-rc.lock\n"), 0o644))
	src := map[string]any{"kind": "semver", "driver": "tags", "uri": srv.HTTPURL("app"), "branch": "main"}
	res := rt.Run(t, "out", build, map[string]any{"source": src, "params": map[string]any{"file": "v"}}, nil)
	res.Fails(t, "params.file", `"v1.0.0-rc.lock"`, "not a valid tag name")
	require.Zero(t, srv.requests.Load())
	require.Equal(t, tip, srv.Tip(t, "app", "main"))
	require.Empty(t, srv.Tags(t, "app"))
}

// TestCredentialsInAnUnparseableURIAreNeverPrinted: a password with the
// characters cloud-generated ones have (/, #, %, space, @) makes source.uri
// unparseable; the error names source.uri and shows the URI with
// "[redacted]" for the credentials, and no fragment of the password is
// printed by any verb.
func TestCredentialsInAnUnparseableURIAreNeverPrinted(t *testing.T) {
	t.Parallel()
	srv := newCountingServer(t)
	srv.CreateRepo(t, "app")
	tip := srv.Commit(t, "app", "version", map[string]string{"version": "1.0.0"}, "seed")
	addr := srv.HTTPAddr()
	tests := []struct {
		uri, password, want string
	}{
		{"https://user:p/ss#w rd@host/x.git", "p/ss#w rd", `source.uri: "https://[redacted]@host/x.git" is not a git URL`},
		{"http://ci:Zq8/Lm#3 vB@tP9@" + addr + "/app.git", "Zq8/Lm#3 vB@tP9", `source.uri: "http://[redacted]@` + addr + `/app.git" is not a git URL`},
		{"http://ci:Qm4%zz8r@" + addr + "/app.git", "Qm4%zz8r", `source.uri: "http://[redacted]@` + addr + `/app.git" is not a git URL`},
		{"ssh://deploy:Wx7 K/9s#q@" + addr + "/app.git", "Wx7 K/9s#q", `source.uri: "ssh://[redacted]@` + addr + `/app.git" is not a git URL`},
		// scp-like: go-git takes "deploy:Rv5 q/8h" for the ssh user.
		{"deploy:Rv5 q/8h@127.0.0.1:org/app.git", "Rv5 q/8h", "[redacted]@127.0.0.1:org/app.git is an SSH URL, so source.private_key is required"},
	}
	for _, tt := range tests {
		for _, verb := range []string{"check", "in", "out"} {
			res := rt.Run(t, verb, t.TempDir(), map[string]any{
				"source":  source(map[string]any{"uri": tt.uri}),
				"version": map[string]string{"number": "1.0.0"},
				"params":  map[string]any{"bump": "patch"},
			}, rt.Env("j", "1"))
			if verb != "in" { // semver's get reads no repository
				res.Fails(t, tt.want)
			}
			for i := 0; i+4 <= len(tt.password); i++ {
				frag := tt.password[i : i+4]
				require.NotContains(t, res.Stdout+res.Stderr, frag, "%s of %q printed a fragment of the password", verb, tt.uri)
			}
		}
	}
	require.Zero(t, srv.requests.Load())
	require.Equal(t, tip, srv.Tip(t, "app", "version"))
}
