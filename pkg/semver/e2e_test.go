package semver_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
)

func TestMain(m *testing.M) { rt.Main(m) }

func source(extra map[string]any) map[string]any {
	s := map[string]any{"kind": "semver", "branch": "version", "file": "version"}
	for k, v := range extra {
		s[k] = v
	}
	return s
}

func TestFileDriverOverHTTP(t *testing.T) {
	t.Parallel()
	srv := gittest.New(t)
	srv.CreateRepo(t, "app")
	src := source(map[string]any{"uri": srv.HTTPURL("app"), "initial_version": "1.0.0"})
	env := rt.Env("release", "7")

	var versions []map[string]string
	rt.Run(t, "check", "", map[string]any{"source": src}, nil).OK(t, &versions)
	require.Equal(t, []map[string]string{{"number": "1.0.0"}}, versions, "no file yet: initial_version")

	var out rt.Response
	rt.Run(t, "out", t.TempDir(), map[string]any{"source": src, "params": map[string]any{"bump": "minor", "pre": "rc"}}, env).OK(t, &out)
	require.Equal(t, "1.1.0-rc.1", out.Version["number"])
	require.Equal(t, srv.Tip(t, "app", "version"), out.Meta1("commit"))
	require.Equal(t, "https://ci.example.com/teams/main/pipelines/app/jobs/release/builds/7", out.Meta1("build_url"))
	content, ok := srv.ReadFile(t, "app", "version", "version")
	require.True(t, ok)
	require.Equal(t, "1.1.0-rc.1", content)
	log := srv.Log(t, "app", "version")
	require.Len(t, log, 1)
	require.Contains(t, log[0].Message, "bump to 1.1.0-rc.1")
	require.Contains(t, log[0].Message, "Concourse-Build-URL: https://ci.example.com/teams/main/pipelines/app/jobs/release/builds/7")

	rt.Run(t, "out", t.TempDir(), map[string]any{"source": src, "params": map[string]any{"pre": "rc"}}, env).OK(t, &out)
	require.Equal(t, "1.1.0-rc.2", out.Version["number"])
	require.Equal(t, "1.1.0-rc.1", out.Meta1("previous_number"))

	rt.Run(t, "check", "", map[string]any{"source": src, "version": map[string]string{"number": "1.1.0-rc.1"}}, nil).OK(t, &versions)
	require.Equal(t, []map[string]string{{"number": "1.1.0-rc.1"}, {"number": "1.1.0-rc.2"}}, versions, "from the requested version on, as the file held them")

	dir := t.TempDir()
	rt.Run(t, "in", dir, map[string]any{"source": src, "version": map[string]string{"number": "1.1.0-rc.2"}, "params": map[string]any{"bump": "final"}}, env).OK(t, &out)
	require.Equal(t, "1.1.0-rc.2", out.Version["number"])
	for _, f := range []string{"number", "version"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		require.Equal(t, "1.1.0", string(data), "in with bump: final writes the bumped number")
	}

	rt.Run(t, "out", t.TempDir(), map[string]any{"source": src, "params": map[string]any{"get_latest": true}}, env).OK(t, &out)
	require.Equal(t, "1.1.0-rc.2", out.Version["number"])
	require.Len(t, srv.Log(t, "app", "version"), 2, "get_latest pushes nothing")

	build := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(build, "v"), []byte("2.0.0\n"), 0o644))
	rt.Run(t, "out", build, map[string]any{"source": src, "params": map[string]any{"file": "v"}}, env).OK(t, &out)
	require.Equal(t, "2.0.0", out.Version["number"])
}

func TestFileDriverOverSSHWithPassphrase(t *testing.T) {
	t.Parallel()
	srv := gittest.New(t)
	srv.CreateRepo(t, "app")
	srv.Commit(t, "app", "version", map[string]string{"version": "1.2.3-rc.1"}, "seed")
	key := string(srv.ClientKeyWithPassphrase("s3cret-passphrase"))
	src := source(map[string]any{
		"uri": srv.SSHURL("app"), "private_key": key, "private_key_passphrase": "s3cret-passphrase",
		"known_hosts": srv.KnownHosts(),
	})
	var out rt.Response
	res := rt.Run(t, "out", t.TempDir(), map[string]any{"source": src, "params": map[string]any{"bump": "patch"}}, nil)
	res.OK(t, &out)
	res.NoSecrets(t, key, "s3cret-passphrase")
	require.Equal(t, "1.2.4", out.Version["number"])
	content, _ := srv.ReadFile(t, "app", "version", "version")
	require.Equal(t, "1.2.4", content)
}

func TestSSHWithoutKnownHostsWarnsWithFingerprint(t *testing.T) {
	t.Parallel()
	srv := gittest.New(t)
	srv.CreateRepo(t, "app")
	src := source(map[string]any{"uri": srv.SSHURL("app"), "private_key": string(srv.ClientKey())})
	res := rt.Run(t, "check", "", map[string]any{"source": src}, nil)
	res.OK(t, nil)
	require.Contains(t, res.Stderr, "warning")
	require.Contains(t, res.Stderr, srv.HostKeyFingerprint())
}

func TestConcurrentBumpsAllLand(t *testing.T) {
	t.Parallel()
	const writers = 8
	for _, driver := range []string{"git", "tags"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			srv := gittest.New(t)
			srv.CreateRepo(t, "app")
			srv.Commit(t, "app", "version", map[string]string{"version": "1.0.0", "README": "x"}, "seed")
			src := source(map[string]any{"uri": srv.HTTPURL("app"), "driver": driver})
			if driver == "tags" {
				delete(src, "file")
				srv.Tag(t, "app", "v1.0.0", "version", "1.0.0")
			}
			var wg sync.WaitGroup
			got := make([]string, writers)
			for i := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var out rt.Response
					rt.Run(t, "out", t.TempDir(), map[string]any{"source": src, "params": map[string]any{"bump": "patch"}}, nil).OK(t, &out)
					got[i] = out.Version["number"]
				}()
			}
			wg.Wait()
			sort.Slice(got, func(i, j int) bool {
				return len(got[i]) < len(got[j]) || (len(got[i]) == len(got[j]) && got[i] < got[j])
			})
			want := make([]string, writers)
			for i := range writers {
				want[i] = fmt.Sprintf("1.0.%d", i+1)
			}
			require.Equal(t, want, got, "every bump got its own version")
			if driver == "git" {
				content, _ := srv.ReadFile(t, "app", "version", "version")
				require.Equal(t, fmt.Sprintf("1.0.%d", writers), content)
				log := srv.Log(t, "app", "version")
				require.Len(t, log, writers+1, "one commit per bump, none lost")
				for _, c := range log {
					require.LessOrEqual(t, len(c.Parents), 1, "no merge commits")
				}
			} else {
				require.Len(t, srv.Tags(t, "app"), writers+1)
			}
		})
	}
}

func TestTagsDriverMonorepoLines(t *testing.T) {
	t.Parallel()
	srv := gittest.New(t)
	srv.CreateRepo(t, "mono")
	first := srv.Commit(t, "mono", "main", map[string]string{"api/main.go": "1"}, "feat(api): first")
	srv.Tag(t, "mono", "api/v1.4.0", first, "api 1.4.0")
	srv.Tag(t, "mono", "web/v3.0.0", first, "web 3.0.0")
	srv.Commit(t, "mono", "main", map[string]string{"api/main.go": "2"}, "fix(api): handle nil")
	tip := srv.Commit(t, "mono", "main", map[string]string{"api/main.go": "3"}, "feat(api): add list endpoint")
	src := map[string]any{"kind": "semver", "driver": "tags", "tag_prefix": "api/v", "uri": srv.HTTPURL("mono"), "branch": "main"}

	var versions []map[string]string
	rt.Run(t, "check", "", map[string]any{"source": src}, nil).OK(t, &versions)
	require.Equal(t, []map[string]string{{"number": "1.4.0"}}, versions, "web/ tags are another line")

	var out rt.Response
	rt.Run(t, "out", t.TempDir(), map[string]any{"source": src, "params": map[string]any{"bump": "auto"}}, nil).OK(t, &out)
	require.Equal(t, "1.5.0", out.Version["number"], "a feat since the last tag is a minor bump")
	tags := srv.Tags(t, "mono")
	require.Equal(t, tip, tags["api/v1.5.0"])
	require.Equal(t, "tag", strings.TrimSpace(srv.Git(t, "mono", "cat-file", "-t", "refs/tags/api/v1.5.0")), "annotated tag")

	rt.Run(t, "check", "", map[string]any{"source": src, "version": map[string]string{"number": "1.4.0"}}, nil).OK(t, &versions)
	require.Equal(t, []map[string]string{{"number": "1.4.0"}, {"number": "1.5.0"}}, versions)

	build := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(build, "ref"), []byte(first+"\n"), 0o644))
	rt.Run(t, "out", build, map[string]any{"source": src, "params": map[string]any{"bump": "major", "ref_file": "ref"}}, nil).OK(t, &out)
	require.Equal(t, "2.0.0", out.Version["number"])
	require.Equal(t, first, srv.Tags(t, "mono")["api/v2.0.0"], "ref_file names the commit to tag")
}

func TestAutoBumpFromConventionalCommitsOnFileBranch(t *testing.T) {
	t.Parallel()
	srv := gittest.New(t)
	srv.CreateRepo(t, "app")
	srv.Commit(t, "app", "main", map[string]string{"VERSION": "0.3.1"}, "chore: release 0.3.1")
	srv.Commit(t, "app", "main", map[string]string{"a.go": "a"}, "fix: a")
	srv.Commit(t, "app", "main", map[string]string{"b.go": "b"}, "feat!: new config format")
	src := source(map[string]any{"uri": srv.HTTPURL("app"), "branch": "main", "file": "VERSION"})
	var out rt.Response
	rt.Run(t, "out", t.TempDir(), map[string]any{"source": src, "params": map[string]any{"bump": "auto"}}, nil).OK(t, &out)
	require.Equal(t, "1.0.0", out.Version["number"])
	rt.Run(t, "out", t.TempDir(), map[string]any{"source": src, "params": map[string]any{"bump": "auto"}}, nil).OK(t, &out)
	require.Equal(t, "1.0.1", out.Version["number"], "no commits since the last version: patch")
}

func TestFailuresNameTheProblemAndChangeNothing(t *testing.T) {
	t.Parallel()
	srv := gittest.New(t, gittest.WithBasicAuth("ci", "correct-horse-battery"))
	srv.CreateRepo(t, "app")
	tip := srv.Commit(t, "app", "version", map[string]string{"version": "1.0.0"}, "seed")
	other := gittest.New(t)
	other.CreateRepo(t, "app")
	other.Commit(t, "app", "version", map[string]string{"version": "1.0.0"}, "seed")

	tests := []struct {
		name    string
		src     map[string]any
		params  map[string]any
		want    []string
		secrets []string
	}{
		{
			name:    "wrong password",
			src:     source(map[string]any{"uri": srv.HTTPURL("app"), "username": "ci", "password": "wrong-password-123"}),
			params:  map[string]any{"bump": "patch"},
			want:    []string{"authentication", srv.HTTPAddr(), "source.username"},
			secrets: []string{"wrong-password-123"},
		},
		{
			name:    "password in the URL",
			src:     source(map[string]any{"uri": "http://ci:url-secret-99@" + srv.HTTPAddr() + "/nope.git"}),
			params:  map[string]any{"bump": "patch"},
			want:    []string{srv.HTTPAddr()},
			secrets: []string{"url-secret-99"},
		},
		{
			name:    "wrong host key",
			src:     source(map[string]any{"uri": other.SSHURL("app"), "private_key": string(other.ClientKey()), "known_hosts": other.KnownHostsMismatch()}),
			params:  map[string]any{"bump": "patch"},
			want:    []string{"does not match source.known_hosts", "known_hosts"},
			secrets: []string{string(other.ClientKey())},
		},
		{
			name:    "wrong passphrase",
			src:     source(map[string]any{"uri": other.SSHURL("app"), "private_key": string(other.ClientKeyWithPassphrase("right-one")), "private_key_passphrase": "wrong-one-456"}),
			params:  map[string]any{"bump": "patch"},
			want:    []string{"private_key_passphrase"},
			secrets: []string{"wrong-one-456", string(other.ClientKeyWithPassphrase("right-one"))},
		},
		{
			name:    "unauthorized ssh key",
			src:     source(map[string]any{"uri": other.SSHURL("app"), "private_key": string(gittest.NewKey(t)), "known_hosts": other.KnownHosts()}),
			params:  map[string]any{"bump": "patch"},
			want:    []string{"ssh authentication failed", "private_key"},
			secrets: nil,
		},
		{
			name:   "unknown param",
			src:    source(map[string]any{"uri": srv.HTTPURL("app"), "username": "ci", "password": "correct-horse-battery"}),
			params: map[string]any{"bummp": "patch"},
			want:   []string{`params: unknown key "bummp"`, `did you mean "bump"?`},
		},
		{
			name:   "unknown source key",
			src:    source(map[string]any{"uri": srv.HTTPURL("app"), "brnach": "x"}),
			params: map[string]any{"bump": "patch"},
			want:   []string{`source: unknown key "brnach"`, `"branch"`},
		},
		{
			name:   "missing file param",
			src:    source(map[string]any{"uri": srv.HTTPURL("app"), "username": "ci", "password": "correct-horse-battery"}),
			params: map[string]any{"file": "nope/number"},
			want:   []string{"params.file", "nope/number", "does not exist"},
		},
		{
			name:   "file param escaping the build dir",
			src:    source(map[string]any{"uri": srv.HTTPURL("app"), "username": "ci", "password": "correct-horse-battery"}),
			params: map[string]any{"file": "../../etc/passwd"},
			want:   []string{"params.file", "leaves the build dir"},
		},
		{
			name:   "bad bump",
			src:    source(map[string]any{"uri": srv.HTTPURL("app")}),
			params: map[string]any{"bump": "huge"},
			want:   []string{`params.bump "huge"`, "major, minor, patch, final or auto"},
		},
		{
			name:   "typo in commit_message",
			src:    source(map[string]any{"uri": srv.HTTPURL("app"), "commit_message": "bump to %verison%"}),
			params: map[string]any{"bump": "patch"},
			want:   []string{"source.commit_message: unknown placeholder %verison% (known: %file%, %version%)"},
		},
		{
			name:   "missing uri and file",
			src:    map[string]any{"kind": "semver", "branch": "x"},
			params: map[string]any{"bump": "patch"},
			want:   []string{"source.uri is required for kind semver", "source.file is required"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := rt.Run(t, "out", t.TempDir(), map[string]any{"source": tt.src, "params": tt.params}, rt.Env("j", "1"))
			res.Fails(t, tt.want...)
			res.NoSecrets(t, tt.secrets...)
			require.NotContains(t, res.Stderr, "goroutine", "no stack traces")
			require.Equal(t, tip, srv.Tip(t, "app", "version"), "nothing changed on the remote")
		})
	}
}

func TestUnknownKind(t *testing.T) {
	t.Parallel()
	res := rt.Run(t, "check", "", map[string]any{"source": map[string]any{"kind": "semvr"}}, nil)
	res.Fails(t, `source.kind "semvr" is not a kind`, "semver")
}

func TestHTTPSNeedsTrustOrSkipSSLVerification(t *testing.T) {
	t.Parallel()
	srv := gittest.New(t, gittest.WithTLS())
	srv.CreateRepo(t, "app")
	srv.Commit(t, "app", "version", map[string]string{"version": "2.1.0"}, "seed")
	require.True(t, strings.HasPrefix(srv.HTTPURL("app"), "https://"))
	src := source(map[string]any{"uri": srv.HTTPURL("app")})

	rt.Run(t, "check", "", map[string]any{"source": src}, nil).Fails(t, "TLS certificate", srv.HTTPAddr(), "skip_ssl_verification")

	src["skip_ssl_verification"] = true
	var versions []map[string]string
	rt.Run(t, "check", "", map[string]any{"source": src}, nil).OK(t, &versions)
	require.Equal(t, []map[string]string{{"number": "2.1.0"}}, versions)
	var out rt.Response
	rt.Run(t, "out", t.TempDir(), map[string]any{"source": src, "params": map[string]any{"bump": "patch"}}, nil).OK(t, &out)
	require.Equal(t, "2.1.1", out.Version["number"])
}
