package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func hrStatus(attemptedGen int, attempted, ready, reason, extra string) string {
	return `
metadata: {name: web, namespace: apps, generation: 2}
spec: {interval: 10s}
status:
  observedGeneration: 2
  lastAttemptedGeneration: ` + fmt.Sprint(attemptedGen) + `
  lastAttemptedRevision: ` + attempted + `
  history:
  - {name: web, namespace: apps, version: 3, status: deployed, chartName: web, chartVersion: ` + attempted + `}
  conditions:
  - {type: Ready, status: "` + ready + `", reason: ` + reason + `, message: "helm says no"}
` + extra
}

func TestHelmReleaseJudge(t *testing.T) {
	const ours, old = "0.1.0+3becd003b870", "0.1.0+111111111111"
	stalled := "  - {type: Stalled, status: \"True\", reason: RetriesExceeded, message: \"Failed to upgrade after 1 attempt(s)\"}\n"
	retrying := "  - {type: Reconciling, status: \"True\", reason: ProgressingWithRetry, message: \"retrying\"}\n"
	tests := []struct {
		name   string
		target string
		status string
		at     []time.Duration
		done   bool
		fail   string
	}{
		{"released our chart", ours, hrStatus(2, ours, "True", "UpgradeSucceeded", ""), []time.Duration{0}, true, ""},
		{"still at the old chart", ours, hrStatus(2, old, "True", "UpgradeSucceeded", ""), []time.Duration{0}, false, ""},
		{"old chart failed: not ours", ours, hrStatus(2, old, "False", "UpgradeFailed", stalled), []time.Duration{0, time.Hour}, false, ""},
		{"our chart stalled", ours, hrStatus(2, ours, "False", "UpgradeFailed", stalled), []time.Duration{0}, false, "helm says no (Stalled RetriesExceeded"},
		{"our chart retrying", ours, hrStatus(2, ours, "False", "UpgradeFailed", retrying), []time.Duration{0, time.Hour}, false, ""},
		{"our chart failing past the retry interval", ours, hrStatus(2, ours, "False", "UpgradeFailed", ""), []time.Duration{0, 30 * time.Second}, false, "still failing after 25s: UpgradeFailed: helm says no"},
		{"our chart failing, within the retry interval", ours, hrStatus(2, ours, "False", "UpgradeFailed", ""), []time.Duration{0, 20 * time.Second}, false, ""},
		{"generation not attempted yet", "", hrStatus(1, ours, "True", "UpgradeSucceeded", ""), []time.Duration{0}, false, ""},
		{"generation released", "", hrStatus(2, ours, "True", "UpgradeSucceeded", ""), []time.Duration{0}, true, ""},
	}
	t0 := time.Now()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := obj(t, tt.status)
			judge := helmReleaseJudger(o, tt.target)
			var done bool
			var err error
			for _, d := range tt.at {
				done, _, err = judge(o, t0.Add(d))
			}
			require.Equal(t, tt.done, done)
			if tt.fail == "" {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, tt.fail)
			}
		})
	}
}

func TestHelmChartJudge(t *testing.T) {
	ours := "main@sha1:" + sha
	old := "main@sha1:1111111111111111111111111111111111111111"
	chart := func(observed, ready, reason string) string {
		return `
metadata: {name: apps-web, namespace: apps, generation: 1}
status:
  observedGeneration: 1
  observedSourceArtifactRevision: ` + observed + `
  artifact: {revision: 0.1.0}
  conditions:
  - {type: Ready, status: "` + ready + `", reason: ` + reason + `, message: "the message"}
`
	}
	built := func(version string) string {
		return strings.Replace(chart(ours, "True", "ChartPackageSucceeded"), "the message", "packaged 'web' chart with version '"+version+"'", 1)
	}
	for _, tt := range []struct {
		name, status string
		done         bool
		fail         string
	}{
		{"built from ours", chart(ours, "True", "ChartPackageSucceeded"), true, ""},
		{"still the old commit", chart(old, "True", "ChartPackageSucceeded"), false, ""},
		{"old commit failed", chart(old, "False", "BuildFailed"), false, ""},
		{"ours does not build", chart(ours, "False", "BuildFailed"), false, "does not build: BuildFailed: the message"},
		{"ours in progress", chart(ours, "Unknown", "Progressing"), false, ""},
		{"ours built, artifact recorded", built("0.1.0"), true, ""},
		{"ours built, artifact not yet recorded", built("0.2.0"), false, ""},
		{"ours reconciling", chart(ours, "True", "ChartPackageSucceeded") + "  - {type: Reconciling, status: \"True\", reason: Progressing}\n", false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			done, _, err := helmChartJudger(sha)(obj(t, tt.status), time.Now())
			require.Equal(t, tt.done, done)
			if tt.fail == "" {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, tt.fail)
			}
		})
	}
}

func TestManagedObjects(t *testing.T) {
	ks := obj(t, `
status:
  inventory:
    entries:
    - {id: web_web__ConfigMap, v: v1}
    - {id: web_web_apps_Deployment, v: v1}
    - {id: _web__Namespace, v: v1}
    - {id: broken, v: v1}
`)
	var got []string
	for _, o := range fluxInventory(ks) {
		got = append(got, o.GetAPIVersion()+" "+o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName())
	}
	require.Equal(t, []string{"v1 ConfigMap web/web", "apps/v1 Deployment web/web", "v1 Namespace /web"}, got)

	app := obj(t, `
status:
  resources:
  - {group: apps, version: v1, kind: Deployment, namespace: web, name: web, status: Synced}
  - {version: v1, kind: Service, namespace: web, name: web}
`)
	got = nil
	for _, o := range argoResources(app) {
		got = append(got, o.GetAPIVersion()+" "+o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName())
	}
	require.Equal(t, []string{"apps/v1 Deployment web/web", "v1 Service web/web"}, got)
}
