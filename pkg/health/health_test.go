package health

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// The fixtures are live objects with their status, one per file under
// testdata/<kind>/, each named by a table below with the state and message
// expected of it. TestFixturesAllUsed keeps the two in step.

const (
	sha         = "3becd003b8704fbc0c7e3f041ff27c51e53ed5f6"
	ours        = "main@sha1:" + sha
	oursChart   = "0.1.0+3becd003b870"
	oldChart    = "0.1.0+111111111111"
	degradedWeb = "\n  Deployment/prod/web: Degraded Deployment exceeded its progress deadline"
)

// fixture reads testdata/<name>.yaml as the API client decodes it
// (integers as int64, so generations compare).
func fixture(t *testing.T, name string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".yaml"))
	require.NoError(t, err)
	js, err := yaml.YAMLToJSON(data)
	require.NoError(t, err)
	u := &unstructured.Unstructured{}
	require.NoError(t, u.UnmarshalJSON(js))
	return u
}

var ruleCases = []struct {
	fixture string
	state   State
	msg     string
}{
	{"deployment/not-observed", InProgress, "waiting for the controller to observe generation 2"},
	{"deployment/updating", InProgress, "1/3 updated"},
	{"deployment/old-replicas-left", InProgress, "3/3 updated, 1 old replicas pending termination"},
	{"deployment/not-available", InProgress, "3/3 updated, 2/3 available"},
	{"deployment/ready", Current, "3/3 available"},
	{"deployment/default-replicas", Current, "1/1 available"},
	{"deployment/scaled-to-zero", Current, "0/0 available"},
	{"deployment/deadline-exceeded", Failed, `Progressing=False ProgressDeadlineExceeded: ReplicaSet "web-1" has timed out progressing.`},
	{"deployment/stale-deadline", InProgress, "waiting for the controller to observe generation 2"},

	{"statefulset/rolling", InProgress, "1/2 updated"},
	{"statefulset/not-ready", InProgress, "1/2 ready"},
	{"statefulset/partition", Current, "1/1 updated (partition 2)"},
	{"statefulset/ready", Current, "2/2 ready"},
	{"statefulset/on-delete", Current, "updateStrategy OnDelete: not waiting for pods to be replaced"},
	{"statefulset/not-observed", InProgress, "waiting for the controller to observe generation 1"},

	{"daemonset/updating", InProgress, "2/3 updated"},
	{"daemonset/unavailable", InProgress, "1/3 available"},
	{"daemonset/ready", Current, "3/3 available"},

	{"job/running", InProgress, "1 active, 0 succeeded, 0 failed"},
	{"job/complete", Current, "complete (1 succeeded)"},
	{"job/failed", Failed, "Failed BackoffLimitExceeded: Job has reached the specified backoff limit"},

	{"pod/succeeded", Current, "Succeeded: every container completed"},
	{"pod/failed", Failed, `Failed; Ready=False PodFailed:; container migrate terminated: Error (exit 1) relation "users" already exists`},
	{"pod/evicted", Failed, "Failed Evicted: The node was low on resource: memory."},
	{"pod/running-to-completion", InProgress, "Running, waiting for it to complete (restartPolicy Never)"},
	{"pod/ready", Current, "Running and Ready"},
	{"pod/unschedulable", InProgress, "Pending; PodScheduled=False Unschedulable: 0/1 nodes are available: 1 Insufficient cpu."},
	{"pod/image-pull-backoff", Failed, `container app: ImagePullBackOff: Back-off pulling image "nginx:does-not-exist"`},

	{"pvc/pending", InProgress, "Pending, waiting to be bound to a volume"},
	{"pvc/bound", Current, "Bound to PersistentVolume pvc-0b7e3c52-6f0d-4b59-9d0e-2f6a8c1d7e41"},
	{"pvc/lost", Failed, "Lost: its PersistentVolume pv-data-0 no longer exists"},

	{"service/cluster-ip", Current, "exists"},
	{"service/load-balancer-pending", InProgress, "waiting for the load balancer's address (status.loadBalancer.ingress)"},
	{"service/load-balancer-ip", Current, "load balancer at 203.0.113.10"},
	{"service/load-balancer-hostname", Current, "load balancer at a1b2c3-123456789.eu-west-1.elb.amazonaws.com"},

	{"ingress/no-address", Current, "exists (no address published: not waited for)"},
	{"ingress/address", Current, "exists, at 198.51.100.4"},

	{"crd/not-established", InProgress, "waiting for condition Established"},
	{"crd/established", Current, "Established"},
	{"crd/names-conflict", Failed, `NamesAccepted=False PluralConflict: "widgets" is already in use`},

	{"generic/not-ready", InProgress, "Ready=False Pending: waiting for db"},
	{"generic/stale", InProgress, "waiting for the controller to observe generation 2"},
	{"generic/ready", Current, "Ready"},
	{"generic/stalled", Failed, "Stalled=True BadSpec: no such plan"},
	{"generic/reconciling", InProgress, "Reconciling=True Progressing: Running health checks"},
	{"generic/configmap", Current, "exists"},
}

var kustomizationCases = []agentCase{
	{[]string{"applied-ready"}, []time.Duration{0}, Current, "Ready=True ReconciliationSucceeded, applied " + ours},
	{[]string{"old-ready"}, []time.Duration{0}, InProgress, ""},
	{[]string{"old-health-check-failed"}, []time.Duration{0, time.Hour}, InProgress, ""},
	{[]string{"ours-dry-run-failed"}, []time.Duration{0}, Failed, "revision " + ours + " failed: ReconciliationFailed: the message"},
	{[]string{"ours-health-check-failed"}, []time.Duration{0, 20 * time.Second}, InProgress, "Ready=False HealthCheckFailed"},
	{[]string{"ours-health-check-failed"}, []time.Duration{0, 30 * time.Second}, Failed, "still failing after a retry: HealthCheckFailed: the message"},
	{[]string{"ours-artifact-failed"}, []time.Duration{0, 20 * time.Second}, InProgress, ""},
	{[]string{"ours-ready-old-generation"}, []time.Duration{0}, InProgress, ""},
	{[]string{"ours-stalled"}, []time.Duration{0}, Failed, "Stalled InvalidPath: path not found"},
	{[]string{"old-stalled"}, []time.Duration{0, 20 * time.Second}, InProgress, "Stalled InvalidPath"},
	{[]string{"old-stalled"}, []time.Duration{0, 30 * time.Second}, Failed, "Stalled InvalidPath for 25s, last attempted revision main@sha1:1111111111111111111111111111111111111111"},
	{[]string{"ours-dependency-not-ready"}, []time.Duration{0, time.Hour}, InProgress, "DependencyNotReady"},
	// A second failed attempt fails at once: the same status seen twice is
	// one attempt; Ready going Unknown for the retry and back to False is
	// the second.
	{[]string{"old-ready", "ours-progressing", "ours-health-check-failed", "ours-health-check-failed", "ours-progressing", "ours-health-check-failed"},
		[]time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second, 5 * time.Second}, Failed, "still failing after a retry: HealthCheckFailed"},
	{[]string{"old-ready", "ours-progressing", "ours-health-check-failed", "ours-health-check-failed"},
		[]time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second}, InProgress, ""},
}

var gitRepositoryCases = []agentCase{
	{[]string{"artifact-ours"}, []time.Duration{0}, Current, "Ready=True Succeeded, artifact " + ours},
	// It never holds the wait: the Kustomization says when rev is applied.
	{[]string{"artifact-old"}, []time.Duration{0}, Current, "artifact main@sha1:1111111111111111111111111111111111111111"},
	{[]string{"ours-unsigned"}, []time.Duration{0}, Failed, "refuses revision " + sha + ": InvalidCommitSignature: signature verification of commit '" + sha + "' failed"},
	{[]string{"ours-unsigned-request-handled"}, []time.Duration{0}, Failed, "refuses revision " + sha + ": InvalidCommitSignature"},
	{[]string{"ours-unsigned-request-pending"}, []time.Duration{0}, Current, "(reconcile requested)"},
	{[]string{"old-unsigned"}, []time.Duration{0}, Current, "Ready=False InvalidCommitSignature"},
	{[]string{"fetch-failed"}, []time.Duration{0}, Current, "GitOperationFailed"},
}

var helmReleaseCases = []struct {
	target string
	agentCase
}{
	{oursChart, agentCase{[]string{"released-ours"}, []time.Duration{0}, Current, "Ready=True UpgradeSucceeded, generation 2 (observed 2), attempted chart " + oursChart + ", release web.v3 deployed (chart web@" + oursChart + ")"}},
	{oursChart, agentCase{[]string{"old-chart"}, []time.Duration{0}, InProgress, "attempted chart " + oldChart}},
	{oursChart, agentCase{[]string{"old-chart-stalled"}, []time.Duration{0, time.Hour}, InProgress, "Stalled RetriesExceeded"}},
	{oursChart, agentCase{[]string{"ours-stalled"}, []time.Duration{0}, Failed, "helm says no (Stalled RetriesExceeded: Failed to upgrade after 1 attempt(s))"}},
	{oursChart, agentCase{[]string{"ours-retrying"}, []time.Duration{0, time.Hour}, InProgress, ""}},
	{oursChart, agentCase{[]string{"ours-failing"}, []time.Duration{0, 20 * time.Second}, InProgress, ": helm says no"}},
	{oursChart, agentCase{[]string{"ours-failing"}, []time.Duration{0, 30 * time.Second}, Failed, "still failing after 25s: UpgradeFailed: helm says no"}},
	{"", agentCase{[]string{"generation-not-attempted"}, []time.Duration{0}, InProgress, "generation 2 (observed 2)"}},
	{"", agentCase{[]string{"released-ours"}, []time.Duration{0}, Current, ""}},
}

var helmChartCases = []struct {
	fixture string
	state   State
	msg     string
}{
	{"built-ours", Current, "Ready=True ChartPackageSucceeded, source revision " + ours + ", chart 0.1.0"},
	{"old-commit", InProgress, ""},
	{"old-commit-failed", InProgress, "Ready=False BuildFailed"},
	{"ours-build-failed", Failed, "the chart at revision " + ours + " does not build: BuildFailed: the message"},
	{"ours-progressing", InProgress, ""},
	{"ours-built-recorded", Current, ""},
	{"ours-built-not-recorded", InProgress, ""},
	{"ours-reconciling", InProgress, ", reconciling"},
}

var applicationCases = []agentCase{
	{[]string{"synced-healthy"}, []time.Duration{0}, Current, "sync Synced at 3becd003b870, health Healthy, operation Succeeded"},
	{[]string{"healthy-no-operation"}, []time.Duration{0}, Current, "operation (none)"},
	{[]string{"old-synced-healthy"}, []time.Duration{0}, InProgress, ""},
	{[]string{"operation-running"}, []time.Duration{0}, InProgress, "operation Running"},
	{[]string{"degraded"}, []time.Duration{0}, Failed, "revision " + sha + " is Degraded" + degradedWeb},
	{[]string{"old-degraded"}, []time.Duration{0}, InProgress, ""},
	{[]string{"sync-failed"}, []time.Duration{0}, Failed, "sync Failed: one or more objects failed to apply" + degradedWeb},
	{[]string{"out-of-sync-degraded"}, []time.Duration{0}, InProgress, ""},
	{[]string{"old-failed-unknown-revision"}, []time.Duration{0}, InProgress, ""},
	{[]string{"healthy-operation-running"}, []time.Duration{0}, InProgress, ""},
	// An operation that failed before resolving a revision is ours when
	// it was seen to start while waiting.
	{[]string{"running-no-revision", "failed-no-revision"}, []time.Duration{0, 0}, Failed, "sync Failed: one or more objects failed to apply"},
	{[]string{"failed-no-revision"}, []time.Duration{0}, InProgress, "sync OutOfSync at (none), health Missing, operation Failed"},
}

func TestRules(t *testing.T) {
	for _, tt := range ruleCases {
		t.Run(tt.fixture, func(t *testing.T) {
			o := fixture(t, tt.fixture)
			got := For(o.GroupVersionKind().GroupKind())(o, time.Now())
			require.Equal(t, Status{tt.state, tt.msg}, got)
		})
	}
}

// judged runs judge over the fixtures, the i-th at t0+at[i] (the last
// fixture again for the remaining offsets), and returns the last verdict.
func judged(t *testing.T, judge Judge, dir string, fixtures []string, at []time.Duration) Status {
	t.Helper()
	t0 := time.Now()
	var st Status
	for i, d := range at {
		st = judge(fixture(t, dir+"/"+fixtures[min(i, len(fixtures)-1)]), t0.Add(d))
	}
	return st
}

// agentCase is a table row of an agent's judge: its fixtures judged at the
// offsets, the state expected, and what its message contains.
type agentCase struct {
	fixtures []string
	at       []time.Duration
	state    State
	msg      string
}

func (c agentCase) name() string { return strings.Join(c.fixtures, "+") }

func TestFluxKustomization(t *testing.T) {
	for _, tt := range kustomizationCases {
		t.Run(tt.name(), func(t *testing.T) {
			st := judged(t, FluxKustomization(fixture(t, "flux_kustomization/"+tt.fixtures[0]), sha), "flux_kustomization", tt.fixtures, tt.at)
			require.Equal(t, tt.state, st.State, st.Message)
			require.Contains(t, st.Message, tt.msg)
		})
	}
}

func TestFluxGitRepository(t *testing.T) {
	for _, tt := range gitRepositoryCases {
		t.Run(tt.name(), func(t *testing.T) {
			st := judged(t, FluxGitRepository(sha), "flux_gitrepository", tt.fixtures, tt.at)
			require.Equal(t, tt.state, st.State, st.Message)
			require.Contains(t, st.Message, tt.msg)
		})
	}
}

func TestHelmRelease(t *testing.T) {
	for _, tt := range helmReleaseCases {
		t.Run(tt.name()+"@"+tt.target, func(t *testing.T) {
			st := judged(t, HelmRelease(fixture(t, "flux_helmrelease/"+tt.fixtures[0]), tt.target), "flux_helmrelease", tt.fixtures, tt.at)
			require.Equal(t, tt.state, st.State, st.Message)
			require.Contains(t, st.Message, tt.msg)
		})
	}
}

func TestHelmChart(t *testing.T) {
	for _, tt := range helmChartCases {
		t.Run(tt.fixture, func(t *testing.T) {
			st := HelmChart(sha)(fixture(t, "flux_helmchart/"+tt.fixture), time.Now())
			require.Equal(t, tt.state, st.State, st.Message)
			require.Contains(t, st.Message, tt.msg)
		})
	}
}

func TestArgoCDApplication(t *testing.T) {
	for _, tt := range applicationCases {
		t.Run(tt.name(), func(t *testing.T) {
			st := judged(t, ArgoCDApplication(sha), "argocd_application", tt.fixtures, tt.at)
			require.Equal(t, tt.state, st.State, st.Message)
			require.Contains(t, st.Message, tt.msg)
			require.NotContains(t, st.Message, "Service/prod/web", "healthy resources are not listed")
		})
	}
}

func TestSameRevision(t *testing.T) {
	for _, tt := range []struct {
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
	} {
		t.Run(tt.a+"~"+tt.b, func(t *testing.T) {
			require.Equal(t, tt.want, SameRevision(tt.a, tt.b))
		})
	}
}

// TestFixturesAllUsed fails for a fixture no table names: it would test
// nothing.
func TestFixturesAllUsed(t *testing.T) {
	named := map[string]bool{}
	for _, c := range ruleCases {
		named[c.fixture] = true
	}
	for _, c := range helmChartCases {
		named["flux_helmchart/"+c.fixture] = true
	}
	for dir, cases := range map[string][]agentCase{"flux_kustomization": kustomizationCases, "flux_gitrepository": gitRepositoryCases, "flux_ocirepository": ociRepositoryCases, "argocd_application": applicationCases} {
		for _, c := range cases {
			for _, f := range c.fixtures {
				named[dir+"/"+f] = true
			}
		}
	}
	for _, c := range helmReleaseCases {
		for _, f := range c.fixtures {
			named["flux_helmrelease/"+f] = true
		}
	}
	var unused []string
	require.NoError(t, filepath.WalkDir("testdata", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel("testdata", path)
		if err != nil {
			return err
		}
		if name := strings.TrimSuffix(filepath.ToSlash(rel), ".yaml"); !named[name] {
			unused = append(unused, path)
		}
		return nil
	}))
	sort.Strings(unused)
	require.Empty(t, unused, "fixtures no table names: add each to a table in health_test.go")
}
