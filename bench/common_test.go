package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gitops-resource/gitops-resource/internal/image"
	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
)

// run runs a verb through the binary, fails the benchmark unless it
// succeeds, and keeps the peak resident memory seen. The binary runs under
// GNU time: rusage of a child of this (large) test process would report this
// process's memory, which Linux carries across the vfork+exec.
func run(b *testing.B, peak *int64, verb, dir string, req any) {
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
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + b.TempDir()}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s: %v\n%s", verb, err, stderr.String())
	}
	text, err := os.ReadFile(report)
	if err != nil {
		b.Fatalf("read peak memory: %v (is GNU time installed? apt-get install time)", err)
	}
	kib, err := strconv.ParseInt(strings.TrimSpace(string(text)), 10, 64)
	if err != nil {
		b.Fatalf("peak memory %q: %v", text, err)
	}
	*peak = max(*peak, kib<<10)
}

// reportPeak adds the peak resident memory of the runs as a metric.
func reportPeak(b *testing.B, peak int64) {
	b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
}

// BenchmarkColdStart is the binary's start-up cost: check with a request
// that fails validation, before any network I/O.
func BenchmarkColdStart(b *testing.B) {
	rt.Binaries(b)
	for b.Loop() {
		res := rt.Run(b, "check", "", map[string]any{"source": map[string]any{"kind": "semver"}}, nil)
		if res.Code == 0 {
			b.Fatal("expected a config error")
		}
	}
}

// BenchmarkImage builds the image layout the Dockerfile produces (without
// Docker) and reports the size of its layer as pulled (compressed).
func BenchmarkImage(b *testing.B) {
	bin := filepath.Join(rt.Binaries(b), "check")
	var size int64
	for b.Loop() {
		img, err := image.Build(bin, "/etc/ssl/certs/ca-certificates.crt")
		if err != nil {
			b.Fatal(err)
		}
		layers, err := img.Layers()
		if err != nil {
			b.Fatal(err)
		}
		if size, err = layers[0].Size(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size)/(1<<20), "compressed-MiB")
}
