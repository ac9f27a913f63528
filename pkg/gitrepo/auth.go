package gitrepo

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"

	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

// Auth holds the credentials for one remote. Which fields apply depends on
// the URL's scheme: Username/Password for HTTP(S), the key fields for SSH.
type Auth struct {
	Username      string
	Password      string
	PrivateKey    string
	Passphrase    string
	KnownHosts    string
	SkipTLSVerify bool
}

// endpoint is a parsed remote URL with the pieces error messages need.
type endpoint struct {
	raw    string
	ep     *transport.Endpoint
	isSSH  bool
	scheme string
}

// host is the remote's host:port, for messages.
func (e endpoint) host() string {
	if e.ep.Port != 0 {
		return net.JoinHostPort(e.ep.Host, fmt.Sprint(e.ep.Port))
	}
	return e.ep.Host
}

// String is the URL without credentials.
func (e endpoint) String() string {
	u, err := url.Parse(e.raw)
	switch {
	case err != nil: // the scp-like form user@host:path
		return resource.RedactURL(e.raw)
	case u.User == nil:
		return e.raw
	}
	u.User = nil
	return u.String()
}

func parseEndpoint(raw string) (endpoint, error) {
	if strings.TrimSpace(raw) == "" {
		return endpoint{}, errors.New("the repository URL is empty")
	}
	ep, err := transport.NewEndpoint(raw)
	if err != nil {
		return endpoint{}, fmt.Errorf("%q is not a git URL (use https://host/org/repo.git or git@host:org/repo.git, with special characters of a password %%-escaped)", resource.RedactURL(raw))
	}
	switch ep.Protocol {
	case "ssh", "http", "https":
	case "file":
		if err := localGitOnPath(); err != nil {
			return endpoint{}, fmt.Errorf("%s is a local repository: %w", resource.RedactURL(raw), err)
		}
		// A plain path becomes the file:// URL of its absolute path (go-git
		// made it absolute). go-git's push treats a plain path apart: it
		// reads the directory as a bare repository's object store to learn
		// what the remote has. A non-bare repository keeps its objects in
		// .git, and one made by git clone --shared borrows them through
		// objects/info/alternates, so that read finds nothing; the push then
		// walks our shallow fetch past its edge and fails with "object not
		// found". As a file:// URL every operation goes through git's own
		// upload-pack and receive-pack, as for file:// itself.
		raw = (&url.URL{Scheme: "file", Path: filepath.ToSlash(ep.Path)}).String()
	default:
		return endpoint{}, fmt.Errorf("git URL scheme %q is not supported: use https:// or ssh", ep.Protocol)
	}
	return endpoint{raw: raw, ep: ep, isSSH: ep.Protocol == "ssh", scheme: ep.Protocol}, nil
}

// localGitOnPath reports whether go-git can reach a local repository: its
// file transport runs git's git-upload-pack and git-receive-pack, found on
// PATH or in the exec path of a git on PATH. The image has no git.
func localGitOnPath() error {
	for _, bin := range []string{"git-upload-pack", "git"} {
		if _, err := exec.LookPath(bin); err == nil {
			return nil
		}
	}
	return errors.New("it is reached through git's git-upload-pack and git-receive-pack, and neither they nor git are on PATH (the gitops-resource image has no git): serve the repository over https:// or ssh://")
}

// authMethod builds the go-git auth for the endpoint. The cleanup removes
// anything written to disk (the known_hosts file, 0600, in a private temp dir).
func (a Auth) authMethod(e endpoint, log io.Writer) (transport.AuthMethod, func(), error) {
	nothing := func() {}
	if !e.isSSH {
		if a.Username == "" && a.Password == "" {
			return nil, nothing, nil
		}
		user := a.Username
		if user == "" {
			user = "git" // a token as password works with any non-empty user
		}
		return &http.BasicAuth{Username: user, Password: a.Password}, nothing, nil
	}
	if a.PrivateKey == "" {
		return nil, nothing, fmt.Errorf("%s is an SSH URL, so source.private_key is required", e)
	}
	user := e.ep.User
	if user == "" {
		user = "git"
	}
	keys, err := gitssh.NewPublicKeys(user, []byte(a.PrivateKey), a.Passphrase)
	if err != nil {
		return nil, nothing, describeKeyError(err, a.Passphrase != "")
	}
	hostKey, algos, cleanup, err := a.hostKeyCallback(e, log)
	if err != nil {
		return nil, nothing, err
	}
	keys.HostKeyCallback = hostKey
	return &sshAuth{PublicKeys: keys, algorithms: algos}, cleanup, nil
}

func describeKeyError(err error, hasPassphrase bool) error {
	var missing *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing):
		return errors.New("source.private_key is encrypted: set source.private_key_passphrase")
	case errors.Is(err, x509IncorrectPassword) || strings.Contains(err.Error(), "decryption password incorrect"):
		return errors.New("source.private_key_passphrase does not decrypt source.private_key")
	case hasPassphrase:
		return errors.New("source.private_key could not be decrypted or parsed: check the key and source.private_key_passphrase")
	}
	return errors.New("source.private_key is not a valid private key in PEM or OpenSSH format")
}

var x509IncorrectPassword = errors.New("x509: decryption password incorrect")

// sshAuth adds the host key algorithms known_hosts pins, so the server
// offers the key type that can be checked.
type sshAuth struct {
	*gitssh.PublicKeys
	algorithms []string
}

func (s *sshAuth) ClientConfig() (*ssh.ClientConfig, error) {
	c, err := s.PublicKeys.ClientConfig()
	if err != nil {
		return nil, err
	}
	if len(s.algorithms) > 0 {
		c.HostKeyAlgorithms = s.algorithms
	}
	return c, nil
}

// ErrHostKeyMismatch means the server's key is not the one pinned.
var ErrHostKeyMismatch = errors.New("ssh host key does not match source.known_hosts")

func (a Auth) hostKeyCallback(e endpoint, log io.Writer) (ssh.HostKeyCallback, []string, func(), error) {
	if strings.TrimSpace(a.KnownHosts) == "" {
		return func(host string, _ net.Addr, key ssh.PublicKey) error {
			fmt.Fprintf(log, "warning: accepting the ssh host key of %s without checking it (%s %s); pin it with source.known_hosts\n",
				host, key.Type(), Fingerprint(key))
			return nil
		}, nil, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "gitops-known-hosts-")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("write known_hosts: %w", err)
	}
	cleanup := func() { os.RemoveAll(dir) }
	file := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(file, []byte(a.KnownHosts+"\n"), 0o600); err != nil {
		cleanup()
		return nil, nil, nil, fmt.Errorf("write known_hosts: %w", err)
	}
	db, err := knownhosts.NewDB(file)
	if err != nil {
		cleanup()
		return nil, nil, nil, fmt.Errorf("source.known_hosts is not in known_hosts format: %v", err)
	}
	addr := e.host()
	if e.ep.Port == 0 {
		addr = net.JoinHostPort(e.ep.Host, "22")
	}
	check := db.HostKeyCallback()
	cb := func(host string, remote net.Addr, key ssh.PublicKey) error {
		err := check(host, remote, key)
		if err == nil {
			return nil
		}
		if knownhosts.IsHostKeyChanged(err) {
			return fmt.Errorf("%w: %s presented %s %s", ErrHostKeyMismatch, e.host(), key.Type(), Fingerprint(key))
		}
		if knownhosts.IsHostUnknown(err) {
			return fmt.Errorf("%w: %s is not listed in it (it presented %s %s)", ErrHostKeyMismatch, e.host(), key.Type(), Fingerprint(key))
		}
		return fmt.Errorf("check ssh host key of %s: %w", e.host(), err)
	}
	return cb, db.HostKeyAlgorithms(addr), cleanup, nil
}

// Fingerprint is the OpenSSH SHA256 fingerprint of a public key.
func Fingerprint(key ssh.PublicKey) string {
	sum := sha256.Sum256(key.Marshal())
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}
