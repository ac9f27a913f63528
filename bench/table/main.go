package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	results, err := parse(io.TeeReader(os.Stdin, os.Stdout))
	if err != nil {
		fmt.Fprintln(os.Stderr, "table:", err)
		os.Exit(1)
	}
	fmt.Println()
	write(os.Stdout, results)
}

// result is one benchmark's runs: each metric's values, one per run.
type result struct {
	name    string
	metrics map[string][]float64
}

var (
	benchLine = regexp.MustCompile(`^Benchmark(\S+?)(-\d+)?\s+\d+\s+(.*)$`)
	pkgLine   = regexp.MustCompile(`^pkg: (\S+)`)
)

// parse collects the benchmark lines of r, in order of first appearance;
// names are prefixed with the last element of their package.
func parse(r io.Reader) ([]*result, error) {
	var results []*result
	byName := map[string]*result{}
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := pkgLine.FindStringSubmatch(line); m != nil {
			pkg = m[1][strings.LastIndex(m[1], "/")+1:]
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name := pkg + "." + m[1]
		f := strings.Fields(m[3])
		if len(f)%2 != 0 {
			continue
		}
		res := byName[name]
		if res == nil {
			res = &result{name: name, metrics: map[string][]float64{}}
			byName[name] = res
			results = append(results, res)
		}
		for i := 0; i < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: metric %q: %v", name, f[i+1], err)
			}
			res.metrics[f[i+1]] = append(res.metrics[f[i+1]], v)
		}
	}
	return results, sc.Err()
}

// rows names the rows and gives their order; a benchmark not listed keeps
// its own name and comes after them.
var rows = []struct{ name, label string }{
	{"bench.Semver/check", "semver `check` vs `ls-remote` + `fetch --depth 1` + `cat-file`"},
	{"bench.Semver/check-cold", "semver `check`, first in a container, vs semver-resource's cold commands: `clone --no-checkout --filter=blob:none` + sparse checkout of the file"},
	{"bench.Semver/check-warm", "semver `check`, branch unchanged, vs semver-resource's warm commands in its kept clone: `fetch` + `reset --hard` + read the file"},
	{"bench.Semver/out", "semver `out` (bump, push, verify) vs `clone --depth 1` + commit + `push`"},
	{"bench.Manifest/in", "manifest `in` vs `clone --depth 1`"},
	{"bench.Manifest/out", "manifest `out` (one image in 40 files) vs `clone --depth 1` + `sed` + commit + `push`"},
	{"bench.ManifestCheck/version-500-back", "manifest `check`, a version 500 commits back, no paths, vs git-resource's check (`clone --bare --filter=tree:0` + `rev-list --first-parent`)"},
	{"bench.ManifestCheck/paths-quiet-2000", "manifest `check`, `paths` quiet for 2,000 commits, vs git-resource's check (`clone --bare --filter=blob:none` + `rev-list --first-parent -- paths`)"},
	{"bench.Artifact/out", "artifact `out` of the 2,000-file tree (pack, push) vs the config-repo put of the same change (manifest `out`; the \"git\" columns)"},
	{"bench.ColdStart", "cold start: `check` with a request that fails validation"},
	{"bench.Image/linux-amd64", "image linux/amd64: its one layer (binary ×3 hard links, cluster binary, CA bundle, /tmp), no base"},
	{"bench.Image/linux-arm64", "image linux/arm64: the same"},
	{"yamledit.Edit", "YAML edit throughput (6.5 KB, five documents)"},
	{"cluster.Apply100/configmaps", "cluster `out`: apply 100 ConfigMaps, wait"},
	{"cluster.Apply100/deployments", "cluster `out`: 100 Deployments, new image, wait for 100 rollouts"},
}

// units are shown under these names.
var units = map[string]string{
	"compressed-MiB":   "MiB compressed",
	"binary-MiB":       "MiB binary",
	"cluster-MiB":      "MiB cluster binary",
	"ca-KiB":           "KiB CA bundle",
	"repo-MiB":         "MiB bare repo",
	"depth1-KiB":       "KiB depth-1 pack",
	"ms-ready-to-exit": "ms last ready → exit",
}

// main figure of a row: the first of these it has.
var mainUnits = []string{"ms", "MB/s", "compressed-MiB", "ns/op"}

// shown in their own columns or not at all.
var columnUnits = map[string]bool{"ms": true, "MB/s": true, "compressed-MiB": true, "ns/op": true,
	"git-ms": true, "x-git": true, "rss-MiB": true, "anon-MiB": true, "rss-x-repo": true, "anon-x-repo": true,
	"B/op": true, "allocs/op": true}

// write prints the table.
func write(w io.Writer, results []*result) {
	fmt.Fprintln(w, "| row | ours | git CLI floor | ours ÷ floor | peak RSS | peak heap+stacks | memory ÷ bare repo (RSS, heap+stacks) | also |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	order := map[string]int{}
	labels := map[string]string{}
	for i, r := range rows {
		order[r.name], labels[r.name] = i+1, r.label
	}
	results = slices.Clone(results)
	slices.SortStableFunc(results, func(a, b *result) int {
		oa, ob := order[a.name], order[b.name]
		if oa == 0 {
			oa = len(rows) + 1
		}
		if ob == 0 {
			ob = len(rows) + 1
		}
		return oa - ob
	})
	for _, r := range results {
		label := labels[r.name]
		if label == "" {
			label = r.name
		}
		main := ""
		for _, u := range mainUnits {
			if v := r.metrics[u]; v != nil {
				if u == "ns/op" && r.metrics["ms"] == nil {
					main = cell(scale(v, 1e-6), "ms")
				} else {
					main = cell(v, u)
				}
				break
			}
		}
		if _, ok := r.metrics["ms"]; !ok && main == "" {
			continue
		}
		repo := ""
		if r.metrics["rss-x-repo"] != nil {
			repo = cell(r.metrics["rss-x-repo"], "×") + ", " + cell(r.metrics["anon-x-repo"], "×")
		}
		var also []string
		units := make([]string, 0, len(r.metrics))
		for u := range r.metrics {
			if !columnUnits[u] {
				units = append(units, u)
			}
		}
		slices.Sort(units)
		for _, u := range units {
			also = append(also, cell(r.metrics[u], u))
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", label, main,
			cell(r.metrics["git-ms"], "ms"), cell(r.metrics["x-git"], "×"),
			cell(r.metrics["rss-MiB"], "MiB"), cell(r.metrics["anon-MiB"], "MiB"), repo, strings.Join(also, "; "))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Each figure: median of the runs (-count), min–max in brackets. Paired rows time ours and the")
	fmt.Fprintln(w, "git CLI floor in turns within each run (medians of the iterations); ours ÷ floor is the median")
	fmt.Fprintln(w, "of the per-iteration ratios. Memory: the peak of each run's iterations.")
}

func scale(v []float64, k float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = x * k
	}
	return out
}

// cell formats the median of v with its min–max: "30 ms (26–35)".
func cell(v []float64, unit string) string {
	if len(v) == 0 {
		return ""
	}
	if u, ok := units[unit]; ok {
		unit = u
	}
	s := slices.Clone(v)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	sep := " "
	if unit == "×" {
		sep = ""
	}
	if s[0] == s[len(s)-1] {
		return num(med) + sep + unit
	}
	return fmt.Sprintf("%s%s%s (%s–%s)", num(med), sep, unit, num(s[0]), num(s[len(s)-1]))
}

// num prints three significant figures, without exponent.
func num(x float64) string {
	switch a := max(x, -x); {
	case a >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(x, 'f', 2, 64)
	default:
		return strconv.FormatFloat(x, 'f', 3, 64)
	}
}
