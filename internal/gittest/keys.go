package gittest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// ClientKey is an unencrypted OpenSSH private key (PEM, ed25519) that the SSH
// server accepts.
func (s *Server) ClientKey() []byte {
	b, err := ssh.MarshalPrivateKey(s.clientPriv, "gittest")
	if err != nil {
		panic(fmt.Sprintf("gittest: marshal client key: %v", err))
	}
	return pem.EncodeToMemory(b)
}

// ClientKeyWithPassphrase is ClientKey encrypted with passphrase (bcrypt
// KDF, as ssh-keygen does: parsing it takes a moment, seconds under -race).
func (s *Server) ClientKeyWithPassphrase(passphrase string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.encryptedKeys[passphrase]; ok {
		return k
	}
	b, err := ssh.MarshalPrivateKeyWithPassphrase(s.clientPriv, "gittest", []byte(passphrase))
	if err != nil {
		panic(fmt.Sprintf("gittest: marshal client key: %v", err))
	}
	k := pem.EncodeToMemory(b)
	s.encryptedKeys[passphrase] = k
	return k
}

// ClientPublicKey is the public half of ClientKey, in authorized_keys format.
func (s *Server) ClientPublicKey() string {
	return string(ssh.MarshalAuthorizedKey(s.clientKey.PublicKey()))
}

// Authorize makes the SSH server accept the private key privatePEM (as made
// by NewKey) too. It may be called while clients connect.
func (s *Server) Authorize(t testing.TB, privatePEM []byte) {
	t.Helper()
	signer, err := ssh.ParsePrivateKey(privatePEM)
	if err != nil {
		t.Fatalf("gittest: authorize key: %v", err)
	}
	s.mu.Lock()
	s.authorized[string(signer.PublicKey().Marshal())] = true
	s.mu.Unlock()
}

// NewKey generates an unencrypted OpenSSH private key (PEM, ed25519) that no
// server accepts until Authorize is called with it: a wrong key.
func NewKey(t testing.TB) []byte {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("gittest: generate key: %v", err)
	}
	b, err := ssh.MarshalPrivateKey(priv, "gittest")
	if err != nil {
		t.Fatalf("gittest: marshal key: %v", err)
	}
	return pem.EncodeToMemory(b)
}

// HostKey is the SSH server's public host key.
func (s *Server) HostKey() ssh.PublicKey { return s.hostKey.PublicKey() }

// HostKeyFingerprint is the host key's fingerprint as OpenSSH prints it,
// "SHA256:...".
func (s *Server) HostKeyFingerprint() string {
	return ssh.FingerprintSHA256(s.hostKey.PublicKey())
}

// KnownHosts is a known_hosts line pinning the SSH server's host key,
// "[127.0.0.1]:PORT ssh-ed25519 AAAA...\n", as OpenSSH and go-git accept it.
func (s *Server) KnownHosts() string {
	return knownhosts.Line([]string{knownhosts.Normalize(s.SSHAddr())}, s.hostKey.PublicKey()) + "\n"
}

// KnownHostsMismatch is a known_hosts line for the SSH server's address with
// a freshly generated key that is not the server's (newline-terminated):
// pinning it must fail.
func (s *Server) KnownHostsMismatch() string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(fmt.Sprintf("gittest: generate key: %v", err))
	}
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		panic(fmt.Sprintf("gittest: %v", err))
	}
	return knownhosts.Line([]string{knownhosts.Normalize(s.SSHAddr())}, key) + "\n"
}
