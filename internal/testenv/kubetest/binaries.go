package kubetest

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitops-resource/gitops-resource/internal/proc"
)

// kwokStages are kwok's "fast" Stage objects: nodes become Ready and keep a
// lease, pods become Ready at once, Job pods complete, deleted pods go away.
//
//go:embed stages.yaml
var kwokStages []byte

// binaries is the dir holding the control-plane executables.
type binaries string

func (b binaries) path(name string) string { return filepath.Join(string(b), name) }

// componentNames are the executables a binaries dir must hold: the control
// plane, kwok, and kubectl (Env.Kubectl), all of the same Kubernetes version.
func componentNames() []string {
	return []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok"}
}

// buildHint says how to get the binaries; it ends every ErrNoBinaries error.
const buildHint = "run 'make tools' or hack/k8s-build.sh (a cold build takes about 12 minutes), " +
	"or set " + EnvBinDir + " to a dir holding etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kwok"

// findBinaries returns dir, else $GITOPS_K8S_BIN, else the dir that
// hack/k8s-build.sh --check reports, after checking every executable is there.
// It never builds: a missing build is an ErrNoBinaries error.
func findBinaries(ctx context.Context, dir string) (binaries, error) {
	if dir == "" {
		dir = os.Getenv(EnvBinDir)
	}
	if dir == "" {
		var err error
		if dir, err = buildCacheDir(ctx); err != nil {
			return "", err
		}
	}
	var missing []string
	for _, name := range componentNames() {
		if info, err := os.Stat(filepath.Join(dir, name)); err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("%w: %s not in %s: %s", ErrNoBinaries, strings.Join(missing, ", "), dir, buildHint)
	}
	return binaries(dir), nil
}

// buildCacheDir asks hack/k8s-build.sh, found in a parent of the working
// dir, where its cache puts the binaries for the current tools/k8s module.
func buildCacheDir(ctx context.Context) (string, error) {
	dir, err := proc.CachedBinDir(ctx, "k8s-build.sh")
	if err != nil {
		return "", fmt.Errorf("%w: %s is not set and %w: %s", ErrNoBinaries, EnvBinDir, err, buildHint)
	}
	return dir, nil
}

func inCI() bool { return proc.InCI() }

// Kubectl runs the real kubectl of the control plane's build as an admin of
// e, with stdin (none when empty), and returns its stdout. It fails t with
// kubectl's stderr when kubectl fails or runs longer than a minute.
func (e *Env) Kubectl(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bins, err := findBinaries(ctx, "")
	if err != nil {
		t.Fatalf("kubetest: kubectl: %v", err)
	}
	cmd := exec.CommandContext(ctx, bins.path("kubectl"), append([]string{"--kubeconfig", e.kubeconfigPath}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubetest: kubectl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}
