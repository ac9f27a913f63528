package imageref

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const (
	dig  = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	dig2 = "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Ref
	}{
		{"nginx", Ref{Name: "nginx"}},
		{"nginx:1.25", Ref{Name: "nginx", Tag: "1.25"}},
		{"library/nginx:latest", Ref{Name: "library/nginx", Tag: "latest"}},
		{"ghcr.io/acme/web", Ref{Name: "ghcr.io/acme/web"}},
		{"ghcr.io/acme/web:v1.2.3", Ref{Name: "ghcr.io/acme/web", Tag: "v1.2.3"}},
		{"host:5000/app", Ref{Name: "host:5000/app"}},
		{"host:5000/app:1.0", Ref{Name: "host:5000/app", Tag: "1.0"}},
		{"localhost/app", Ref{Name: "localhost/app"}},
		{"[::1]:5000/app:dev", Ref{Name: "[::1]:5000/app", Tag: "dev"}},
		{"nginx@" + dig, Ref{Name: "nginx", Digest: dig}},
		{"nginx:1.25@" + dig, Ref{Name: "nginx", Tag: "1.25", Digest: dig}},
		{"host:5000/a/b/c:t@" + dig, Ref{Name: "host:5000/a/b/c", Tag: "t", Digest: dig}},
		{"Registry.Example.COM/a__b/c-d--e.f:V_1", Ref{Name: "Registry.Example.COM/a__b/c-d--e.f", Tag: "V_1"}},
		{"host:5000", Ref{Name: "host", Tag: "5000"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.in, got.String())
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in, msg string
	}{
		{"", "image reference is empty"},
		{"Nginx", "invalid path component"},
		{"nginx:", "tag is empty"},
		{"nginx:.bad", "tag \".bad\" is invalid"},
		{"nginx:" + strings.Repeat("a", 129), "longer than 128"},
		{"nginx@sha256:abc", "sha256 needs 64 hex digits"},
		{"nginx@sha256:" + strings.Repeat("G", 64), "non-hex"},
		{"nginx@", "not of the form algorithm:hex"},
		{"acme//web", "empty path component"},
		{"acme/web/", "empty path component"},
		{"host:port/app", "invalid port"},
		{"-bad.io/app", "not a valid host name"},
		{"acme/we..b", "invalid path component"},
		{"a b", "invalid"},
		{"acme/web:tag:x", "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := Parse(tt.in)
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.msg)
			if tt.in != "" {
				require.Contains(t, err.Error(), tt.in[:min(len(tt.in), 10)])
			}
		})
	}
}

func TestCanonical(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nginx", "docker.io/library/nginx"},
		{"library/nginx", "docker.io/library/nginx"},
		{"docker.io/library/nginx", "docker.io/library/nginx"},
		{"docker.io/nginx", "docker.io/library/nginx"},
		{"index.docker.io/library/nginx", "docker.io/library/nginx"},
		{"registry-1.docker.io/library/nginx", "docker.io/library/nginx"},
		{"nginx:1.25@" + dig, "docker.io/library/nginx"},
		{"acme/web", "docker.io/acme/web"},
		{"GHCR.IO/acme/web:1", "ghcr.io/acme/web"},
		{"host:5000/app", "host:5000/app"},
		{"localhost/app", "localhost/app"},
		{"not a ref", "not a ref"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			require.Equal(t, tt.want, Canonical(tt.in))
		})
	}
}

func TestSameRepository(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"nginx", "docker.io/library/nginx", true},
		{"nginx", "index.docker.io/library/nginx:1.0", true},
		{"library/nginx", "registry-1.docker.io/library/nginx", true},
		{"acme/web", "acme/web-worker", false},
		{"acme/web", "docker.io/acme/web", true},
		{"ghcr.io/acme/web", "GHCR.io/acme/web@" + dig, true},
		{"ghcr.io/acme/web", "ghcr.io/acme/Web", false},
		{"ghcr.io/acme/web", "quay.io/acme/web", false},
		{"host:5000/app", "host:5000/app:5000", true},
		{"host:5000/app", "host/app", false},
		{"nginx", "mynginx", false},
		{"bad ref", "bad ref", false},
	}
	for _, tt := range tests {
		t.Run(tt.a+" vs "+tt.b, func(t *testing.T) {
			require.Equal(t, tt.want, SameRepository(tt.a, tt.b))
			require.Equal(t, tt.want, SameRepository(tt.b, tt.a))
		})
	}
}

func TestEdits(t *testing.T) {
	tests := []struct {
		name string
		in   string
		edit func(Ref) (Ref, error)
		want string
	}{
		{"tag on bare", "nginx", func(r Ref) (Ref, error) { return r.WithTag("1.10") }, "nginx:1.10"},
		{"tag keeps spelling", "index.docker.io/library/nginx:1.0", func(r Ref) (Ref, error) { return r.WithTag("1.1") }, "index.docker.io/library/nginx:1.1"},
		{"tag drops stale digest", "nginx:1.0@" + dig, func(r Ref) (Ref, error) { return r.WithTag("1.1") }, "nginx:1.1"},
		{"digest keeps tag", "host:5000/app:1.0", func(r Ref) (Ref, error) { return r.WithDigest(dig) }, "host:5000/app:1.0@" + dig},
		{"digest replaces digest", "app:1@" + dig, func(r Ref) (Ref, error) { return r.WithDigest(dig2) }, "app:1@" + dig2},
		{"tag and digest", "app:1@" + dig, func(r Ref) (Ref, error) { return r.WithTagAndDigest("2", dig2) }, "app:2@" + dig2},
		{"name", "app:1@" + dig, func(r Ref) (Ref, error) { return r.WithName("ghcr.io/acme/app") }, "ghcr.io/acme/app:1@" + dig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := MustParse(tt.in)
			got, err := tt.edit(r)
			require.NoError(t, err)
			require.Equal(t, tt.want, got.String())
			require.Equal(t, tt.in, r.String(), "the original is not modified")
		})
	}
	_, err := MustParse("nginx").WithTag("bad tag")
	require.ErrorContains(t, err, "set tag of nginx: tag \"bad tag\" is invalid")
	_, err = MustParse("nginx").WithDigest("sha256:1")
	require.ErrorContains(t, err, "set digest of nginx")
	_, err = MustParse("nginx").WithName("UP")
	require.Error(t, err)
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"nginx", "nginx:1.25", "host:5000/app", "ghcr.io/acme/web:v1@" + dig, "[::1]:5000/a", "a@b", ":", "@", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			if err.Error() == "" || strings.ToLower(err.Error()[:1]) != err.Error()[:1] {
				t.Fatalf("error is not a lowercase sentence: %q", err)
			}
			return
		}
		if got := r.String(); got != s {
			t.Fatalf("Parse(%q).String() = %q", s, got)
		}
		r2, err := Parse(r.String())
		if err != nil || r2 != r {
			t.Fatalf("reparse of %q: %+v, %v", s, r2, err)
		}
		c := Canonical(s)
		if Canonical(c) != c {
			t.Fatalf("Canonical is not idempotent for %q: %q then %q", s, c, Canonical(c))
		}
		if !SameRepository(s, c) {
			t.Fatalf("%q and its canonical %q differ", s, c)
		}
		if t2, err := r.WithTag("latest"); err == nil && t2.Digest != "" {
			t.Fatalf("WithTag kept a digest")
		}
	})
}
