package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/gitops-resource/gitops-resource/pkg/retry"
)

// Repository is one repository of a registry with the options every
// request to it takes: the credentials, plain HTTP where asked (and on
// loopback), and the one retry policy.
type Repository struct {
	ctx      context.Context
	repo     name.Repository
	nameOpts []name.Option
	o        options
	ropts    []remote.Option
}

// NewRepository checks repo ("ghcr.io/acme/web-manifests", no tag, the
// registry named) and the options; it makes no request.
func NewRepository(ctx context.Context, repo string, opts ...Option) (*Repository, error) {
	return newRepository(ctx, repo, true, opts)
}

// newRepository is NewRepository; without strict, a repository without a
// registry is Docker Hub's.
func newRepository(ctx context.Context, repo string, strict bool, opts []Option) (*Repository, error) {
	o := defaults()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	var nameOpts []name.Option
	if o.insecure || isLoopback(repo) {
		nameOpts = append(nameOpts, name.Insecure)
	}
	check := nameOpts
	if strict {
		check = append(slices.Clone(nameOpts), name.StrictValidation)
	}
	r, err := name.NewRepository(repo, check...)
	if err != nil {
		return nil, fmt.Errorf("repository %q: %w", repo, err)
	}
	auth, err := o.authenticator(r.RegistryStr())
	if err != nil {
		return nil, err
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuth(auth),
		remote.WithRetryBackoff(remote.Backoff{Steps: 1}), remote.WithRetryStatusCodes(),
		remote.WithRetryPredicate(func(error) bool { return false })} // o.backoff is the one retry policy
	return &Repository{ctx: ctx, repo: r, nameOpts: nameOpts, o: o, ropts: ropts}, nil
}

// Name is the repository as given, normalised ("127.0.0.1:5000/web").
func (r *Repository) Name() string { return r.repo.Name() }

// Host is the registry's host.
func (r *Repository) Host() string { return r.repo.RegistryStr() }

// Tags lists the repository's tags; a repository that does not exist yet
// has none.
func (r *Repository) Tags() ([]string, error) {
	var tags []string
	err := r.do("list the tags of "+r.Name(), func() (err error) {
		tags, err = remote.List(r.repo, r.ropts...)
		return err
	})
	if isNotFound(err) {
		return nil, nil
	}
	return tags, err
}

// Resolve returns the digest the registry serves for tag, or a
// *NotFoundError.
func (r *Repository) Resolve(tag string) (string, error) {
	ref, err := name.NewTag(r.repo.Name()+":"+tag, r.nameOpts...)
	if err != nil {
		return "", fmt.Errorf("resolve %s:%s: %w", r.Name(), tag, err)
	}
	var digest string
	err = r.do(fmt.Sprintf("resolve %s:%s", r.Name(), tag), func() (err error) {
		digest, err = resolveOnce(ref, r.ropts)
		return err
	})
	if isNotFound(err) {
		return "", &NotFoundError{Repository: r.Name(), Tag: tag}
	}
	return digest, err
}

// Image reads the manifest of the image at digest ("sha256:..."); its
// layers are read when asked for, through the same options.
func (r *Repository) Image(digest string) (v1.Image, error) {
	var img v1.Image
	err := r.do(fmt.Sprintf("read %s@%s", r.Name(), digest), func() (err error) {
		img, err = remote.Image(r.repo.Digest(digest), r.ropts...)
		return err
	})
	return img, err
}

// Write pushes img (its blobs, then its manifest) as tag.
func (r *Repository) Write(tag string, img v1.Image) error {
	return r.do(fmt.Sprintf("push %s:%s", r.Name(), tag), func() error {
		return remote.Write(r.repo.Tag(tag), img, r.ropts...)
	})
}

// Tag points tag at img, which is already in the repository: only the
// manifest is written.
func (r *Repository) Tag(tag string, img v1.Image) error {
	return r.do(fmt.Sprintf("tag %s:%s", r.Name(), tag), func() error {
		return remote.Tag(r.repo.Tag(tag), img, r.ropts...)
	})
}

// do runs one request under the retry policy: 429, 5xx and timeouts are
// retried, each retry logged; what is left is wrapped with what was done
// and at which host.
func (r *Repository) do(what string, fn func() error) error {
	err := r.o.backoff.Do(r.ctx, r.o.log, what+" at "+r.Host(), func() error {
		if err := fn(); err != nil {
			if transient(err) && !isNotFound(err) {
				return retry.Retryable(err)
			}
			return err
		}
		return nil
	})
	if err == nil {
		return nil
	}
	if isNotFound(err) {
		return fmt.Errorf("%s at %s: not found: %w", what, r.Host(), err)
	}
	if AccessDenied(err) {
		var te *transport.Error
		errors.As(err, &te)
		return &AccessDeniedError{What: what, Host: r.Host(), Status: te.StatusCode, err: err}
	}
	return fmt.Errorf("%s at %s: %w", what, r.Host(), err)
}

// AccessDeniedError is the registry refusing the credentials (401) or the
// access (403). Its text names neither credential.
type AccessDeniedError struct {
	What, Host string
	Status     int
	err        error
}

func (e *AccessDeniedError) Error() string {
	return fmt.Sprintf("%s at %s: access denied (%d)", e.What, e.Host, e.Status)
}

func (e *AccessDeniedError) Unwrap() error { return e.err }

// AccessDenied reports whether err is a 401 or 403 from the registry.
func AccessDenied(err error) bool {
	var ad *AccessDeniedError
	if errors.As(err, &ad) {
		return true
	}
	var te *transport.Error
	return errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden)
}

// IsNotFound reports whether err is the registry saying the tag, manifest
// or repository does not exist.
func IsNotFound(err error) bool {
	var nf *NotFoundError
	return errors.As(err, &nf) || isNotFound(err)
}
