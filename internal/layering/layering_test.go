package layering

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Patterns name packages by import path relative to the module; a trailing
// "/..." matches the package and everything below it, "..." alone every
// package of the module.

// harnesses are the module's test infrastructure: imported from _test.go
// files, e2e/, bench and hack/, and by each other; never by the code the
// binary is built of. A package whose own code imports "testing" must be
// listed here.
var harnesses = []string{
	"internal/gittest",
	"internal/proc",
	"internal/resourcetest",
	"internal/testenv/...",
}

// kinds are the packages of the resource kinds, composed by pkg/app and
// pkg/app/clusterapp.
var kinds = []string{"pkg/artifact", "pkg/cluster", "pkg/manifest", "pkg/semver"}

// mains are the binary: one program answering to check, in and out.
var mains = []string{"check", "in", "out"}

// apps are the packages that compose kinds into a binary: pkg/app (check,
// in and out) and pkg/app/clusterapp (cluster, which they hand kind cluster
// to).
var apps = []string{"pkg/app/..."}

// clusterMain is the second binary: kind cluster, which links client-go.
const clusterMain = "cluster"

// notLinked are the modules check, in and out must not link, with why.
var notLinked = map[string]string{
	"k8s.io/client-go":          "its package init (kubernetes/scheme, util/watchlist: ~7 ms) would slow every check of the other kinds; only kind cluster needs it, and it runs in the cluster binary",
	"sigs.k8s.io/kustomize/api": "~24 MB of code that only kinds cluster and artifact need, and they run in the cluster binary: the image carries it once",
}

// A rule says what some packages must not import. The doc.go of each
// package states the rules it is under.
type rule struct {
	from   []string // the packages the rule is about (each pattern must match one)
	except []string // packages matched by from that it is not about
	never  []string // what they must not import
	allow  []string // exceptions to never
	direct bool     // only direct imports count; otherwise any path of imports does
	why    string
}

var rules = []rule{
	{
		from:  []string{"pkg/imageref", "pkg/resource", "pkg/retry"},
		never: []string{"..."},
		why:   "it is a leaf every other package may build on, so it imports no package of this module",
	},
	{
		from:  []string{"pkg/health"},
		never: []string{"..."},
		why:   "judging an object's health reads the object alone: pkg/kube watches and reports, building on it, not the reverse",
	},
	{
		from:  []string{"pkg/yamledit"},
		never: []string{"..."},
		allow: []string{"pkg/imageref"},
		why:   "YAML editing builds on image references only",
	},
	{
		from:   mains,
		never:  []string{"..."},
		allow:  []string{"pkg/app"},
		direct: true,
		why:    "a main is a few lines around pkg/app",
	},
	{
		from:   []string{clusterMain},
		never:  []string{"..."},
		allow:  []string{"pkg/app/clusterapp"},
		direct: true,
		why:    "the cluster binary's main is a few lines around pkg/app/clusterapp",
	},
	{
		from:  []string{"pkg/app"},
		never: []string{"pkg/app/clusterapp", "pkg/cluster", "pkg/artifact"},
		why:   "check, in and out hand kinds cluster and artifact to the cluster binary: they never link them",
	},
	{
		from:  kinds,
		never: slices.Concat(kinds, apps),
		why:   "kinds never import each other or pkg/app: what two kinds share belongs in a shared package",
	},
	{
		from:   []string{"pkg/..."},
		except: slices.Concat(kinds, apps, harnesses),
		never:  slices.Concat(kinds, apps),
		why:    "a shared package never imports a kind or pkg/app: the kinds compose the shared packages, not the reverse",
	},
	{
		from:   slices.Concat([]string{"pkg/..."}, mains, []string{clusterMain}),
		except: harnesses,
		never:  slices.Concat(harnesses, []string{"internal/image"}),
		why:    "test harnesses and the image builder are not part of the binary: import them from _test.go files",
	},
}

// TestImports fails for each import that breaks a rule, naming the package,
// the forbidden import and the chain of imports that leads there.
func TestImports(t *testing.T) {
	m := load(t)
	for _, err := range m.check(rules) {
		t.Error(err)
	}
}

// TestNotLinked fails for each module of notLinked that check, in and out
// link, naming the packages of this module that import it.
func TestNotLinked(t *testing.T) {
	m := load(t)
	for _, main := range mains {
		p := m.pkgs[m.path+"/"+main]
		if p == nil {
			t.Fatalf("%s: no such package: update mains", main)
		}
		for mod, why := range notLinked {
			if !slices.ContainsFunc(p.Deps, func(dep string) bool { return dep == mod || strings.HasPrefix(dep, mod+"/") }) {
				continue
			}
			var via []string
			for _, dep := range slices.Concat([]string{p.ImportPath}, p.Deps) {
				if q := m.pkgs[dep]; q != nil && slices.ContainsFunc(q.Imports, func(imp string) bool { return imp == mod || strings.HasPrefix(imp, mod+"/") }) {
					via = append(via, m.rel(dep))
				}
			}
			t.Errorf("%s links %s (imported by %s): %s", main, mod, strings.Join(via, ", "), why)
		}
	}
}

// TestHarnessesListed fails for a package whose non-test code imports
// "testing" but that is not in harnesses, so the list cannot drift.
func TestHarnessesListed(t *testing.T) {
	m := load(t)
	for _, p := range m.sorted() {
		if slices.Contains(p.Imports, "testing") && !matchAny(harnesses, m.rel(p.ImportPath)) {
			t.Errorf("%s imports \"testing\" outside _test.go files but is not in harnesses: list it there, or move that code into _test.go files", m.rel(p.ImportPath))
		}
	}
}

// TestPackageComments fails unless every package has its package comment in
// doc.go, and in no other file.
func TestPackageComments(t *testing.T) {
	m := load(t)
	for _, p := range m.sorted() {
		files, err := filepath.Glob(filepath.Join(p.Dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		documented := false
		for _, file := range files {
			f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Error(err)
				continue
			}
			switch {
			case filepath.Base(file) == "doc.go":
				documented = f.Doc != nil
			case f.Doc != nil:
				t.Errorf("%s: package comment outside doc.go: move it into %s", m.relFile(file), m.relFile(filepath.Join(p.Dir, "doc.go")))
			}
		}
		if !documented {
			t.Errorf("%s has no package comment in doc.go: say what the package owns and what it must not import", m.rel(p.ImportPath))
		}
	}
}

// TestRules checks the rule engine itself on a small import graph.
func TestRules(t *testing.T) {
	m := &module{path: "m", dir: "/m", pkgs: map[string]*pkg{
		"m/a":   {ImportPath: "m/a", Imports: []string{"fmt", "m/b"}, Deps: []string{"fmt", "m/b", "m/c"}},
		"m/b":   {ImportPath: "m/b", Imports: []string{"m/c"}, Deps: []string{"m/c"}},
		"m/c":   {ImportPath: "m/c"},
		"m/d/e": {ImportPath: "m/d/e", Imports: []string{"m/c"}, Deps: []string{"m/c"}},
	}}
	for _, tc := range []struct {
		name string
		rule rule
		want []string
	}{
		{"transitive", rule{from: []string{"a"}, never: []string{"c"}, why: "w"},
			[]string{"a imports c (a → b → c): w"}},
		{"reported where it starts", rule{from: []string{"a", "b"}, never: []string{"c"}, why: "w"},
			[]string{"b imports c: w"}},
		{"direct only", rule{from: []string{"a"}, never: []string{"c"}, direct: true}, nil},
		{"direct", rule{from: []string{"a"}, never: []string{"..."}, allow: []string{"c"}, direct: true, why: "w"},
			[]string{"a imports b: w"}},
		{"allowed", rule{from: []string{"a", "b"}, never: []string{"..."}, allow: []string{"b", "c"}}, nil},
		{"subtree and except", rule{from: []string{"..."}, except: []string{"a", "b"}, never: []string{"c"}, why: "w"},
			[]string{"d/e imports c: w"}},
		{"stale", rule{from: []string{"x/..."}, never: []string{"..."}},
			[]string{`rule "": from [x/...] matches no package of the module: update the rule`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, err := range m.check([]rule{tc.rule}) {
				got = append(got, err.Error())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

type pkg struct {
	ImportPath string
	Dir        string
	Imports    []string
	Deps       []string
	Module     *struct {
		Path string
		Main bool
	}
}

// module is the import graph of the main module's packages.
type module struct {
	path, dir string
	pkgs      map[string]*pkg // by import path, main module only
}

var loadOnce = sync.OnceValues(func() (*module, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOMOD: %w", err)
	}
	m := &module{dir: filepath.Dir(strings.TrimSpace(string(gomod))), pkgs: map[string]*pkg{}}
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Dir,Imports,Deps,Module", "./...")
	cmd.Dir = m.dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps ./... in %s: %w\n%s", m.dir, err, stderr.Bytes())
	}
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list output: %w", err)
		}
		if p.Module != nil && p.Module.Main {
			m.path = p.Module.Path
			m.pkgs[p.ImportPath] = &p
		}
	}
	if len(m.pkgs) == 0 {
		return nil, fmt.Errorf("go list ./... in %s listed no package of the main module", m.dir)
	}
	return m, nil
})

func load(t *testing.T) *module {
	t.Helper()
	m, err := loadOnce()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// check returns one error per forbidden import, in a stable order. A
// package that reaches a forbidden import only through a package the same
// rule is about is not reported: that package is.
func (m *module) check(rules []rule) []error {
	var errs []error
	for _, r := range rules {
		about := func(path string) bool {
			return matchAny(r.from, m.rel(path)) && !matchAny(r.except, m.rel(path))
		}
		matched := false
		for _, p := range m.sorted() {
			name := m.rel(p.ImportPath)
			matched = matched || matchAny(r.from, name)
			if !about(p.ImportPath) {
				continue
			}
			imports := p.Deps
			if r.direct {
				imports = p.Imports
			}
			for _, imp := range imports {
				if m.pkgs[imp] == nil || !matchAny(r.never, m.rel(imp)) || matchAny(r.allow, m.rel(imp)) {
					continue
				}
				if slices.ContainsFunc(p.Imports, func(via string) bool {
					return m.pkgs[via] != nil && about(via) && slices.Contains(m.pkgs[via].Deps, imp)
				}) {
					continue
				}
				if chain := m.chain(p.ImportPath, imp); len(chain) > 2 {
					errs = append(errs, fmt.Errorf("%s imports %s (%s): %s", name, m.rel(imp), strings.Join(chain, " → "), r.why))
				} else {
					errs = append(errs, fmt.Errorf("%s imports %s: %s", name, m.rel(imp), r.why))
				}
			}
		}
		if !matched {
			errs = append(errs, fmt.Errorf("rule %q: from %v matches no package of the module: update the rule", r.why, r.from))
		}
	}
	return errs
}

// chain is the shortest import chain from one package of the module to
// another, by relative names.
func (m *module) chain(from, to string) []string {
	prev := map[string]string{from: ""}
	for queue := []string{from}; len(queue) > 0; queue = queue[1:] {
		p := m.pkgs[queue[0]]
		for _, imp := range p.Imports {
			if _, seen := prev[imp]; seen || m.pkgs[imp] == nil {
				continue
			}
			prev[imp] = p.ImportPath
			if imp == to {
				var chain []string
				for at := to; at != ""; at = prev[at] {
					chain = append([]string{m.rel(at)}, chain...)
				}
				return chain
			}
			queue = append(queue, imp)
		}
	}
	return nil
}

// sorted is the module's packages by import path.
func (m *module) sorted() []*pkg {
	pkgs := slices.Collect(maps.Values(m.pkgs))
	slices.SortFunc(pkgs, func(a, b *pkg) int { return strings.Compare(a.ImportPath, b.ImportPath) })
	return pkgs
}

func (m *module) rel(importPath string) string {
	if importPath == m.path {
		return "."
	}
	return strings.TrimPrefix(importPath, m.path+"/")
}

func (m *module) relFile(file string) string {
	if rel, err := filepath.Rel(m.dir, file); err == nil {
		return rel
	}
	return file
}

func matchAny(patterns []string, name string) bool {
	return slices.ContainsFunc(patterns, func(pattern string) bool {
		if pattern == "..." {
			return true
		}
		if base, ok := strings.CutSuffix(pattern, "/..."); ok {
			return name == base || strings.HasPrefix(name, base+"/")
		}
		return name == pattern
	})
}
