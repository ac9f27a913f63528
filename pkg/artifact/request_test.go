package artifact

import (
	"testing"

	"github.com/Masterminds/semver/v3"
	"github.com/stretchr/testify/require"
)

func TestNewest(t *testing.T) {
	tags := []string{"latest", "0.9.0", "1.0.0", "v1.2.0", "1.2.0", "1.10.0", "1.11.0-rc.1", "2.0.0", "sha-abc", "1.9.9.9"}
	tests := []struct{ rng, want string }{
		{">=1.0.0 <2.0.0", "1.10.0"},
		{"~1.2", "v1.2.0"}, // one version, two tags: the one sorting last
		{">=1.11.0-rc.0 <2", "1.11.0-rc.1"},
		{"^2", "2.0.0"},
		{">=3", ""},
	}
	for _, tt := range tests {
		t.Run(tt.rng, func(t *testing.T) {
			c, err := semver.NewConstraint(tt.rng)
			require.NoError(t, err)
			require.Equal(t, tt.want, newest(tags, c))
		})
	}
}

func TestEntryName(t *testing.T) {
	tests := []struct{ raw, want, err string }{
		{"a/b.yaml", "a/b.yaml", ""},
		{"./a/b.yaml", "a/b.yaml", ""},
		{"dir/", "dir", ""},
		{".", ".", ""},
		{"a/./b", "a/b", ""},
		{"", "", "has no name"},
		{"/etc/passwd", "", "is absolute"},
		{"../x", "", "climbs out"},
		{"a/../../x", "", "climbs out"},
		{"a/..", "", "climbs out"},
		{`a\..\x`, "", "backslash"},
		{"a\x00b", "", "NUL"},
	}
	for _, tt := range tests {
		got, err := entryName(tt.raw)
		if tt.err != "" {
			require.ErrorContains(t, err, tt.err, tt.raw)
			continue
		}
		require.NoError(t, err, tt.raw)
		require.Equal(t, tt.want, got)
	}
}

func TestWithoutUserinfo(t *testing.T) {
	for raw, want := range map[string]string{
		"https://robot:tok@git.example.com/acme/config.git": "https://git.example.com/acme/config.git",
		"https://git.example.com/acme/config.git":           "https://git.example.com/acme/config.git",
		"ssh://git@git.example.com/acme/config.git":         "ssh://git@git.example.com/acme/config.git",
		"ssh://git:pw@git.example.com/acme/config.git":      "ssh://git@git.example.com/acme/config.git",
		"git@github.com:acme/config.git":                    "git@github.com:acme/config.git",
	} {
		require.Equal(t, want, withoutUserinfo(raw), raw)
	}
}
