package main

import (
	"strings"
	"testing"
)

func TestTable(t *testing.T) {
	in := `goos: linux
pkg: github.com/gitops-resource/gitops-resource/bench
BenchmarkSemver/check-2         	      10	  60000000 ns/op	        30.0 ms	        90.0 git-ms	         0.340 x-git	        40.5 rss-MiB	         6.00 anon-MiB	        10.0 rss-x-repo	         1.50 anon-x-repo	         4.00 repo-MiB
BenchmarkSemver/check-2         	      10	  60000000 ns/op	        26.0 ms	        80.0 git-ms	         0.300 x-git	        41.5 rss-MiB	         6.00 anon-MiB	        10.0 rss-x-repo	         1.50 anon-x-repo	         4.00 repo-MiB
BenchmarkSemver/check-2         	      10	  60000000 ns/op	        35.0 ms	        95.0 git-ms	         0.400 x-git	        40.0 rss-MiB	         6.00 anon-MiB	        10.0 rss-x-repo	         1.50 anon-x-repo	         4.00 repo-MiB
BenchmarkImage/linux-arm64-2    	      10	   1000000 ns/op	        12.5 compressed-MiB	        31.9 binary-MiB	       210 ca-KiB
pkg: github.com/gitops-resource/gitops-resource/pkg/cluster
BenchmarkApply100/deployments-2 	       3	7000000000 ns/op	        17.0 ms-ready-to-exit
PASS
`
	rows, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	write(&out, rows)
	for _, want := range []string{
		"| semver `check` vs `ls-remote` + `fetch --depth 1` + `cat-file` | 30.0 ms (26.0–35.0) | 90.0 ms (80.0–95.0) | 0.340× (0.300–0.400) | 40.5 MiB (40.0–41.5) | 6.00 MiB | 10.0×, 1.50× | 4.00 MiB bare repo |",
		"| image linux/arm64: the same | 12.5 MiB compressed |  |  |  |  |  | 31.9 MiB binary; 210 KiB CA bundle |",
		"| cluster `out`: 100 Deployments, new image, wait for 100 rollouts | 7000 ms |  |  |  |  |  | 17.0 ms last ready → exit |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks\n%s\ngot:\n%s", want, out.String())
		}
	}
}
