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
	script, err := findUp(filepath.Join("hack", "k8s-build.sh"))
	if err != nil {
		return "", fmt.Errorf("%w: %s is not set and %w: %s", ErrNoBinaries, EnvBinDir, err, buildHint)
	}
	// --check prints the dir the binaries belong in, and fails when it is empty.
	var stdout bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", script, "--check")
	cmd.Stdout = &stdout
	runErr := cmd.Run()
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	dir := lines[len(lines)-1]
	if runErr != nil {
		if dir == "" {
			return "", fmt.Errorf("%w: %s --check: %w: %s", ErrNoBinaries, script, runErr, buildHint)
		}
		return "", fmt.Errorf("%w: nothing built in %s: %s", ErrNoBinaries, dir, buildHint)
	}
	return dir, nil
}

// findUp looks for rel in the working dir and its parents.
func findUp(rel string) (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("get working dir: %w", err)
	}
	for dir := wd; ; {
		path := filepath.Join(dir, rel)
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no %s in %s or its parents", rel, wd)
		}
		dir = parent
	}
}

// inCI reports whether the tests run in CI, where a missing tool fails.
func inCI() bool { return os.Getenv("CI") == "true" }
