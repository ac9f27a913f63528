package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"testing"

	"github.com/gitops-resource/gitops-resource/pkg/app"
)

// BenchmarkProfile runs manifest in and out in this process (app.Run), so
// that -cpuprofile and -memprofile see our code rather than a child's. It
// runs only when a profile is asked for, and is not part of the table:
//
//	go test -run '^$' -bench Profile/in -benchtime 5x -cpuprofile cpu.out ./bench/
//	go tool pprof -top -cum bench.test cpu.out
//	go test -run '^$' -bench Profile/out -benchtime 5x -memprofile mem.out ./bench/
//	go tool pprof -sample_index=alloc_space -top bench.test mem.out
func BenchmarkProfile(b *testing.B) {
	if !profiling() {
		b.Skip("no -cpuprofile or -memprofile")
	}
	srv := manifestRepo(b)
	url := srv.HTTPURL("config")
	source := map[string]any{"kind": "manifest", "uri": url, "branch": "main"}
	tip := srv.Tip(b, "config", "main")
	getenv := func(string) string { return "" }
	runApp := func(b *testing.B, verb app.Verb, req any) {
		data, err := json.Marshal(req)
		if err != nil {
			b.Fatal(err)
		}
		var stderr bytes.Buffer
		if code := app.Run(context.Background(), verb, []string{b.TempDir()}, bytes.NewReader(data), io.Discard, &stderr, getenv); code != 0 {
			b.Fatalf("%s: exit %d\n%s", verb, code, stderr.String())
		}
	}
	// peakHeap reports the heap this process has mapped at its largest
	// (HeapSys never shrinks). The test's own git server shares the process,
	// so this is an upper bound; the table's figures come from the binary.
	peakHeap := func(b *testing.B) {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		b.ReportMetric(float64(m.HeapSys)/(1<<20), "heapsys-MiB")
	}
	b.Run("in", func(b *testing.B) {
		for b.Loop() {
			runApp(b, app.In, map[string]any{"source": source, "version": map[string]string{"ref": tip}})
		}
		peakHeap(b)
	})
	n := 0
	b.Run("out", func(b *testing.B) {
		for b.Loop() {
			n++
			runApp(b, app.Out, map[string]any{"source": source, "params": map[string]any{"images": []map[string]any{{"repository": "ghcr.io/acme/web", "tag": fmt.Sprintf("2.0.%d", n)}}}})
		}
		peakHeap(b)
	})
}

func profiling() bool {
	for _, name := range []string{"test.cpuprofile", "test.memprofile"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return true
		}
	}
	return os.Getenv("BENCH_PROFILE") != ""
}
