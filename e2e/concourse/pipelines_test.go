package concourse

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	cc "github.com/gitops-resource/gitops-resource/internal/testenv/concourse"
)

// inCI says whether a missing tool must fail the test rather than skip it.
func inCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// missing fails (in CI) or skips (elsewhere) a test that needs a tool the
// machine lacks, saying how to get it.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if inCI() {
		t.Fatal(msg)
	}
	t.Skip(msg + " (skipped: CI is not set)")
}

// flyPath finds fly: $FLY, else the one hack/concourse-build.sh built.
func flyPath(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs fly: not under -short")
	}
	if p := os.Getenv("FLY"); p != "" {
		return p
	}
	bin, err := cc.Bin(true)
	if err != nil {
		missing(t, "fly is not built: run `nice -n 10 hack/concourse-build.sh fly` (~4 min cold), or set FLY=/path/to/fly\n%v", err)
	}
	return filepath.Join(bin, "fly")
}

// pipeline is one pipeline file with the vars file beside it.
type pipeline struct {
	name, file, vars string
}

// pipelines lists every pipeline this repo ships: pipelines-examples/*/ and ci/.
func pipelines(t *testing.T) []pipeline {
	t.Helper()
	root := cc.Root()
	files, err := filepath.Glob(filepath.Join(root, "pipelines-examples", "*", "pipeline.yml"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(root, "ci", "pipeline.yml"))
	sort.Strings(files)
	var ps []pipeline
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		p := pipeline{name: filepath.Dir(rel), file: f, vars: filepath.Join(filepath.Dir(f), "vars.yml")}
		if _, err := os.Stat(p.vars); err != nil {
			t.Errorf("%s: every pipeline needs a vars file beside it: %v", rel, err)
			continue
		}
		ps = append(ps, p)
	}
	if len(ps) < 8 { // 7 examples and ci/pipeline.yml
		t.Fatalf("found %d pipelines (want every example and ci/pipeline.yml): %v", len(ps), files)
	}
	return ps
}

// varsOf reads the pipeline's vars file.
func (p pipeline) varsOf(t *testing.T) map[string]any {
	t.Helper()
	vars := map[string]any{}
	b, err := os.ReadFile(p.vars)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &vars); err != nil {
		t.Fatalf("parse %s: %v", p.vars, err)
	}
	return vars
}

// TestPipelinesValidate runs `fly validate-pipeline` on every pipeline, as
// is and with --strict (warnings are errors).
func TestPipelinesValidate(t *testing.T) {
	fly := flyPath(t)
	for _, p := range pipelines(t) {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			for _, extra := range [][]string{nil, {"--strict"}} {
				args := append([]string{"validate-pipeline", "-c", p.file, "-l", p.vars}, extra...)
				out, err := exec.Command(fly, args...).CombinedOutput()
				if err != nil {
					t.Errorf("fly %s: %v\n%s", strings.Join(args, " "), err, out)
				}
			}
		})
	}
}

// gitopsType is the resource_types entry every pipeline declares.
var gitopsType = map[string]any{
	"name": "gitops",
	"type": "registry-image",
	"source": map[string]any{
		"repository": "gitopsresource/gitops-resource",
		"tag":        "1",
	},
}

var kinds = []string{"semver", "manifest", "cluster", "artifact"}

// TestPipelinesGitopsResources checks, without fly, that every pipeline
// declares the gitops type as the README does and that every resource of
// that type names a kind.
func TestPipelinesGitopsResources(t *testing.T) {
	for _, p := range pipelines(t) {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			body, err := os.ReadFile(p.file)
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				ResourceTypes []map[string]any `yaml:"resource_types"`
				Resources     []struct {
					Name   string `yaml:"name"`
					Type   string `yaml:"type"`
					Source any    `yaml:"source"` // a map, or a ((var))
				} `yaml:"resources"`
			}
			if err := yaml.Unmarshal(body, &doc); err != nil {
				t.Fatalf("parse %s: %v", p.file, err)
			}
			declared := false
			for _, rt := range doc.ResourceTypes {
				if rt["name"] == "gitops" {
					declared = true
					rt = interpolate(t, rt, p.varsOf(t)).(map[string]any) // ci/: source: ((gitops-image))
					if fmt.Sprint(rt) != fmt.Sprint(gitopsType) {
						t.Errorf("resource type gitops is %v, want %v", rt, gitopsType)
					}
				}
			}
			n := 0
			for _, r := range doc.Resources {
				if r.Type != "gitops" {
					continue
				}
				n++
				src, _ := r.Source.(map[string]any)
				kind, _ := src["kind"].(string)
				if !slices.Contains(kinds, kind) {
					t.Errorf("resource %s: source.kind is %q, want one of %v", r.Name, src["kind"], kinds)
				}
			}
			if n > 0 && !declared {
				t.Errorf("%d resources of type gitops but no resource_types entry named gitops", n)
			}
			if n == 0 && strings.HasPrefix(p.name, "pipelines-examples") {
				t.Errorf("an example without a resource of type gitops")
			}
		})
	}
}
