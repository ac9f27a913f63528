package manifest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
)

// TestHostileServerEndsWithinTimeoutAtBoundedMemory runs check, in and
// out of a config repo against a server whose pack claims 2^32-1 objects,
// or holds an object whose deflate stream never ends: each fails at once
// naming the server, under 300 MiB, after one fetch.
func TestHostileServerEndsWithinTimeoutAtBoundedMemory(t *testing.T) {
	t.Parallel()
	packs := []struct {
		name string
		pack gittest.PackWriter
		want string
	}{
		{"claiming 4294967295 objects", gittest.ClaimingPack(0xffffffff), "claims 4294967295 objects"},
		{"inflating without end", gittest.EndlessObjectPack(1 << 20), "inflates to more than the 1048576 bytes"},
	}
	const timeout = 15 * time.Second
	for _, tt := range packs {
		for _, verb := range []string{"check", "in", "out"} {
			t.Run(tt.name+"/"+verb, func(t *testing.T) {
				t.Parallel()
				srv := gittest.NewHostile(t, tt.pack)
				req := map[string]any{"source": map[string]any{"kind": "manifest", "uri": srv.URL("config"), "branch": "main", "timeout": timeout.String()}}
				switch verb {
				case "in":
					req["version"] = map[string]string{"ref": gittest.HostileTip}
				case "out":
					req["params"] = map[string]any{"images": []map[string]any{{"repository": "ghcr.io/acme/web", "tag": "2.0.0"}}}
				}
				rt.Binaries(t) // built before the clock starts
				start := time.Now()
				res := rt.RunPeakRSS(context.Background(), t, verb, t.TempDir(), req, rt.Env("ship", "1"))
				res.Fails(t, srv.Addr(), tt.want)
				require.Less(t, time.Since(start), timeout, "the step ended by the pack's check, before its timeout")
				require.Less(t, res.MaxRSS, int64(300<<20), "peak RSS %d MiB", res.MaxRSS>>20)
				require.Equal(t, int64(2), srv.Requests(), "one ref advertisement and one fetch: no retry")
			})
		}
	}
}
