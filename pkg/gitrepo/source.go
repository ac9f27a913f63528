package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

// Source is the git part of a kind's source configuration, shared by every
// kind that reads or writes a repository.
type Source struct {
	URI                  string            `json:"uri"`
	Branch               string            `json:"branch"`
	PrivateKey           string            `json:"private_key"`
	PrivateKeyPassphrase string            `json:"private_key_passphrase"`
	KnownHosts           string            `json:"known_hosts"`
	Username             string            `json:"username"`
	Password             string            `json:"password"`
	GitUser              string            `json:"git_user"`
	SkipSSLVerification  bool              `json:"skip_ssl_verification"`
	Timeout              resource.Duration `json:"timeout"`
	// SigningKey signs every commit and tag out pushes: an ASCII-armoured
	// OpenPGP private key or an OpenSSH private key (ParseSigningKey).
	SigningKey           string `json:"signing_key"`
	SigningKeyPassphrase string `json:"signing_key_passphrase"`

	// signer is SigningKey parsed by LoadSigner.
	signer *Signer
}

// DefaultTimeout bounds every network operation of a step.
const DefaultTimeout = 5 * time.Minute

// DefaultAuthor signs commits when source.git_user is not set.
var DefaultAuthor = Signature{Name: "gitops-resource", Email: "gitops-resource@localhost"}

// Secrets registers the credential values with the redactor: the fields,
// and a password written in source.uri, also when the URI does not parse.
func (s Source) Secrets(r *resource.Redactor) {
	r.Add(s.PrivateKey, s.PrivateKeyPassphrase, s.SigningKey, s.SigningKeyPassphrase)
	r.AddBasicAuth(s.Username, s.Password)
	if user, pass := resource.URLUserinfo(s.URI); pass != "" {
		r.AddBasicAuth(user, pass)
		if plain, err := url.PathUnescape(pass); err == nil && plain != pass {
			r.AddBasicAuth(user, plain) // what go-git sends once the URI parses
		}
	}
}

// Validate reports every problem with the git fields at once.
func (s Source) Validate(kind string) error {
	var errs []error
	if s.URI == "" {
		errs = append(errs, resource.ConfigErrorf("source.uri is required for kind %s", kind))
	} else if _, err := parseEndpoint(s.URI); err != nil {
		errs = append(errs, resource.ConfigErrorf("source.uri: %v", err))
	}
	if s.Branch == "" {
		errs = append(errs, resource.ConfigErrorf("source.branch is required for kind %s", kind))
	} else if err := ValidBranch(s.Branch); err != nil {
		errs = append(errs, resource.ConfigErrorf("source.branch %v", err))
	}
	if _, err := s.Author(); err != nil {
		errs = append(errs, err)
	}
	if s.PrivateKeyPassphrase != "" && s.PrivateKey == "" {
		errs = append(errs, resource.ConfigErrorf("source.private_key_passphrase is set but source.private_key is not"))
	}
	if s.SigningKeyPassphrase != "" && s.SigningKey == "" {
		errs = append(errs, resource.ConfigErrorf("source.signing_key_passphrase is set but source.signing_key is not"))
	}
	return errors.Join(errs...)
}

// LoadSigner parses and checks signing_key (ParseSigningKey), so that the
// clients of this source sign what they push. Only the verb that writes
// calls it: check and in never need the key, and a key that expires does not
// stop them. Without signing_key it does nothing.
func (s *Source) LoadSigner() error {
	if strings.TrimSpace(s.SigningKey) == "" {
		return nil
	}
	signer, err := ParseSigningKey(s.SigningKey, s.SigningKeyPassphrase)
	s.signer = signer
	return err
}

// Author parses git_user, "Name <email>" or a bare "email".
func (s Source) Author() (Signature, error) {
	if strings.TrimSpace(s.GitUser) == "" {
		return DefaultAuthor, nil
	}
	addr, err := mail.ParseAddress(s.GitUser)
	if err != nil {
		return Signature{}, resource.ConfigErrorf("source.git_user must look like \"Name <email>\" or \"email\"")
	}
	name := addr.Name
	if name == "" {
		name, _, _ = strings.Cut(addr.Address, "@")
	}
	return Signature{Name: name, Email: addr.Address}, nil
}

// Client opens the remote with these credentials.
func (s Source) Client(log io.Writer, opts ...Option) (*Client, error) {
	c, err := New(s.URI, Auth{
		Username:      s.Username,
		Password:      s.Password,
		PrivateKey:    s.PrivateKey,
		Passphrase:    s.PrivateKeyPassphrase,
		KnownHosts:    s.KnownHosts,
		SkipTLSVerify: s.SkipSSLVerification,
	}, append([]Option{WithLog(log), WithSigner(s.signer)}, opts...)...)
	if err != nil {
		return nil, resource.ConfigErrorf("%v", err)
	}
	return c, nil
}

// TimeoutOr is the overall deadline for the step's network work.
func (s Source) TimeoutOr() time.Duration { return s.Timeout.Or(DefaultTimeout) }

// Open connects as the source says, for at most TimeoutOr, and returns the
// client, the step's context, and the func that cancels it and closes the
// client.
func (s Source) Open(ctx context.Context, log io.Writer, opts ...Option) (*Client, context.Context, func(), error) {
	c, err := s.Client(log, opts...)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.TimeoutOr())
	return c, ctx, func() { cancel(); c.Close() }, nil
}

// CommitMessage appends git trailers to a message, after a blank line.
func CommitMessage(subject string, trailers []resource.Trailer) string {
	var b strings.Builder
	b.WriteString(strings.TrimRight(subject, "\n"))
	b.WriteString("\n")
	if len(trailers) > 0 {
		b.WriteString("\n")
		for _, t := range trailers {
			fmt.Fprintf(&b, "%s: %s\n", t.Key, t.Value)
		}
	}
	return b.String()
}

// HasTrailer reports whether a commit message carries trailer key: value.
func HasTrailer(message, key, value string) bool {
	for _, line := range strings.Split(message, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), key) && strings.TrimSpace(v) == value {
			return true
		}
	}
	return false
}
