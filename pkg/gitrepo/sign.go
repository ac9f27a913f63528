package gitrepo

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/crypto/ssh"

	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

// Signer signs the commits and tags a Snapshot makes, as git commit -S and
// git tag -s do: with an OpenPGP key (gpg.format=openpgp) or an SSH key in
// git's sshsig format (gpg.format=ssh). Make one with ParseSigningKey.
type Signer struct {
	sign func(payload []byte) (string, error)
	// fingerprint is what gpg or ssh-keygen -l prints for the key.
	fingerprint string
	// desc names the key in the log: its kind, fingerprint and user ID.
	desc string
}

// Fingerprint is the key's fingerprint as gpg (40 hex digits of the primary
// key) or ssh-keygen -l (SHA256:...) prints it.
func (s *Signer) Fingerprint() string { return s.fingerprint }

// String names the key for a log line; it holds nothing secret.
func (s *Signer) String() string { return s.desc }

// WithSigner makes the snapshots Update applies edits to sign every commit
// and tag they make (default: unsigned).
func WithSigner(s *Signer) Option { return func(c *Client) { c.signer = s } }

// minRSABits is the smallest RSA key that may sign: NIST's floor, and what
// ssh-keygen and gpg make by default at the least.
const minRSABits = 2048

// ParseSigningKey reads an ASCII-armoured OpenPGP private key or an OpenSSH
// (or PEM) private key, told apart by the key itself, decrypting it with
// passphrase when it is encrypted, and checks it can sign now. Its errors are
// config errors naming source.signing_key or source.signing_key_passphrase
// and the problem, never the key.
func ParseSigningKey(key, passphrase string) (*Signer, error) {
	key = strings.TrimSpace(key)
	switch {
	case strings.Contains(key, "-----BEGIN PGP PRIVATE KEY BLOCK-----"):
		return parseOpenPGPKey(key, passphrase)
	case strings.Contains(key, "-----BEGIN PGP PUBLIC KEY BLOCK-----"):
		return nil, resource.ConfigErrorf("source.signing_key is an OpenPGP public key: signing needs the private key (gpg --armor --export-secret-keys KEYID)")
	case strings.Contains(key, "-----BEGIN ") && strings.Contains(key, "PRIVATE KEY-----"):
		return parseSSHKey(key, passphrase)
	}
	if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(key)); err == nil {
		return nil, resource.ConfigErrorf("source.signing_key is an SSH public key: signing needs the private key (the file without .pub)")
	}
	return nil, resource.ConfigErrorf("source.signing_key is neither an ASCII-armoured OpenPGP private key nor an OpenSSH private key: give the output of gpg --armor --export-secret-keys KEYID, or the content of an SSH private key file")
}

func errEncrypted() error {
	return resource.ConfigErrorf("source.signing_key is encrypted: set source.signing_key_passphrase")
}

func errWrongPassphrase() error {
	return resource.ConfigErrorf("source.signing_key_passphrase does not decrypt source.signing_key")
}

func errWeakRSA(bits int) error {
	return resource.ConfigErrorf("source.signing_key is a %d-bit RSA key: use at least %d bits (or an ed25519 key)", bits, minRSABits)
}

// parseOpenPGPKey picks the key gpg would sign with (the newest valid
// signing subkey, else the primary key), refusing an entity that is revoked
// or expired, and decrypts only that key.
func parseOpenPGPKey(armored, passphrase string) (*Signer, error) {
	entities, err := openpgp.ReadArmoredKeyRing(strings.NewReader(armored))
	if err != nil {
		return nil, resource.ConfigErrorf("source.signing_key: the OpenPGP key does not parse: %v", err)
	}
	if len(entities) != 1 {
		return nil, resource.ConfigErrorf("source.signing_key holds %d OpenPGP keys: give the one to sign with", len(entities))
	}
	e := entities[0]
	fpr := strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
	now := time.Now()
	self, id := e.PrimarySelfSignature()
	switch {
	case e.Revoked(now) || (id != nil && id.Revoked(now)):
		return nil, resource.ConfigErrorf("source.signing_key: OpenPGP key %s is revoked", fpr)
	case self != nil && self.KeyLifetimeSecs != nil && e.PrimaryKey.KeyExpired(self, now):
		expiry := e.PrimaryKey.CreationTime.Add(time.Duration(*self.KeyLifetimeSecs) * time.Second)
		return nil, resource.ConfigErrorf("source.signing_key: OpenPGP key %s expired on %s: extend it (gpg --quick-set-expire) and export it again", fpr, expiry.UTC().Format(time.DateOnly))
	}
	k, ok := e.SigningKey(now)
	if !ok {
		return nil, resource.ConfigErrorf("source.signing_key: OpenPGP key %s has no key that may sign now: each is expired, revoked or not for signing", fpr)
	}
	if k.PrivateKey == nil || k.PrivateKey.Dummy() {
		return nil, resource.ConfigErrorf("source.signing_key: OpenPGP key %s holds no private part for its signing key %X (a stub, e.g. of a key kept on a smartcard)", fpr, k.PublicKey.KeyId)
	}
	if alg := k.PublicKey.PubKeyAlgo; alg == packet.PubKeyAlgoRSA || alg == packet.PubKeyAlgoRSASignOnly {
		if bits, err := k.PublicKey.BitLength(); err == nil && int(bits) < minRSABits {
			return nil, errWeakRSA(int(bits))
		}
	}
	if k.PrivateKey.Encrypted {
		if passphrase == "" {
			return nil, errEncrypted()
		}
		if err := k.PrivateKey.Decrypt([]byte(passphrase)); err != nil {
			return nil, errWrongPassphrase()
		}
	}
	desc := "OpenPGP key " + fpr
	if k.PublicKey.KeyId != e.PrimaryKey.KeyId {
		desc += fmt.Sprintf(" (signing subkey %X)", k.PublicKey.KeyId)
	}
	if id != nil {
		desc += " " + id.Name
	}
	cfg := &packet.Config{SigningKeyId: k.PublicKey.KeyId}
	return &Signer{fingerprint: fpr, desc: desc, sign: func(payload []byte) (string, error) {
		var b strings.Builder
		if err := openpgp.ArmoredDetachSign(&b, e, bytes.NewReader(payload), cfg); err != nil {
			return "", err
		}
		return b.String() + "\n", nil
	}}, nil
}

func parseSSHKey(pemKey, passphrase string) (*Signer, error) {
	raw, err := ssh.ParseRawPrivateKey([]byte(pemKey))
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if passphrase == "" {
			return nil, errEncrypted()
		}
		raw, err = ssh.ParseRawPrivateKeyWithPassphrase([]byte(pemKey), []byte(passphrase))
		if errors.Is(err, x509.IncorrectPasswordError) {
			return nil, errWrongPassphrase()
		}
	}
	if err != nil {
		return nil, resource.ConfigErrorf("source.signing_key: the SSH private key does not parse: %v", err)
	}
	if k, ok := raw.(*rsa.PrivateKey); ok && k.N.BitLen() < minRSABits {
		return nil, errWeakRSA(k.N.BitLen())
	}
	signer, err := ssh.NewSignerFromKey(raw)
	if err != nil {
		return nil, resource.ConfigErrorf("source.signing_key: the SSH key cannot sign: %v", err)
	}
	fpr := ssh.FingerprintSHA256(signer.PublicKey())
	return &Signer{fingerprint: fpr, desc: "SSH " + signer.PublicKey().Type() + " key " + fpr, sign: func(payload []byte) (string, error) {
		return sshsig(signer, payload)
	}}, nil
}

// sshsig signs payload as ssh-keygen -Y sign -n git does (git's
// gpg.format=ssh), in the format of OpenSSH's PROTOCOL.sshsig: the key
// signs the namespace and the SHA-512 of the payload, and the armoured
// signature blob carries the public key, the namespace and that signature.
func sshsig(signer ssh.Signer, payload []byte) (string, error) {
	const magic, namespace, hashAlg = "SSHSIG", "git", "sha512"
	sum := sha512.Sum512(payload)
	signed := append([]byte(magic), ssh.Marshal(struct {
		Namespace, Reserved, HashAlgorithm string
		Hash                               []byte
	}{namespace, "", hashAlg, sum[:]})...)
	var sig *ssh.Signature
	var err error
	if signer.PublicKey().Type() == ssh.KeyAlgoRSA {
		// ssh-rsa (SHA-1) is refused in signatures: rsa-sha2-512, as
		// ssh-keygen uses.
		sig, err = signer.(ssh.AlgorithmSigner).SignWithAlgorithm(rand.Reader, signed, ssh.KeyAlgoRSASHA512)
	} else {
		sig, err = signer.Sign(rand.Reader, signed)
	}
	if err != nil {
		return "", err
	}
	blob := append([]byte(magic), ssh.Marshal(struct {
		Version                            uint32
		PublicKey                          []byte
		Namespace, Reserved, HashAlgorithm string
		Signature                          []byte
	}{1, signer.PublicKey().Marshal(), namespace, "", hashAlg, ssh.Marshal(sig)})...)
	var b strings.Builder
	b.WriteString("-----BEGIN SSH SIGNATURE-----\n")
	enc := base64.StdEncoding.EncodeToString(blob)
	for len(enc) > 70 { // ssh-keygen's line length
		b.WriteString(enc[:70] + "\n")
		enc = enc[70:]
	}
	b.WriteString(enc + "\n-----END SSH SIGNATURE-----\n")
	return b.String(), nil
}

// sign sets the signature of a commit or tag o, made over o encoded
// without it, when the snapshot has a signer. git keeps a commit's in its
// gpgsig header and a tag's after its message; go-git's Encode writes both.
func (s *Snapshot) sign(o encoder) error {
	if s.signer == nil {
		return nil
	}
	var sig *string
	var unsigned func(plumbing.EncodedObject) error
	switch o := o.(type) {
	case *object.Commit:
		sig, unsigned = &o.PGPSignature, o.EncodeWithoutSignature
	case *object.Tag:
		sig, unsigned = &o.PGPSignature, o.EncodeWithoutSignature
	default:
		return nil
	}
	payload := &plumbing.MemoryObject{}
	if err := unsigned(payload); err != nil {
		return err
	}
	r, err := payload.Reader()
	if err != nil {
		return err
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if *sig, err = s.signer.sign(data); err != nil {
		return fmt.Errorf("sign with %s: %w", s.signer, err)
	}
	return nil
}
