package bench

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/gitops-resource/gitops-resource/internal/image"
	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
)

// usage is the memory one run of the binary used.
type usage struct {
	// rss is the peak resident set, exact (GNU time): the heap and stacks
	// plus the pages of the binary itself that the run touched.
	rss int64
	// anon is the peak anonymous memory (heap, stacks: what grows with the
	// input), sampled from /proc every millisecond. A short-lived Go
	// process hardly returns memory to the kernel, so the last sample
	// before exit is close to the peak.
	anon int64
}

// run runs a verb through the binary and returns the memory it used. It
// fails the benchmark unless the verb's exit status is the one wanted. The
// binary runs under GNU time: rusage of a child of this (large) test process
// would report this process's memory, which Linux carries across the
// vfork+exec.
func run(b *testing.B, verb, dir string, req any, wantOK bool, env ...string) usage {
	b.Helper()
	u, _ := runOut(b, verb, dir, req, wantOK, env...)
	return u
}

// runOut is run that also returns the verb's stdout. env ("K=V") is added
// to the verb's environment.
func runOut(b *testing.B, verb, dir string, req any, wantOK bool, env ...string) (usage, []byte) {
	b.Helper()
	data, err := json.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	report := filepath.Join(b.TempDir(), "rss")
	args := []string{"-f", "%M", "-o", report, filepath.Join(rt.Binaries(b), verb)}
	if verb != "check" {
		args = append(args, dir)
	}
	cmd := exec.Command("/usr/bin/time", args...)
	cmd.Stdin = bytes.NewReader(data)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + b.TempDir()}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		b.Fatalf("%s: %v", verb, err)
	}
	done := make(chan struct{})
	anon := make(chan int64)
	go func() { anon <- sampleAnon(cmd.Process.Pid, done) }()
	err = cmd.Wait()
	close(done)
	var u usage
	u.anon = <-anon
	if (err == nil) != wantOK {
		b.Fatalf("%s: exit %v, want success %v\n%s", verb, err, wantOK, stderr.String())
	}
	text, err := os.ReadFile(report)
	if err != nil {
		b.Fatalf("read peak memory: %v (is GNU time installed? apt-get install time)", err)
	}
	// On failure GNU time writes "Command exited with non-zero status"
	// before the figure.
	fields := strings.Fields(string(text))
	if len(fields) == 0 {
		b.Fatalf("peak memory: empty report")
	}
	kib, err := strconv.ParseInt(fields[len(fields)-1], 10, 64)
	if err != nil {
		b.Fatalf("peak memory %q: %v", text, err)
	}
	u.rss = kib << 10
	return u, stdout.Bytes()
}

// sampleAnon polls the anonymous memory of the child of GNU time (pid)
// until done and returns the largest value seen, in bytes. It reads
// /proc/<child>/statm (resident less shared pages: RssAnon) through one open
// file, a read a sample: parsing /proc/<child>/status each millisecond took
// ~6% of a run that keeps both cores busy (manifest in) from the run it
// measured.
func sampleAnon(pid int, done <-chan struct{}) int64 {
	children := filepath.Join("/proc", strconv.Itoa(pid), "task", strconv.Itoa(pid), "children")
	var statm *os.File
	defer func() {
		if statm != nil {
			statm.Close()
		}
	}()
	page := int64(os.Getpagesize())
	buf := make([]byte, 128)
	var peak int64
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return peak
		case <-tick.C:
		}
		if statm == nil {
			data, _ := os.ReadFile(children)
			if f := strings.Fields(string(data)); len(f) > 0 {
				statm, _ = os.Open(filepath.Join("/proc", f[0], "statm"))
			}
			continue
		}
		n, _ := statm.ReadAt(buf, 0)
		// size resident shared text lib data dt, in pages
		if f := strings.Fields(string(buf[:n])); len(f) >= 3 {
			resident, err1 := strconv.ParseInt(f[1], 10, 64)
			shared, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 == nil && err2 == nil {
				peak = max(peak, (resident-shared)*page)
			}
		}
	}
}

// pair measures our binary and its git CLI floor on the same input in the
// same benchmark run, taking turns (which goes first alternates), so a
// change in the machine's load between runs moves both sides.
type pair struct {
	ours, floor []time.Duration
	mem         []usage
}

// turn runs one iteration of each side.
func (p *pair) turn(ours func() usage, floor func()) {
	timeOurs := func() {
		start := time.Now()
		u := ours()
		p.ours = append(p.ours, time.Since(start))
		p.mem = append(p.mem, u)
	}
	timeFloor := func() {
		start := time.Now()
		floor()
		p.floor = append(p.floor, time.Since(start))
	}
	if len(p.ours)%2 == 0 {
		timeOurs()
		timeFloor()
	} else {
		timeFloor()
		timeOurs()
	}
}

// report adds the run's figures as metrics: ms (ours) and git-ms (the floor)
// are medians over the iterations, x-git the median of the per-iteration
// ratios, and the memory figures the peak of the iterations, also as a
// multiple of repo (bytes; 0: not reported).
func (p *pair) report(b *testing.B, repo int64) {
	ratios := make([]float64, len(p.ours))
	for i := range p.ours {
		ratios[i] = float64(p.ours[i]) / float64(p.floor[i])
	}
	b.ReportMetric(medianDuration(p.ours), "ms")
	b.ReportMetric(medianDuration(p.floor), "git-ms")
	b.ReportMetric(median(ratios), "x-git")
	reportMemory(b, p.mem, repo)
}

// reportMemory adds the peak memory of the runs as metrics.
func reportMemory(b *testing.B, runs []usage, repo int64) {
	var peak usage
	for _, u := range runs {
		peak.rss, peak.anon = max(peak.rss, u.rss), max(peak.anon, u.anon)
	}
	b.ReportMetric(float64(peak.rss)/(1<<20), "rss-MiB")
	b.ReportMetric(float64(peak.anon)/(1<<20), "anon-MiB")
	if repo > 0 {
		b.ReportMetric(float64(peak.rss)/float64(repo), "rss-x-repo")
		b.ReportMetric(float64(peak.anon)/float64(repo), "anon-x-repo")
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianDuration(d []time.Duration) float64 {
	ms := make([]float64, len(d))
	for i, v := range d {
		ms[i] = float64(v) / float64(time.Millisecond)
	}
	return median(ms)
}

// repoSizes measures the repo a benchmark handles: bare is the bytes of the
// bare repository on the server (every file under it, as du --apparent-size
// counts them), depth1 the size of the pack a `git fetch --depth 1` of the
// branch receives — all the resource ever downloads.
func repoSizes(b *testing.B, bare, url, branch string) (bareSize, depth1 int64) {
	b.Helper()
	bareSize = treeSize(b, bare)
	dir := b.TempDir()
	git(b, dir, "init", "-q", "--bare")
	git(b, dir, "-c", "fetch.unpackLimit=1", "fetch", "-q", "--depth", "1", url, branch)
	packs, err := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.pack"))
	if err != nil || len(packs) != 1 {
		b.Fatalf("depth-1 fetch: want one pack, got %v (%v)", packs, err)
	}
	fi, err := os.Stat(packs[0])
	if err != nil {
		b.Fatal(err)
	}
	return bareSize, fi.Size()
}

func treeSize(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n += fi.Size()
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// reportRepo adds the sizes of the input as metrics.
func reportRepo(b *testing.B, bare, depth1 int64) {
	b.ReportMetric(float64(bare)/(1<<20), "repo-MiB")
	b.ReportMetric(float64(depth1)/(1<<10), "depth1-KiB")
}

// BenchmarkColdStart is the binary's start-up cost: check with a request
// that fails validation, before any network I/O. Its memory is the floor
// every run pays before it reads a byte of a repo.
func BenchmarkColdStart(b *testing.B) {
	rt.Binaries(b)
	var times []time.Duration
	var mem []usage
	for b.Loop() {
		start := time.Now()
		res := rt.Run(b, "check", "", map[string]any{"source": map[string]any{"kind": "semver"}}, nil)
		times = append(times, time.Since(start))
		if res.Code == 0 {
			b.Fatal("expected a config error")
		}
		mem = append(mem, run(b, "check", "", map[string]any{"source": map[string]any{"kind": "semver"}}, false))
	}
	b.ReportMetric(medianDuration(times), "ms")
	reportMemory(b, mem, 0)
}

// BenchmarkImage builds the image as `make image` does (internal/image.Make,
// both platforms, an OCI layout) and reports, per platform, what its one
// layer weighs as pulled (compressed) and what is in it: the binary (once,
// hard-linked ×3 as check, in and out), the cluster binary and the CA
// bundle. There is no base image under it.
func BenchmarkImage(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "image")
	if _, err := image.Make(b.Context(), image.Options{Root: "..", Dir: dir}); err != nil {
		b.Fatalf("make the image: %v", err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		b.Fatal(err)
	}
	manifest, err := idx.IndexManifest()
	if err != nil {
		b.Fatal(err)
	}
	for _, desc := range manifest.Manifests {
		b.Run(strings.ReplaceAll(desc.Platform.String(), "/", "-"), func(b *testing.B) {
			var compressed int64
			sizes := map[string]int64{}
			for b.Loop() {
				img, err := idx.Image(desc.Digest)
				if err != nil {
					b.Fatal(err)
				}
				layers, err := img.Layers()
				if err != nil {
					b.Fatal(err)
				}
				if compressed, err = layers[0].Size(); err != nil {
					b.Fatal(err)
				}
				rc, err := layers[0].Uncompressed()
				if err != nil {
					b.Fatal(err)
				}
				tr := tar.NewReader(rc)
				for h, err := tr.Next(); err == nil; h, err = tr.Next() {
					sizes[h.Name] = h.Size
				}
				rc.Close()
			}
			b.ReportMetric(float64(compressed)/(1<<20), "compressed-MiB")
			b.ReportMetric(float64(sizes[image.Layout.Check])/(1<<20), "binary-MiB")
			b.ReportMetric(float64(sizes[image.Layout.Cluster])/(1<<20), "cluster-MiB")
			b.ReportMetric(float64(sizes[image.Layout.CACerts])/(1<<10), "ca-KiB")
		})
	}
}
