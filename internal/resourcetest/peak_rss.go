package resourcetest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// RunPeakRSS is RunContext under GNU time, whose figure it puts in
// Result.MaxRSS: the rusage of a direct child of this test process starts
// from the test's own peak, which Linux carries across the vfork and exec,
// while GNU time's child is exec'd from a small process.
func RunPeakRSS(ctx context.Context, t testing.TB, verb, dir string, request any, env map[string]string) Result {
	t.Helper()
	const gnuTime = "/usr/bin/time"
	if _, err := os.Stat(gnuTime); err != nil {
		t.Fatalf("measure peak memory: %v (install GNU time: apt-get install time)", err)
	}
	report := filepath.Join(t.TempDir(), "peak-rss")
	res := RunCommand(ctx, t, []string{gnuTime, "-f", "%M", "-o", report, filepath.Join(Binaries(t), verb)}, dir, request, env)
	text, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("read the peak memory of %s: %v", verb, err)
	}
	// After a failure GNU time writes "Command exited with non-zero
	// status N" before the figure (KiB).
	fields := strings.Fields(string(text))
	if len(fields) == 0 {
		t.Fatalf("peak memory of %s: empty report", verb)
	}
	kib, err := strconv.ParseInt(fields[len(fields)-1], 10, 64)
	if err != nil {
		t.Fatalf("peak memory of %s: %q: %v", verb, text, err)
	}
	res.MaxRSS = kib << 10
	return res
}
