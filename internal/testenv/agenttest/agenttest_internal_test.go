package agenttest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindReportsWhatIsMissingAndHowToBuild(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "source-controller"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := fluxAgent.find(t.Context(), bin)
	if !errors.Is(err, ErrNoBinaries) {
		t.Fatalf("find: got %v, want ErrNoBinaries", err)
	}
	for _, want := range []string{"kustomize-controller, ../manifests/crds not in " + bin, "hack/agents-build.sh flux", EnvFluxBin} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("find: %q does not mention %q", err, want)
		}
	}

	if err := os.WriteFile(filepath.Join(bin, "kustomize-controller"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(bin, "..", "manifests", "crds"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := fluxAgent.find(t.Context(), bin); err != nil || got != bin {
		t.Fatalf("find: got %q, %v; want %q", got, err, bin)
	}
}

func TestDecodeYAMLSkipsEmptyDocuments(t *testing.T) {
	objs, err := decodeYAML([]byte("---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: b}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.GetKind()+"/"+o.GetName())
	}
	if strings.Join(got, " ") != "ConfigMap/a Secret/b" {
		t.Errorf("decodeYAML: got %v, want [ConfigMap/a Secret/b]", got)
	}
}
