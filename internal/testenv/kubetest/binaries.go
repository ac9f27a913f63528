package kubetest

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"

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

// componentNames are the executables a binaries dir must hold.
func componentNames() []string {
	return []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}
}

// buildHint says how to get the binaries; it ends every ErrNoBinaries error.
const buildHint = "run 'make tools' or hack/k8s-build.sh (a cold build takes about 12 minutes), " +
	"or set " + EnvBinDir + " to a dir holding etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok"

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
