package forge

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// The forge types of source.forge.type.
const (
	TypeGitea  = "gitea" // Gitea and Forgejo
	TypeGitHub = "github"
	TypeGitLab = "gitlab"
)

// Config says which forge holds a repository and how to reach it.
// Resolve fills in what is left empty.
type Config struct {
	// Type is gitea (also Forgejo), github or gitlab; empty: recognised
	// from RepoURL's host (github.com, gitlab.com), else an error asking for
	// source.forge.type.
	Type string
	// URL is the forge's base URL, the one a person opens in a browser
	// (https://gitea.example.com, https://example.com/gitea for one served
	// under a path); each client adds its API path (Gitea /api/v1, GitLab
	// /api/v4, GitHub Enterprise /api/v3; github.com is api.github.com).
	// Empty: RepoURL's scheme and host (https for an SSH RepoURL), with the
	// path before owner/repo.
	URL string
	// Token authenticates the API calls; it is a secret, never in any output.
	Token string
	// RepoURL is the git remote (source.uri): https://host/owner/repo.git,
	// ssh://git@host/owner/repo.git or git@host:owner/repo.git.
	RepoURL string
	// Owner and Repo name the repository on the forge; empty: from
	// RepoURL. A GitLab Owner is the group path (group/subgroup).
	Owner, Repo string
}

// Resolve returns c with its defaults filled in from RepoURL, or every
// problem with it at once. It does no network I/O.
func (c Config) Resolve() (Config, error) {
	var errs []error
	loc, locErr := parseRepoURL(c.RepoURL)
	if c.Type == "" {
		switch {
		case locErr != nil:
			errs = append(errs, fmt.Errorf("source.forge.type is not set and the forge cannot be recognised: %w", locErr))
		case loc.host == "github.com":
			c.Type = TypeGitHub
		case loc.host == "gitlab.com":
			c.Type = TypeGitLab
		default:
			errs = append(errs, fmt.Errorf("source.forge.type is not set and %s is not github.com or gitlab.com: set it to gitea, github or gitlab", loc.host))
		}
	}
	switch c.Type {
	case TypeGitea, TypeGitHub, TypeGitLab, "":
	default:
		errs = append(errs, fmt.Errorf("source.forge.type %q is not one of gitea, github, gitlab", c.Type))
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
			errs = append(errs, fmt.Errorf("source.forge.url %q is not an http(s) URL without credentials or query", redactURL(c.URL)))
		} else {
			c.URL = strings.TrimSuffix(c.URL, "/")
		}
	}
	if c.Token == "" {
		errs = append(errs, errors.New("source.forge.token is not set: the forge's API needs a token that may open and merge pull requests"))
	}
	if c.Owner == "" || c.Repo == "" || c.URL == "" {
		if locErr != nil {
			if c.Type != "" { // else reported above
				errs = append(errs, fmt.Errorf("cannot tell the forge's repository: %w", locErr))
			}
		} else if c.Type != "" {
			owner, repo, prefix, err := loc.split(c.Type)
			switch {
			case err != nil:
				errs = append(errs, err)
			default:
				if c.Owner == "" && c.Repo == "" {
					c.Owner, c.Repo = owner, repo
				}
				if c.URL == "" {
					c.URL = loc.baseURL(prefix)
				}
			}
		}
	}
	if (c.Owner == "") != (c.Repo == "") {
		errs = append(errs, errors.New("the forge's owner and repository are set one without the other"))
	}
	return c, errors.Join(errs...)
}

// New returns the client of cfg's forge (after Resolve), making its API
// calls with hc (nil: a plain http.Client).
func New(cfg Config, hc *http.Client) (Forge, error) {
	cfg, err := cfg.Resolve()
	if err != nil {
		return nil, err
	}
	if hc == nil {
		hc = &http.Client{}
	}
	switch cfg.Type {
	case TypeGitea:
		return newGitea(cfg, hc)
	case TypeGitHub:
		return newGitHub(cfg, hc)
	case TypeGitLab:
		return newGitLab(cfg, hc)
	}
	return nil, fmt.Errorf("source.forge.type %q is not one of gitea, github, gitlab", cfg.Type)
}

// repoLocation is a git remote taken apart.
type repoLocation struct {
	scheme   string // http or https; https for SSH remotes
	host     string // without port
	hostPort string // host[:port] of an http(s) remote; host of an SSH one
	path     []string
}

// scpLike is git's scp-like syntax: [user@]host:path, the host without a
// slash before the colon.
var scpLike = regexp.MustCompile(`^(?:[^@/]+@)?([^:/]+):(.+)$`)

// parseRepoURL takes a git remote apart: http(s)://, ssh:// and
// git@host:path; a trailing .git and slashes are dropped.
func parseRepoURL(raw string) (repoLocation, error) {
	if raw == "" {
		return repoLocation{}, errors.New("source.uri is empty")
	}
	var loc repoLocation
	var p string
	if m := scpLike.FindStringSubmatch(raw); m != nil && !strings.Contains(raw, "://") {
		loc = repoLocation{scheme: "https", host: m[1], hostPort: m[1]}
		p = m[2]
	} else {
		u, err := url.Parse(raw)
		if err != nil || (u.Host == "" && (u.Scheme == "http" || u.Scheme == "https" || u.Scheme == "ssh")) {
			return repoLocation{}, fmt.Errorf("source.uri %q is not a git URL (https://host/owner/repo.git, ssh://git@host/owner/repo.git or git@host:owner/repo.git)", redactURL(raw))
		}
		switch u.Scheme {
		case "http", "https":
			loc = repoLocation{scheme: u.Scheme, host: u.Hostname(), hostPort: u.Host}
		case "ssh":
			loc = repoLocation{scheme: "https", host: u.Hostname(), hostPort: u.Hostname()}
		default:
			return repoLocation{}, fmt.Errorf("source.uri %q: a forge is reached over http(s) or ssh, not %s", redactURL(raw), u.Scheme)
		}
		p = u.Path
	}
	p = strings.TrimSuffix(strings.Trim(p, "/"), ".git")
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			loc.path = append(loc.path, s)
		}
	}
	if len(loc.path) < 2 {
		return repoLocation{}, fmt.Errorf("source.uri %q names no owner/repository", redactURL(raw))
	}
	return loc, nil
}

// split is the owner, the repository and the path before them, as the
// forge type reads a remote's path: GitLab's owner is every group, the
// others' owner is one name (what comes before is where the forge is
// served).
func (l repoLocation) split(typ string) (owner, repo string, prefix []string, err error) {
	n := len(l.path)
	repo = l.path[n-1]
	if typ == TypeGitLab {
		return strings.Join(l.path[:n-1], "/"), repo, nil, nil
	}
	if typ == TypeGitHub && n != 2 {
		return "", "", nil, fmt.Errorf("source.uri's path %q is not owner/repository, as GitHub's are", strings.Join(l.path, "/"))
	}
	return l.path[n-2], repo, l.path[:n-2], nil
}

// baseURL is the forge's base URL: scheme, host and the path prefix.
func (l repoLocation) baseURL(prefix []string) string {
	u := l.scheme + "://" + l.hostPort
	if len(prefix) > 0 {
		u += "/" + strings.Join(prefix, "/")
	}
	return u
}

// redactURL drops the userinfo of a URL, which may hold a password.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		if u.User != nil {
			u.User = nil
			return u.String()
		}
		return raw
	}
	if i := strings.Index(raw, "://"); i >= 0 {
		if j := strings.LastIndex(raw, "@"); j > i {
			return raw[:i+3] + raw[j+1:]
		}
	}
	return raw
}
