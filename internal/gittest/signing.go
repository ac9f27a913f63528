package gittest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// SigningKey is a key made by the real tool (gpg or ssh-keygen) for signed
// writes, and what the git CLI needs to verify signatures made with it.
type SigningKey struct {
	// Private is the private key as a pipeline author pastes it into
	// source.signing_key: `gpg --armor --export-secret-keys`, or an OpenSSH
	// private key file.
	Private string
	// Public is the public half: `gpg --armor --export`, or the .pub line.
	Public string
	// Fingerprint is what gpg (40 hex digits) or ssh-keygen -l (SHA256:...)
	// prints for the key.
	Fingerprint string
	// config and env are the git -c settings and environment under which
	// git verify-commit trusts this key and nothing else.
	config, env []string
	// file is the SSH private key's file, for SignWithGit.
	file string
}

// SignerEmail is the identity the signing keys are made for.
const SignerEmail = "signer@example.com"

// GPGOptions shapes a key NewGPGKey makes.
type GPGOptions struct {
	// Algo is gpg's algorithm name (default ed25519; rsa1024, rsa3072...).
	Algo string
	// Passphrase encrypts the exported private key ("" for none).
	Passphrase string
	// Expired makes a key created in 2020 that expired a day later.
	Expired bool
	// Revoked imports the key's revocation certificate before exporting.
	Revoked bool
}

// NewGPGKey makes an OpenPGP signing key with gpg in a private GNUPGHOME and
// exports it; verifying uses another GNUPGHOME holding only the public key,
// as a consumer that trusts it has. The test fails, saying how to install
// gpg, when it is missing.
func NewGPGKey(t testing.TB, o GPGOptions) SigningKey {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Fatalf("gittest: gpg not found in PATH (install it: apt-get install gnupg; hack/deps.sh does): %v", err)
	}
	if o.Algo == "" {
		o.Algo = "ed25519"
	}
	home := gnupgHome(t)
	pass := []string{"--pinentry-mode", "loopback", "--passphrase", o.Passphrase}
	gen := append([]string{}, pass...)
	expire := "never"
	if o.Expired {
		gen = append(gen, "--faked-system-time", "20200101T000000!")
		expire = "1d"
	}
	gen = append(gen, "--quick-gen-key", "Signer <"+SignerEmail+">", o.Algo, "sign", expire)
	gpg(t, home, nil, gen...)
	fpr := ""
	for _, line := range strings.Split(gpg(t, home, nil, "--with-colons", "--list-secret-keys"), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" && fpr == "" {
			fpr = f[9]
		}
	}
	if fpr == "" {
		t.Fatalf("gittest: gpg made no key")
	}
	if o.Revoked {
		rev, err := os.ReadFile(filepath.Join(home, "openpgp-revocs.d", fpr+".rev"))
		if err != nil {
			t.Fatalf("gittest: read the revocation certificate: %v", err)
		}
		// gpg writes it with the armour's first line disarmed by a ':'.
		gpg(t, home, bytes.Replace(rev, []byte(":-----BEGIN"), []byte("-----BEGIN"), 1), "--import")
	}
	k := SigningKey{
		Private:     gpg(t, home, nil, append(pass, "--armor", "--export-secret-keys", fpr)...),
		Public:      gpg(t, home, nil, "--armor", "--export", fpr),
		Fingerprint: fpr,
	}
	trust := gnupgHome(t)
	gpg(t, trust, []byte(k.Public), "--import")
	k.env = []string{"GNUPGHOME=" + trust}
	return k
}

// gnupgHome is a new GNUPGHOME under the system temp dir (gpg-agent's socket
// path must stay short), whose agent is stopped and which is removed when
// the test ends.
func gnupgHome(t testing.TB) string {
	t.Helper()
	home, err := os.MkdirTemp("", "gnupg")
	if err != nil {
		t.Fatalf("gittest: %v", err)
	}
	t.Cleanup(func() {
		cmd := exec.Command("gpgconf", "--kill", "all")
		cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
		_ = cmd.Run()
		os.RemoveAll(home)
	})
	return home
}

func gpg(t testing.TB, home string, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command("gpg", append([]string{"--batch", "--no-tty", "--quiet"}, args...)...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("gittest: gpg %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// NewSSHSigningKey makes an SSH key with ssh-keygen (typ "ed25519", or
// "rsa" with bits), encrypted with passphrase when it is not "". Verifying
// uses an allowed signers file naming the key for namespace git, as
// gpg.ssh.allowedSignersFile does.
func NewSSHSigningKey(t testing.TB, typ string, bits int, passphrase string) SigningKey {
	t.Helper()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Fatalf("gittest: ssh-keygen not found in PATH (install it: apt-get install openssh-client; hack/deps.sh does): %v", err)
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	args := []string{"-q", "-t", typ, "-N", passphrase, "-C", SignerEmail, "-f", key}
	if bits > 0 {
		args = append(args, "-b", fmt.Sprint(bits))
	}
	runTool(t, "ssh-keygen", args...)
	priv, err := os.ReadFile(key)
	if err != nil {
		t.Fatalf("gittest: %v", err)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatalf("gittest: %v", err)
	}
	fields := strings.Fields(runTool(t, "ssh-keygen", "-l", "-E", "sha256", "-f", key+".pub"))
	signers := filepath.Join(dir, "allowed_signers")
	line := fmt.Sprintf("%s namespaces=\"git\" %s\n", SignerEmail, strings.TrimSpace(string(pub)))
	if err := os.WriteFile(signers, []byte(line), 0o644); err != nil {
		t.Fatalf("gittest: %v", err)
	}
	return SigningKey{
		Private:     string(priv),
		Public:      string(pub),
		Fingerprint: fields[1],
		config:      []string{"-c", "gpg.ssh.allowedSignersFile=" + signers},
		file:        key,
	}
}

func runTool(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("gittest: %s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Verify runs `git verify-commit` or `git verify-tag` (verb) on rev in the
// bare repository, trusting only key, and returns what git and gpg or
// ssh-keygen said (git prints it on stderr), or the error when git refuses
// the signature.
func (s *Server) Verify(repo, verb, rev string, key SigningKey) (string, error) {
	args := append(append([]string{}, key.config...), verb, rev)
	cmd := exec.Command(s.git, args...)
	cmd.Dir = s.repoDir(repo)
	cmd.Env = s.gitEnv(key.env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("git %s %s: %w: %s", verb, rev, err, out.String())
	}
	return out.String(), nil
}

// MustVerify is Verify failing the test when git refuses the signature.
func (s *Server) MustVerify(t testing.TB, repo, verb, rev string, key SigningKey) string {
	t.Helper()
	out, err := s.Verify(repo, verb, rev, key)
	if err != nil {
		t.Fatalf("gittest: %v", err)
	}
	return out
}

// SignWithGit makes a commit as git itself signs one with the SSH key
// (gpg.format=ssh, commit-tree -S) on the tree of branch, without moving the
// branch, and returns the raw commit (git cat-file commit), for comparing
// layouts.
func (s *Server) SignWithGit(t testing.TB, repo, branch string, key SigningKey) string {
	t.Helper()
	if key.file == "" {
		t.Fatalf("gittest: SignWithGit takes a key made by NewSSHSigningKey")
	}
	ref := branchRef(branch)
	sha := s.Git(t, repo, "-c", "gpg.format=ssh", "-c", "user.signingkey="+key.file,
		"commit-tree", "-S", "-p", ref, "-m", "signed by git", ref+"^{tree}")
	return s.Git(t, repo, "cat-file", "commit", sha)
}
