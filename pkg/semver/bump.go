package semver

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// Bump turns one version into the next. Bumps are small values composed in
// order, as semver-resource's are, so their rules can be table-tested.
type Bump interface {
	Apply(v *semver.Version) *semver.Version
}

// MajorBump: 1.2.3-rc.1 → 2.0.0 (build metadata is kept, as semver-resource does).
type MajorBump struct{}

// Apply implements Bump.
func (MajorBump) Apply(v *semver.Version) *semver.Version {
	return mustNew(v.Major()+1, 0, 0, "", v.Metadata())
}

// MinorBump: 1.2.3 → 1.3.0.
type MinorBump struct{}

// Apply implements Bump.
func (MinorBump) Apply(v *semver.Version) *semver.Version {
	return mustNew(v.Major(), v.Minor()+1, 0, "", v.Metadata())
}

// PatchBump: 1.2.3 → 1.2.4, and 1.2.3-rc.1 → 1.2.4.
type PatchBump struct{}

// Apply implements Bump.
func (PatchBump) Apply(v *semver.Version) *semver.Version {
	return mustNew(v.Major(), v.Minor(), v.Patch()+1, "", v.Metadata())
}

// FinalBump drops the pre-release: 1.2.3-rc.1 → 1.2.3.
type FinalBump struct{}

// Apply implements Bump.
func (FinalBump) Apply(v *semver.Version) *semver.Version {
	return mustNew(v.Major(), v.Minor(), v.Patch(), "", v.Metadata())
}

// PreBump moves to, or along, a pre-release line: 1.2.3 → 1.2.3-rc.1,
// 1.2.3-rc.1 → 1.2.3-rc.2, 1.2.3-beta.4 → 1.2.3-rc.1. WithoutVersion gives
// 1.2.3-rc.
type PreBump struct {
	Pre            string
	WithoutVersion bool
}

// Apply implements Bump.
func (b PreBump) Apply(v *semver.Version) *semver.Version {
	return mustNew(v.Major(), v.Minor(), v.Patch(), nextLabel(v.Prerelease(), b.Pre, b.WithoutVersion), v.Metadata())
}

// BuildBump does for build metadata what PreBump does for the pre-release:
// 1.2.3 → 1.2.3+build.1 → 1.2.3+build.2, or 1.2.3+build WithoutVersion.
type BuildBump struct {
	Build          string
	WithoutVersion bool
}

// Apply implements Bump.
func (b BuildBump) Apply(v *semver.Version) *semver.Version {
	return mustNew(v.Major(), v.Minor(), v.Patch(), v.Prerelease(), nextLabel(v.Metadata(), b.Build, b.WithoutVersion))
}

// nextLabel is the rule shared by pre-release and build labels.
func nextLabel(current, label string, withoutVersion bool) string {
	if withoutVersion {
		return label
	}
	ids := strings.Split(current, ".")
	if current == "" || ids[0] != label {
		return label + ".1"
	}
	n := uint64(0)
	if len(ids) > 1 {
		n, _ = strconv.ParseUint(ids[1], 10, 64)
	}
	return fmt.Sprintf("%s.%d", label, n+1)
}

// Bumps applies each bump in turn.
type Bumps []Bump

// Apply implements Bump.
func (bs Bumps) Apply(v *semver.Version) *semver.Version {
	for _, b := range bs {
		v = b.Apply(v)
	}
	return v
}

func mustNew(major, minor, patch uint64, pre, meta string) *semver.Version {
	s := fmt.Sprintf("%d.%d.%d", major, minor, patch)
	if pre != "" {
		s += "-" + pre
	}
	if meta != "" {
		s += "+" + meta
	}
	v, err := semver.StrictNewVersion(s)
	if err != nil {
		// Labels are validated when params are decoded; this cannot happen.
		panic(fmt.Sprintf("semver: invalid version %q: %v", s, err))
	}
	return v
}

// LevelBump returns the bump for "major", "minor", "patch" or "final".
func LevelBump(level string) (Bump, bool) {
	switch level {
	case "major":
		return MajorBump{}, true
	case "minor":
		return MinorBump{}, true
	case "patch":
		return PatchBump{}, true
	case "final":
		return FinalBump{}, true
	}
	return nil, false
}
