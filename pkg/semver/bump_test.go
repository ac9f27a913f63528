package semver

import (
	"testing"

	"github.com/Masterminds/semver/v3"
	"github.com/stretchr/testify/require"
)

func TestBumps(t *testing.T) {
	tests := []struct {
		from string
		p    Params
		want string
	}{
		{"1.2.3", Params{Bump: "major"}, "2.0.0"},
		{"1.2.3", Params{Bump: "minor"}, "1.3.0"},
		{"1.2.3", Params{Bump: "patch"}, "1.2.4"},
		{"1.2.3", Params{Bump: "final"}, "1.2.3"},
		{"1.2.3", Params{}, "1.2.3"},
		{"1.2.3-rc.1", Params{Bump: "patch"}, "1.2.4"},
		{"1.2.3-rc.1", Params{Bump: "minor"}, "1.3.0"},
		{"1.2.3-rc.1", Params{Bump: "major"}, "2.0.0"},
		{"1.2.3-rc.1", Params{Bump: "final"}, "1.2.3"},
		{"1.2.4-rc.1", Params{Pre: "rc"}, "1.2.4-rc.2"},
		{"1.2.3", Params{Pre: "rc"}, "1.2.3-rc.1"},
		{"1.2.3", Params{Bump: "minor", Pre: "rc"}, "1.3.0-rc.1"},
		{"1.2.3", Params{Bump: "major", Pre: "rc"}, "2.0.0-rc.1"},
		{"1.2.3-rc.1", Params{Bump: "final", Pre: "rc"}, "1.2.3-rc.1"},
		{"1.2.3-rc.1", Params{Bump: "patch", Pre: "rc"}, "1.2.4-rc.1"},
		{"1.2.3-different.1", Params{Pre: "rc"}, "1.2.3-rc.1"},
		{"1.2.3-rc", Params{Pre: "rc"}, "1.2.3-rc.1"},
		{"1.2.3", Params{Pre: "alpha", PreWithoutVersion: true}, "1.2.3-alpha"},
		{"1.2.3-alpha", Params{Pre: "alpha", PreWithoutVersion: true}, "1.2.3-alpha"},
		{"1.2.3", Params{Build: "build"}, "1.2.3+build.1"},
		{"1.2.3+build.1", Params{Build: "build"}, "1.2.3+build.2"},
		{"1.2.3", Params{Build: "sha", BuildWithoutVersion: true}, "1.2.3+sha"},
		{"1.2.3+build.7", Params{Bump: "major"}, "2.0.0+build.7"},
		{"1.2.3", Params{Bump: "minor", Pre: "rc", Build: "b"}, "1.3.0-rc.1+b.1"},
	}
	for _, tt := range tests {
		t.Run(tt.from+"/"+tt.p.describe(), func(t *testing.T) {
			got := tt.p.bump("").Apply(semver.MustParse(tt.from))
			require.Equal(t, tt.want, got.String())
		})
	}
}

func TestConventionalLevel(t *testing.T) {
	tests := []struct {
		name     string
		messages []string
		want     string
	}{
		{"fix", []string{"fix: crash on empty file"}, "patch"},
		{"feat wins over fix", []string{"fix: a", "feat(api): b", "docs: c"}, "minor"},
		{"bang", []string{"feat!: drop v1 API"}, "major"},
		{"scoped bang", []string{"refactor(core)!: rename"}, "major"},
		{"footer", []string{"feat: x\n\nBREAKING CHANGE: config moved"}, "major"},
		{"footer dash", []string{"fix: x\n\nBREAKING-CHANGE: y"}, "major"},
		{"nothing conventional", []string{"update readme", "chore: deps"}, "patch"},
		{"no commits", nil, "patch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, conventionalLevel(tt.messages))
		})
	}
}
