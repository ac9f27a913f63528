package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/credentials"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/gitops-resource/gitops-resource/pkg/retry"
)

// Option configures Resolve.
type Option func(*options) error

type options struct {
	username, password string
	dockerConfig       string
	insecure           bool
	log                io.Writer
	backoff            retry.Backoff
}

// Defaults: anonymous access, logs discarded, 5 attempts with jittered
// backoff from 200ms to 3s.
func defaults() options {
	return options{log: io.Discard, backoff: retry.Backoff{Attempts: 5, Base: 200 * time.Millisecond, Max: 3 * time.Second}}
}

// WithBasicAuth authenticates with a username and password (or token).
// It cannot be combined with WithDockerConfig.
func WithBasicAuth(username, password string) Option {
	return func(o *options) error {
		if username == "" && password == "" {
			return nil
		}
		if o.dockerConfig != "" {
			return errors.New("give registry credentials or a docker config, not both")
		}
		o.username, o.password = username, password
		return nil
	}
}

// WithDockerConfig authenticates with the credentials a Docker config.json
// (its content, not its path) holds for the registry's host.
func WithDockerConfig(content string) Option {
	return func(o *options) error {
		if content == "" {
			return nil
		}
		if o.username != "" || o.password != "" {
			return errors.New("give registry credentials or a docker config, not both")
		}
		o.dockerConfig = content
		return nil
	}
}

// WithInsecure speaks plain HTTP to the registry wherever it is; without
// it only registries on loopback are spoken to over plain HTTP.
func WithInsecure(insecure bool) Option {
	return func(o *options) error { o.insecure = insecure; return nil }
}

// WithLog sends retry notices to w (default: discarded).
func WithLog(w io.Writer) Option {
	return func(o *options) error { o.log = w; return nil }
}

// WithRetry sets the number of attempts and the first delay between them
// (default: 5 attempts from 200ms).
func WithRetry(attempts int, base time.Duration) Option {
	return func(o *options) error {
		if attempts < 1 {
			return errors.New("retry attempts must be at least 1")
		}
		o.backoff.Attempts, o.backoff.Base = attempts, base
		return nil
	}
}

// NotFoundError means the registry has no such tag (or repository).
type NotFoundError struct{ Repository, Tag string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("tag %s of %s does not exist in the registry", e.Tag, e.Repository)
}

// ValidateDockerConfig checks that content is a Docker config.json whose
// auths decode.
func ValidateDockerConfig(content string) error {
	_, err := loadDockerConfig(content)
	return err
}

// Resolve returns the digest (sha256:...) the registry serves for repo:tag
// (Docker Hub's short names allowed): NewRepository's requests, for one tag,
// with its errors (*NotFoundError, or one AccessDenied recognises). The
// manifest is asked for with HEAD, and with GET when the registry does not
// answer HEAD. Registries on localhost or 127.0.0.1, and every registry
// WithInsecure(true), are spoken to over plain HTTP.
func Resolve(ctx context.Context, repo, tag string, opts ...Option) (string, error) {
	r, err := newRepository(ctx, repo, false, opts)
	if err != nil {
		return "", fmt.Errorf("resolve %s:%s: %w", repo, tag, err)
	}
	return r.Resolve(tag)
}

func resolveOnce(ref name.Tag, ropts []remote.Option) (string, error) {
	desc, err := remote.Head(ref, ropts...)
	if err == nil {
		return desc.Digest.String(), nil
	}
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusMethodNotAllowed || te.StatusCode == http.StatusNotImplemented) {
		full, gerr := remote.Get(ref, ropts...)
		if gerr != nil {
			return "", gerr
		}
		return full.Digest.String(), nil
	}
	return "", err
}

func isNotFound(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) {
		return false
	}
	if te.StatusCode == http.StatusNotFound {
		return true
	}
	for _, d := range te.Errors {
		if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
			return true
		}
	}
	return false
}

// transient errors may go differently next time: 429, a 5xx, a timeout.
func transient(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode == http.StatusTooManyRequests || te.StatusCode >= 500
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (o options) authenticator(host string) (authn.Authenticator, error) {
	if o.username != "" || o.password != "" {
		return authn.FromConfig(authn.AuthConfig{Username: o.username, Password: o.password}), nil
	}
	if o.dockerConfig == "" {
		return authn.Anonymous, nil
	}
	cfg, err := loadDockerConfig(o.dockerConfig)
	if err != nil {
		return nil, err
	}
	// The auths only: a credsStore or credHelpers in the content would run
	// a docker-credential-* program.
	for key, a := range cfg.AuthConfigs {
		if registryHost(key) != registryHost(host) {
			continue
		}
		if a.IdentityToken != "" {
			return authn.FromConfig(authn.AuthConfig{IdentityToken: a.IdentityToken}), nil
		}
		return authn.FromConfig(authn.AuthConfig{Username: a.Username, Password: a.Password}), nil
	}
	return authn.Anonymous, nil
}

// loadDockerConfig reads a config.json with docker's own loader, which
// decodes each auth ("user:password" in base64) into Username and Password.
func loadDockerConfig(content string) (*configfile.ConfigFile, error) {
	cfg := configfile.New("")
	if err := cfg.LoadFromReader(strings.NewReader(content)); err != nil {
		return nil, errors.New("docker_config is not a Docker config.json: expected {\"auths\": {\"host\": {\"auth\": \"<base64 of user:password>\"}}}")
	}
	return cfg, nil
}

// registryHost normalises a docker config key ("https://index.docker.io/v1/",
// "ghcr.io") to a host.
func registryHost(key string) string {
	s := credentials.ConvertToHostname(key)
	switch s {
	case "index.docker.io", "registry-1.docker.io", "docker.io":
		return name.DefaultRegistry
	}
	return strings.ToLower(s)
}

// isLoopback reports whether repo's registry is localhost or a loopback IP.
func isLoopback(repo string) bool {
	host, _, _ := strings.Cut(repo, "/")
	if !strings.ContainsAny(host, ".:") && host != "localhost" {
		return false
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
