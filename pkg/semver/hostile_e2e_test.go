package semver_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
)

// maxPeakRSS is what a step may use against a hostile server, whatever it
// sends (the binary alone is about 25 MiB).
const maxPeakRSS = 300 << 20

// hostileServers answer a fetch with a pack (or elsewhere, with options)
// built to exhaust the worker; the error must say any one of wantAny.
var hostileServers = []struct {
	name    string
	pack    gittest.PackWriter
	wantAny []string
	opts    []gittest.HostileOption
}{
	{"header claiming 4294967295 objects", gittest.ClaimingPack(0xffffffff), []string{"claims 4294967295 objects"}, nil},
	{"an object inflating without end", gittest.EndlessObjectPack(1 << 20), []string{"inflates to more than the 1048576 bytes"}, nil},
	{"an object bigger than memory allows", gittest.EndlessObjectPack(1 << 40), []string{"more than"}, nil},
	{"a delta copying without end", gittest.DeltaBombPack(1 << 20), []string{"delta"}, nil},
	{"empty deflate blocks without end", gittest.EmptyBlocksPack(), []string{"timed out", "larger than"}, nil},
	{"bytes without end after the pack", gittest.JunkAfterPack(), []string{"after the end of the pack"}, nil},
	{"a ref advertisement without end", nil, []string{"goes on past the 64 MiB a step reads (gitrepo.MaxRefsBytes)"}, []gittest.HostileOption{gittest.EndlessRefs()}},
	{"a 431 without end", nil, []string{"431 Request Header Fields Too Large: gittest: hostile server: an error page without end."}, []gittest.HostileOption{gittest.EndlessError(http.StatusRequestHeaderFieldsTooLarge)}},
}

// TestHostileServerEndsWithinTimeoutAtBoundedMemory runs check and out
// against servers built to exhaust the worker: each ends within
// source.timeout, with an error naming the server and the problem, at
// bounded memory, after a single fetch.
func TestHostileServerEndsWithinTimeoutAtBoundedMemory(t *testing.T) {
	t.Parallel()
	const timeout = 10 * time.Second
	for _, tt := range hostileServers {
		for _, verb := range []string{"check", "out"} {
			t.Run(tt.name+"/"+verb, func(t *testing.T) {
				t.Parallel()
				srv := gittest.NewHostile(t, tt.pack, tt.opts...)
				req := map[string]any{"source": source(map[string]any{"uri": srv.URL("app"), "timeout": timeout.String()})}
				if verb == "out" {
					req["params"] = map[string]any{"bump": "patch"}
				}
				rt.Binaries(t) // built before the clock starts
				start := time.Now()
				res := rt.RunPeakRSS(context.Background(), t, verb, t.TempDir(), req, rt.Env("release", "1"))
				took := time.Since(start)
				res.Fails(t, srv.Addr())
				require.True(t, containsAny(res.Stderr, tt.wantAny), "stderr names none of %q:\n%s", tt.wantAny, res.Stderr)
				require.Less(t, took, timeout+10*time.Second, "the step outlived its timeout")
				require.Less(t, res.MaxRSS, int64(maxPeakRSS), "peak RSS %d MiB", res.MaxRSS>>20)
				t.Logf("%s in %s, peak RSS %d MiB: %s", verb, took.Round(time.Millisecond), res.MaxRSS>>20, strings.TrimSpace(res.Stderr))
				require.LessOrEqual(t, srv.Requests(), int64(2), "one ref advertisement and one fetch: no retry")
			})
		}
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// requestCounter counts the requests of one git service and method a
// gittest server is sent, and breaks them with fault.
type requestCounter struct {
	service, method string
	fault           gittest.Fault
	n               atomic.Int64
}

func (c *requestCounter) serve(r *http.Request) gittest.Fault {
	if gittest.Service(r) != c.service || r.Method != c.method {
		return gittest.Fault{}
	}
	c.n.Add(1)
	return c.fault
}

// TestPermanentServerFailuresFailAtOnce: a 4xx answer or a pack the
// server's fsck rejects fails the step at the first attempt, with the
// server's words, and changes nothing.
func TestPermanentServerFailuresFailAtOnce(t *testing.T) {
	t.Parallel()
	const badModules = "[submodule \"x\"]\n\tpath = x\n\turl = -u./payload\n"
	tests := []struct {
		name    string
		verb    string
		counter *requestCounter
		fsck    bool
		want    []string
	}{
		{
			name:    "431 on the ref advertisement",
			verb:    "check",
			counter: &requestCounter{service: "git-upload-pack", method: http.MethodGet, fault: gittest.Fault{Status: http.StatusRequestHeaderFieldsTooLarge}},
			want:    []string{"431", "gittest: injected fault"},
		},
		{
			name:    "400 on the push",
			verb:    "out",
			counter: &requestCounter{service: "git-receive-pack", method: http.MethodPost, fault: gittest.Fault{Status: http.StatusBadRequest}},
			want:    []string{"400", "gittest: injected fault"},
		},
		{
			name:    "pack rejected by the server's fsck",
			verb:    "out",
			counter: &requestCounter{service: "git-receive-pack", method: http.MethodPost},
			fsck:    true,
			want:    []string{"unpack", "gitmodulesUrl: disallowed submodule url"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := gittest.New(t, gittest.WithHTTPFault(tt.counter.serve))
			srv.CreateRepo(t, "app")
			tip := srv.Commit(t, "app", "version", map[string]string{"version": "1.0.0", ".gitmodules": badModules}, "seed")
			if tt.fsck {
				srv.Git(t, "app", "config", "receive.fsckObjects", "true")
			}
			req := map[string]any{"source": source(map[string]any{"uri": srv.HTTPURL("app")})}
			if tt.verb == "out" {
				req["params"] = map[string]any{"bump": "patch"}
			}
			res := rt.Run(t, tt.verb, t.TempDir(), req, rt.Env("release", "1"))
			res.Fails(t, append(tt.want, srv.HTTPAddr())...)
			t.Log(strings.TrimSpace(res.Stderr))
			require.NotContains(t, res.Stderr, "retrying")
			require.Equal(t, int64(1), tt.counter.n.Load(), "attempts")
			require.Equal(t, tip, srv.Tip(t, "app", "version"), "the remote is unchanged")
		})
	}
}
