package gitrepo_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/pkg/gitrepo"
	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

// armoredPrivate exports entities as gpg --armor --export-secret-keys does.
func armoredPrivate(t *testing.T, entities ...*openpgp.Entity) string {
	t.Helper()
	var b strings.Builder
	w, err := armor.Encode(&b, openpgp.PrivateKeyType, nil)
	require.NoError(t, err)
	for _, e := range entities {
		require.NoError(t, e.SerializePrivate(w, nil))
	}
	require.NoError(t, w.Close())
	return b.String()
}

// TestParseSigningKey covers the keys the end-to-end tests (made by gpg and
// ssh-keygen, pkg/semver/sign_e2e_test.go) do not: what they cannot make
// easily, each refused as a config error that names the field and carries
// no byte of the key.
func TestParseSigningKey(t *testing.T) {
	t.Parallel()
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA}
	one, err := openpgp.NewEntity("One", "", "one@example.com", cfg)
	require.NoError(t, err)
	two, err := openpgp.NewEntity("Two", "", "two@example.com", cfg)
	require.NoError(t, err)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	weakPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(weak)}))

	tests := []struct {
		name, key, passphrase string
		want                  string // "" means the key signs
	}{
		{name: "one OpenPGP key", key: armoredPrivate(t, one)},
		{name: "a passphrase for a key that has none is not needed", key: armoredPrivate(t, one), passphrase: "unused"},
		{name: "two OpenPGP keys", key: armoredPrivate(t, one, two), want: "source.signing_key holds 2 OpenPGP keys: give the one to sign with"},
		{name: "broken armour", key: "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nnot base64 at all\n-----END PGP PRIVATE KEY BLOCK-----\n", want: "source.signing_key: the OpenPGP key does not parse"},
		{name: "PEM RSA 1024", key: weakPEM, want: "source.signing_key is a 1024-bit RSA key: use at least 2048 bits"},
		{name: "empty PEM", key: "-----BEGIN OPENSSH PRIVATE KEY-----\n-----END OPENSSH PRIVATE KEY-----\n", want: "source.signing_key: the SSH private key does not parse"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := gitrepo.ParseSigningKey(tc.key, tc.passphrase)
			if tc.want == "" {
				require.NoError(t, err)
				require.Len(t, s.Fingerprint(), 40)
				require.Contains(t, s.String(), s.Fingerprint())
				return
			}
			require.ErrorContains(t, err, tc.want)
			require.True(t, resource.IsConfigError(err), "a config error: terminal, never retried")
			for _, line := range strings.Split(tc.key, "\n") {
				if len(line) > 16 && !strings.HasPrefix(line, "-----") {
					require.NotContains(t, err.Error(), line, "no byte of the key")
				}
			}
		})
	}
}
