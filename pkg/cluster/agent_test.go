package cluster

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

const sha = "3becd003b8704fbc0c7e3f041ff27c51e53ed5f6"

func TestSameRevision(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"main@sha1:" + sha, sha, true},
		{"sha1:" + sha, sha, true},
		{"main@sha1:" + sha, sha[:7], true},
		{sha, "main@sha1:" + sha, true},
		{"v1.0@sha256:abcdef0123456789", "sha256:abcdef0123456789", true},
		{"main@sha1:" + sha, "3becd00", true},
		{"main@sha1:" + sha, "3becd0", false}, // too short to be sure
		{"main@sha1:" + sha, "4becd003b8704fbc0c7e3f041ff27c51e53ed5f6", false},
		{"", sha, false},
	}
	for _, tt := range tests {
		t.Run(tt.a+"~"+tt.b, func(t *testing.T) {
			require.Equal(t, tt.want, sameRevision(tt.a, tt.b))
		})
	}
}

func obj(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	require.NoError(t, yaml.Unmarshal([]byte(y), &u.Object))
	return u
}

func ks(applied, attempted, ready, reason string) string {
	return `
metadata: {name: app, namespace: flux-system, generation: 2}
spec: {interval: 1m, retryInterval: 10s}
status:
  observedGeneration: 2
  lastAppliedRevision: ` + applied + `
  lastAttemptedRevision: ` + attempted + `
  conditions:
  - {type: Ready, status: "` + ready + `", reason: ` + reason + `, message: "the message"}
`
}

func TestFluxJudge(t *testing.T) {
	old, ours := "main@sha1:1111111111111111111111111111111111111111", "main@sha1:"+sha
	t0 := time.Now()
	tests := []struct {
		name   string
		status string
		at     []time.Duration // judged at these offsets, last one counts
		done   bool
		fail   string
	}{
		{"applied and ready", ks(ours, ours, "True", "ReconciliationSucceeded"), []time.Duration{0}, true, ""},
		{"old revision ready: keep waiting", ks(old, old, "True", "ReconciliationSucceeded"), []time.Duration{0}, false, ""},
		{"stale failure of the old revision: keep waiting", ks(old, old, "False", "HealthCheckFailed"), []time.Duration{0, time.Hour}, false, ""},
		{"dry-run failure of ours: fail now", ks(old, ours, "False", "ReconciliationFailed"), []time.Duration{0}, false, "ReconciliationFailed: the message"},
		{"health check failing for ours: wait for a retry", ks(old, ours, "False", "HealthCheckFailed"), []time.Duration{0, 20 * time.Second}, false, ""},
		{"health check still failing after the retry interval", ks(old, ours, "False", "HealthCheckFailed"), []time.Duration{0, 30 * time.Second}, false, "HealthCheckFailed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := obj(t, tt.status)
			judge := flux{}.judger(o, sha)
			var done bool
			var err error
			for _, at := range tt.at {
				done, _, err = judge(o, t0.Add(at))
			}
			require.Equal(t, tt.done, done)
			if tt.fail == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.fail)
			require.True(t, errors.Is(err, errAgentFailed))
		})
	}
	t.Run("stalled", func(t *testing.T) {
		o := obj(t, ks(old, old, "False", "Progressing")+"  - {type: Stalled, status: \"True\", reason: InvalidPath, message: \"path not found\"}\n")
		_, _, err := flux{}.judger(o, sha)(o, t0)
		require.ErrorContains(t, err, "Stalled InvalidPath: path not found")
	})
}

func app(syncRev, sync, health, phase, opRev string) string {
	return `
metadata: {name: web, namespace: argocd}
status:
  sync: {status: ` + sync + `, revision: "` + syncRev + `"}
  health: {status: ` + health + `}
  operationState: {phase: "` + phase + `", message: "one or more objects failed to apply", syncResult: {revision: "` + opRev + `"}}
  resources:
  - {kind: Deployment, namespace: prod, name: web, health: {status: Degraded, message: "Deployment exceeded its progress deadline"}}
  - {kind: Service, namespace: prod, name: web, health: {status: Healthy}}
`
}

func TestArgoJudge(t *testing.T) {
	old := "1111111111111111111111111111111111111111"
	tests := []struct {
		name, status string
		done         bool
		fail         string
	}{
		{"synced healthy at ours", app(sha, "Synced", "Healthy", "Succeeded", sha), true, ""},
		{"already healthy at ours, no operation", app(sha, "Synced", "Healthy", "", ""), true, ""},
		{"synced healthy at the old commit is not success", app(old, "Synced", "Healthy", "Succeeded", old), false, ""},
		{"operation running", app(sha, "Synced", "Progressing", "Running", sha), false, ""},
		{"degraded at ours", app(sha, "Synced", "Degraded", "Succeeded", sha), false, "Deployment/prod/web: Degraded Deployment exceeded its progress deadline"},
		{"degraded at the old commit: keep waiting", app(old, "OutOfSync", "Degraded", "Succeeded", old), false, ""},
		{"failed sync of ours", app(old, "OutOfSync", "Healthy", "Failed", sha), false, "sync Failed: one or more objects failed to apply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := obj(t, tt.status)
			done, _, err := argocd{}.judger(o, sha)(o, time.Now())
			require.Equal(t, tt.done, done)
			if tt.fail == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.fail)
			require.NotContains(t, err.Error(), "Service/prod/web", "healthy resources are not listed")
		})
	}
}
