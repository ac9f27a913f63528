package imageref

import (
	_ "crypto/sha256" // go-digest knows the digest algorithms linked in
	_ "crypto/sha512"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// Ref is a parsed image reference: name[:tag][@digest].
type Ref struct {
	// Name is the repository as written, e.g. "nginx", "ghcr.io/acme/web" or "host:5000/app".
	Name string
	// Tag is the tag without the colon; empty when the reference has none.
	Tag string
	// Digest is "algorithm:hex", e.g. "sha256:..."; empty when the reference has none.
	Digest string
}

const (
	maxNameLength = reference.RepositoryNameTotalLengthMax
	maxTagLength  = 128 // reference.TagRegexp: [\w][\w.-]{0,127}
)

// The grammar is distribution/reference's (the one registries and Docker
// use), each part matched whole; digests are go-digest's. This package
// splits a reference into its parts as written (the host as Docker tells
// it apart: splitDomain), and says which part the grammar refuses and why.
var (
	domainGrammar = anchored(reference.DomainRegexp)
	// componentGrammar is a name without a host: matched against one
	// component (no "/"), the grammar of a path component.
	componentGrammar = anchored(reference.NameRegexp)
	tagGrammar       = anchored(reference.TagRegexp)
)

func anchored(re *regexp.Regexp) *regexp.Regexp {
	return regexp.MustCompile(`^(?:` + re.String() + `)$`)
}

// Parse splits s into name, tag and digest and validates each part.
func Parse(s string) (Ref, error) {
	r, err := parse(s)
	if err == nil && len(r.Name) > maxNameLength {
		return Ref{}, fmt.Errorf("image reference %q: repository name is longer than %d characters", s, maxNameLength)
	}
	return r, err
}

// parse is Parse without the length limit on the name, so that a name and its
// longer canonical spelling can be compared.
func parse(s string) (Ref, error) {
	if s == "" {
		return Ref{}, fmt.Errorf("image reference is empty")
	}
	rest := s
	var r Ref
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		r.Digest = rest[i+1:]
		rest = rest[:i]
		if err := ValidateDigest(r.Digest); err != nil {
			return Ref{}, fmt.Errorf("image reference %q: %w", s, err)
		}
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.Contains(rest[i+1:], "/") {
		// A colon after the last slash separates the tag, unless it is
		// the port of a bare registry host (no slash at all is not a host).
		r.Tag = rest[i+1:]
		rest = rest[:i]
		if err := ValidateTag(r.Tag); err != nil {
			return Ref{}, fmt.Errorf("image reference %q: %w", s, err)
		}
	}
	r.Name = rest
	if err := validateName(r.Name); err != nil {
		return Ref{}, fmt.Errorf("image reference %q: %w", s, err)
	}
	return r, nil
}

// MustParse is Parse for constants in tests and tables; it panics on an invalid reference.
func MustParse(s string) Ref {
	r, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return r
}

// String re-assembles the reference exactly as name[:tag][@digest].
func (r Ref) String() string {
	var b strings.Builder
	b.Grow(len(r.Name) + len(r.Tag) + len(r.Digest) + 2)
	b.WriteString(r.Name)
	if r.Tag != "" {
		b.WriteByte(':')
		b.WriteString(r.Tag)
	}
	if r.Digest != "" {
		b.WriteByte('@')
		b.WriteString(r.Digest)
	}
	return b.String()
}

// Canonical returns the normalised repository of r, see Canonical.
func (r Ref) Canonical() string { return canonicalName(r.Name) }

// WithTag returns r with its tag set to tag and any digest dropped, because a
// digest pinned for the old tag would silently keep the old image. The name
// keeps its original spelling.
func (r Ref) WithTag(tag string) (Ref, error) {
	if err := ValidateTag(tag); err != nil {
		return Ref{}, fmt.Errorf("set tag of %s: %w", r.Name, err)
	}
	return Ref{Name: r.Name, Tag: tag}, nil
}

// WithDigest returns r with its digest set, keeping its tag (repo:tag@sha256:...).
func (r Ref) WithDigest(digest string) (Ref, error) {
	if err := ValidateDigest(digest); err != nil {
		return Ref{}, fmt.Errorf("set digest of %s: %w", r.Name, err)
	}
	return Ref{Name: r.Name, Tag: r.Tag, Digest: digest}, nil
}

// WithTagAndDigest returns r with both its tag and digest replaced.
func (r Ref) WithTagAndDigest(tag, digest string) (Ref, error) {
	t, err := r.WithTag(tag)
	if err != nil {
		return Ref{}, err
	}
	return t.WithDigest(digest)
}

// WithName returns r with a new repository name, keeping tag and digest.
func (r Ref) WithName(name string) (Ref, error) {
	if err := ValidateName(name); err != nil {
		return Ref{}, fmt.Errorf("set name %q: %w", name, err)
	}
	return Ref{Name: name, Tag: r.Tag, Digest: r.Digest}, nil
}

// Canonical normalises a repository name (a tag or digest on it is dropped):
// the registry host is lowercased, and Docker Hub spellings ("nginx",
// "library/nginx", "docker.io/library/nginx", "index.docker.io/library/nginx",
// "registry-1.docker.io/library/nginx") all become "docker.io/library/nginx".
// A string that is not a valid reference is returned unchanged.
func Canonical(name string) string {
	r, err := parse(name)
	if err != nil {
		return name
	}
	return canonicalName(r.Name)
}

// SameRepository reports whether a and b (names or full references) name the
// same repository after normalisation. Tags and digests are ignored.
func SameRepository(a, b string) bool {
	ra, err := parse(a)
	if err != nil {
		return false
	}
	rb, err := parse(b)
	if err != nil {
		return false
	}
	return canonicalName(ra.Name) == canonicalName(rb.Name)
}

const dockerHub = "docker.io"

func canonicalName(name string) string {
	domain, path := splitDomain(name)
	if strings.ContainsAny(domain, ".:") {
		// A host told apart only by its upper case letters keeps them:
		// lowercased it would read as a Docker Hub path.
		domain = strings.ToLower(domain)
	}
	switch domain {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		if !strings.Contains(path, "/") {
			path = "library/" + path
		}
		return dockerHub + "/" + path
	}
	return domain + "/" + path
}

// splitDomain returns the registry host of name, or "" when name has none:
// the first component is a host when it contains a dot or a colon, is
// "localhost", or has an upper-case letter (which a path may not have).
func splitDomain(name string) (domain, path string) {
	i := strings.IndexByte(name, '/')
	if i < 0 {
		return "", name
	}
	first := name[:i]
	if first == "localhost" || strings.ContainsAny(first, ".:") || first != strings.ToLower(first) {
		return first, name[i+1:]
	}
	return "", name
}

// ValidateName checks a repository name against the distribution grammar.
func ValidateName(name string) error {
	if len(name) > maxNameLength {
		return fmt.Errorf("repository name is longer than %d characters", maxNameLength)
	}
	return validateName(name)
}

// validateName is ValidateName without the length limit.
func validateName(name string) error {
	if name == "" {
		return errors.New("repository name is empty")
	}
	domain, path := splitDomain(name)
	if domain != "" && !domainGrammar.MatchString(domain) {
		if _, port, err := net.SplitHostPort(domain); err == nil && (port == "" || strings.Trim(port, "0123456789") != "") {
			return fmt.Errorf("registry host %q has an invalid port %q", domain, port)
		}
		return fmt.Errorf("registry host %q is not a valid host name or IP address", domain)
	}
	for _, c := range strings.Split(path, "/") {
		if c == "" {
			return fmt.Errorf("repository name %q has an empty path component", name)
		}
		if !componentGrammar.MatchString(c) {
			return fmt.Errorf("repository name %q has an invalid path component %q: use lowercase letters, digits and separators . _ __ -", name, c)
		}
	}
	return nil
}

// ValidateTag checks a tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
func ValidateTag(tag string) error {
	switch {
	case tag == "":
		return errors.New("tag is empty")
	case len(tag) > maxTagLength:
		return fmt.Errorf("tag %q is longer than %d characters", tag, maxTagLength)
	case !tagGrammar.MatchString(tag):
		return fmt.Errorf("tag %q is invalid: use letters, digits, _ . - and do not start with . or -", tag)
	}
	return nil
}

// ValidateDigest checks a digest "algorithm:hex" as go-digest does:
// sha256 (64 lowercase hex digits), sha384 (96) or sha512 (128).
func ValidateDigest(d string) error {
	err := digest.Digest(d).Validate()
	alg, hex, ok := strings.Cut(d, ":")
	switch {
	case err == nil:
		return nil
	case !ok || alg == "" || hex == "":
		return fmt.Errorf("digest %q is not of the form algorithm:hex", d)
	case !digest.Algorithm(alg).Available():
		return fmt.Errorf("digest %q has an unsupported algorithm %q: use sha256, sha384 or sha512", d, alg)
	case errors.Is(err, digest.ErrDigestInvalidLength):
		return fmt.Errorf("digest %q: %s needs %d hex digits, got %d", d, alg, digest.Algorithm(alg).Size()*2, len(hex))
	}
	return fmt.Errorf("digest %q has a non-hex character: use lowercase hex digits", d)
}
