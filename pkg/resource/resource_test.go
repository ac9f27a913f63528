package resource

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type testSource struct {
	Embedded
	Branch  string   `json:"branch"`
	Depth   int      `json:"depth"`
	Tag     String   `json:"tag"`
	Timeout Duration `json:"timeout"`
}

type Embedded struct {
	URI string `json:"uri"`
}

func TestDecodeStrict(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want testSource
		errs []string
	}{
		{name: "ok", raw: `{"uri":"u","branch":"main","depth":2,"tag":"1.0","timeout":"90s"}`,
			want: testSource{Embedded{"u"}, "main", 2, "1.0", Duration(90 * time.Second)}},
		{name: "null is empty", raw: `null`},
		{name: "unquoted number tag keeps its text", raw: `{"tag": 1.10}`, want: testSource{Tag: "1.10"}},
		{name: "seconds as a number", raw: `{"timeout": 30}`, want: testSource{Timeout: Duration(30 * time.Second)}},
		{name: "typo suggests", raw: `{"brnach":"x","urii":"y"}`,
			errs: []string{`source: unknown key "brnach" (did you mean "branch"?)`, `source: unknown key "urii" (did you mean "uri"?)`}},
		{name: "far from anything", raw: `{"completely_different":1}`, errs: []string{`source: unknown key "completely_different"`}},
		{name: "wrong type names the key", raw: `{"depth":"deep"}`, errs: []string{"source.depth: expected a number, got a JSON string"}},
		{name: "bad duration names the key", raw: `{"timeout":"soon"}`, errs: []string{"source.timeout", `"soon" is not a duration`}},
		{name: "not an object", raw: `[1]`, errs: []string{"source must be a JSON object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got testSource
			err := DecodeStrict(json.RawMessage(tt.raw), &got, "source")
			if len(tt.errs) == 0 {
				require.NoError(t, err)
				require.Equal(t, tt.want, got)
				return
			}
			require.Error(t, err)
			require.True(t, IsConfigError(err))
			for _, e := range tt.errs {
				require.Contains(t, err.Error(), e)
			}
		})
	}
}

func TestRedactor(t *testing.T) {
	r := &Redactor{}
	key := "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACBqV2lkbHVtbWVyc3VwZXJzZWNyZXRrZXltYXRlcmlhbA==\n-----END OPENSSH PRIVATE KEY-----"
	r.Add(key, "p@ss word")
	r.AddBasicAuth("ci", "tok3n-value")
	tests := map[string]string{
		"plain":           "auth failed with p@ss word",
		"url escaped":     "https://host/?p=p%40ss+word",
		"key line":        "bad key line QyNTUxOQAAACBqV2lkbHVtbWVyc3VwZXJzZWNyZXRrZXltYXRlcmlhbA==",
		"basic header":    "Authorization: Basic Y2k6dG9rM24tdmFsdWU=",
		"url credentials": "clone https://someone:hunter2@example.com/repo.git failed",
		"token":           "token tok3n-value rejected",
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			out := r.String(in)
			require.Contains(t, out, Redacted)
			for _, s := range []string{"p@ss word", "p%40ss+word", "QyNTUxOQAAACBq", "Y2k6dG9rM24tdmFsdWU=", "hunter2", "tok3n-value"} {
				require.NotContains(t, out, s)
			}
		})
	}
	t.Run("writer redacts across writes", func(t *testing.T) {
		var buf bytes.Buffer
		w := r.Writer(&buf)
		w.Write([]byte("first p@ss"))
		w.Write([]byte(" word\nsecond line"))
		w.Close()
		require.Equal(t, "first [redacted]\nsecond line", buf.String())
	})
}

func TestBuildURL(t *testing.T) {
	env := map[string]string{"BUILD_NAME": "12", "BUILD_JOB_NAME": "deploy prod", "BUILD_PIPELINE_NAME": "app",
		"BUILD_TEAM_NAME": "main", "ATC_EXTERNAL_URL": "https://ci.example.com/", "BUILD_ID": "991"}
	e := EnvFrom(func(k string) string { return env[k] })
	require.Equal(t, "https://ci.example.com/teams/main/pipelines/app/jobs/deploy%20prod/builds/12", e.BuildURL())
	require.Equal(t, "app/deploy prod #12", e.Build())
	oneOff := EnvFrom(func(k string) string {
		return map[string]string{"BUILD_ID": "991", "ATC_EXTERNAL_URL": "https://ci"}[k]
	})
	require.Equal(t, "https://ci/builds/991", oneOff.BuildURL())
	require.Empty(t, EnvFrom(func(string) string { return "" }).BuildURL())
}

func TestPathStaysInBuildDir(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "in"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "in", "tag"), []byte(" 1.2.3\n"), 0o644))
	require.NoError(t, os.Symlink("/etc", filepath.Join(dir, "escape")))
	require.NoError(t, os.Symlink("in/tag", filepath.Join(dir, "inside")))
	in := Input{Dir: dir}
	tests := []struct {
		rel, err string
	}{
		{"in/tag", ""},
		{"inside", ""},
		{"/etc/passwd", "must be relative"},
		{"../x", "leaves the build dir"},
		{"in/../../x", "leaves the build dir"},
		{"escape/passwd", "symlink that leaves the build dir"},
	}
	for _, tt := range tests {
		t.Run(tt.rel, func(t *testing.T) {
			v, err := in.ReadParamFile("params.tag_file", tt.rel)
			if tt.err == "" {
				require.NoError(t, err)
				require.Equal(t, "1.2.3", v)
				return
			}
			require.ErrorContains(t, err, tt.err)
			require.ErrorContains(t, err, "params.tag_file")
		})
	}
}

func TestExpand(t *testing.T) {
	values := map[string]string{"changes": "web: 1.0 → 1.1", "build": "app/deploy #7"}
	tests := []struct {
		name, text, want, err string
	}{
		{"placeholders", "deploy %changes% (%build%)", "deploy web: 1.0 → 1.1 (app/deploy #7)", ""},
		{"twice", "%build% %build%", "app/deploy #7 app/deploy #7", ""},
		{"percent signs stay", "50% of 100%, 3%-5%", "50% of 100%, 3%-5%", ""},
		{"no placeholder", "plain", "plain", ""},
		{"unknown", "%chnages% and %x%", "", "unknown placeholder %chnages%, %x% (known: %build%, %changes%)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Expand(tt.text, values)
			if tt.err != "" {
				require.EqualError(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}
