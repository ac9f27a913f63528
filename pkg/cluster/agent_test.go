package cluster

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
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
	data, err := yaml.YAMLToJSON([]byte(y))
	require.NoError(t, err)
	u := &unstructured.Unstructured{}
	// As the API client decodes: integers as int64, so generations compare.
	require.NoError(t, utiljson.Unmarshal(data, &u.Object))
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
		{"health check still failing after the retry interval", ks(old, ours, "False", "HealthCheckFailed"), []time.Duration{0, 30 * time.Second}, false, "still failing after a retry: HealthCheckFailed: the message"},
		{"artifact fetch failing for ours: wait for a retry", ks(old, ours, "False", "ArtifactFailed"), []time.Duration{0, 20 * time.Second}, false, ""},
		{"ready at ours for an old generation: keep waiting", strings.Replace(ks(ours, ours, "True", "ReconciliationSucceeded"), "observedGeneration: 2", "observedGeneration: 1", 1), []time.Duration{0}, false, ""},
		{"stalled at ours: fail now", ks(old, ours, "False", "BuildFailed") + stalled, []time.Duration{0}, false, "Stalled InvalidPath: path not found"},
		{"stalled left from the old revision: wait for the agent to try ours", ks(old, old, "False", "BuildFailed") + stalled, []time.Duration{0, 20 * time.Second}, false, ""},
		{"stalled left from the old revision past the retry interval", ks(old, old, "False", "BuildFailed") + stalled, []time.Duration{0, 30 * time.Second}, false, "Stalled InvalidPath for 25s, last attempted revision " + old},
		{"a dependency not ready for ours: only the timeout ends the wait", ks(old, ours, "False", "DependencyNotReady"), []time.Duration{0, time.Hour}, false, ""},
		{"recovered after a failed attempt", ks(ours, ours, "True", "ReconciliationSucceeded"), []time.Duration{0}, true, ""},
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
}

func TestFluxJudgeSecondFailedAttempt(t *testing.T) {
	old, ours := "main@sha1:1111111111111111111111111111111111111111", "main@sha1:"+sha
	judge := flux{}.judger(obj(t, ks(old, old, "True", "ReconciliationSucceeded")), sha)
	t0 := time.Now()
	for i, step := range []struct {
		status string
		fail   bool
	}{
		{ks(old, old, "True", "ReconciliationSucceeded"), false},
		{ks(old, ours, "Unknown", "Progressing"), false},
		{ks(old, ours, "False", "HealthCheckFailed"), false}, // the first attempt: Flux retries
		{ks(old, ours, "False", "HealthCheckFailed"), false}, // the same status again is no new attempt
		{ks(old, ours, "Unknown", "Progressing"), false},     // the retry
		{ks(old, ours, "False", "HealthCheckFailed"), true},  // failed again
	} {
		_, _, err := judge(obj(t, step.status), t0.Add(time.Duration(i)*time.Second))
		if step.fail {
			require.ErrorContains(t, err, "still failing after a retry: HealthCheckFailed: the message", "step %d", i)
			return
		}
		require.NoError(t, err, "step %d", i)
	}
	t.Fatal("the second failed attempt did not fail")
}

const stalled = "  - {type: Stalled, status: \"True\", reason: InvalidPath, message: \"path not found\"}\n"

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
		{"degraded while out of sync at ours: the live state is the old commit's", app(sha, "OutOfSync", "Degraded", "", ""), false, ""},
		{"a failed operation from before, revision unknown: keep waiting", app(old, "OutOfSync", "Healthy", "Failed", ""), false, ""},
		{"synced healthy at ours while an operation runs", app(sha, "Synced", "Healthy", "Running", sha), false, ""},
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

func TestArgoJudgeOperationItSawStart(t *testing.T) {
	judge := argocd{}.judger(nil, sha)
	running := obj(t, app("", "OutOfSync", "Missing", "Running", ""))
	done, _, err := judge(running, time.Now())
	require.False(t, done)
	require.NoError(t, err)
	failed := obj(t, app("", "OutOfSync", "Missing", "Failed", ""))
	_, state, err := judge(failed, time.Now())
	require.ErrorContains(t, err, "sync Failed: one or more objects failed to apply", "an operation that failed before resolving a revision is ours when it started while waiting")
	require.Equal(t, "sync OutOfSync at (none), health Missing, operation Failed", state)
}
