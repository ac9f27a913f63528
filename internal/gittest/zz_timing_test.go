package gittest

import (
	"strconv"
	"testing"
	"time"
)

func TestZZTiming(t *testing.T) {
	s := New(t)
	s.CreateRepo(t, "big")
	t0 := time.Now()
	step := func(n string) { t.Log(n, time.Since(t0)); t0 = time.Now() }
	s.Commit(t, "big", "main", map[string]string{"version": "0.0.0"}, "start")
	step("commit")
	s.SeedHistory(t, "big", "main", 10000, func(i int) map[string]string {
		return map[string]string{"counter": strconv.Itoa(i), "dir/f" + strconv.Itoa(i%10): strconv.Itoa(i)}
	})
	step("seed")
	s.Tip(t, "big", "main")
	step("tip")
	s.Git(t, "big", "rev-list", "--count", "main")
	step("count")
	s.ReadFile(t, "big", "main", "counter")
	step("read")
	s.Git(t, "big", "rev-list", "--max-parents=0", "main")
	step("maxp")
	s.Git(t, "big", "log", "-1", "--format=%s", "main")
	step("log")
}
