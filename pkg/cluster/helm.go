package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/gitops-resource/gitops-resource/pkg/health"
	"github.com/gitops-resource/gitops-resource/pkg/kube"
	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

// Flux's HelmRelease (helm-controller) and the HelmChart it has
// source-controller build from its chart source.
var (
	helmReleaseGVR = schema.GroupVersionResource{Group: "helm.toolkit.fluxcd.io", Version: "v2", Resource: "helmreleases"}
	helmChartGVR   = schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "helmcharts"}
)

// helmAgent is mode flux with source.helmrelease and no kustomization: the
// HelmRelease's chart comes from a GitRepository, and a commit reaches the
// release through the HelmChart source-controller builds from it.
//
//	out: stamp reconcile.fluxcd.io/requestedAt on the GitRepository; wait
//	     until the HelmChart observed the commit (observedSourceArtifactRevision)
//	     and built its chart; then until the HelmRelease attempted that chart
//	     artifact (lastAttemptedRevision) and released it (Ready at its
//	     generation, history[0] deployed with that chart version).
//	check: the commit the HelmChart's current chart was built from.
//	in:  out without the request.
type helmAgent struct{}

func (helmAgent) check(ctx context.Context, in resource.Input, req checkRequest, c *kube.Client) ([]Version, error) {
	hr, err := getHelmRelease(ctx, c, req.Source)
	if err != nil {
		return nil, err
	}
	in.Logf("%s on %s: %s", kube.Ref(hr), c.Host(), helmReleaseState(hr))
	chart, err := getHelmChart(ctx, c, hr)
	if err != nil {
		return nil, err
	}
	rev := ""
	if chart != nil {
		rev = str(chart, "status", "observedSourceArtifactRevision")
		in.Logf("%s: chart %q built from revision %q", kube.Ref(chart), str(chart, "status", "artifact", "revision"), rev)
	}
	return liveVersions(rev), nil
}

func (h helmAgent) in(ctx context.Context, in resource.Input, req inRequest, c *kube.Client) (resource.Response, error) {
	want := req.Version.Revision
	hr, chart, err := h.wait(ctx, in, req.Source, c, want, nil)
	if err != nil {
		return resource.Response{}, err
	}
	return respond(in, str(chart, "status", "observedSourceArtifactRevision"), []*unstructured.Unstructured{hr, chart}, want)
}

func (h helmAgent) out(ctx context.Context, in resource.Input, req outRequest, c *kube.Client) (resource.Response, error) {
	p := req.Agent
	hr, chart, err := h.wait(ctx, in, req.Source, c, p.Revision, p)
	if err != nil {
		return resource.Response{}, err
	}
	if p.VerifyImages {
		if err := verifyManaged(ctx, in, c, []*unstructured.Unstructured{hr}, fluxInventory, p.Revision, req.timeout()); err != nil {
			return resource.Response{}, err
		}
	}
	return respond(in, str(chart, "status", "observedSourceArtifactRevision"), []*unstructured.Unstructured{hr, chart}, p.Revision)
}

// wait requests a reconcile of the chart's GitRepository (p not nil) and
// waits for the HelmChart, then the HelmRelease, at rev.
func (helmAgent) wait(ctx context.Context, in resource.Input, src *Source, c *kube.Client, rev string, p *AgentParams) (hr, chart *unstructured.Unstructured, err error) {
	hr, err = getHelmRelease(ctx, c, src)
	if err != nil {
		return nil, nil, err
	}
	kind, ns, name := chartSource(hr)
	if kind != "GitRepository" {
		from := "spec.chartRef"
		if kind != "" {
			from = kind + " " + ns + "/" + name
		}
		return nil, nil, resource.ConfigErrorf("%s takes its chart from %s, not from a GitRepository: a commit identifies no chart there; set source.kustomization to the Kustomization that applies the HelmRelease, and mode flux waits for both", kube.Ref(hr), from)
	}
	if p != nil {
		if err := fluxNotSuspended(hr, "release"); err != nil {
			return nil, nil, err
		}
		if err := requestSourceReconcile(ctx, c, fluxSources[kind], kind, ns, name, in.Logf); err != nil {
			return nil, nil, err
		}
	}
	return waitHelmRelease(ctx, in, c, hr, rev, true)
}

func getHelmRelease(ctx context.Context, c *kube.Client, src *Source) (*unstructured.Unstructured, error) {
	what := fmt.Sprintf("HelmRelease %s/%s", src.Namespace, src.HelmRelease)
	hr, err := c.Dynamic().Resource(helmReleaseGVR).Namespace(src.Namespace).Get(ctx, src.HelmRelease, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, resource.ConfigErrorf("%s not found on %s: check source.helmrelease and source.namespace (the HelmRelease lives in source.namespace too)", what, c.Host())
	}
	if err != nil {
		return nil, c.Explain("get", what, "get", helmReleaseGVR.Resource, src.Namespace, err)
	}
	return hr, nil
}

// chartSource is the kind, namespace and name of the source the
// HelmRelease's spec.chart takes its chart from ("" for spec.chartRef).
func chartSource(hr *unstructured.Unstructured) (kind, ns, name string) {
	return fluxSourceRef(hr, "spec", "chart", "spec", "sourceRef")
}

// sameSourceRef: the HelmRelease's chart comes from the GitRepository the
// Kustomization applies, so the chart follows the same commit.
func sameSourceRef(hr, ks *unstructured.Unstructured) bool {
	kind, ns, name := chartSource(hr)
	ksKind, ksNS, ksName := fluxSourceRef(ks, "spec", "sourceRef")
	return kind == "GitRepository" && kind == ksKind && name == ksName && ns == ksNS
}

// requestSourceReconcile stamps reconcile.fluxcd.io/requestedAt on a Flux
// source, so it fetches the new commit now instead of at its interval.
func requestSourceReconcile(ctx context.Context, c *kube.Client, gvr schema.GroupVersionResource, kind, ns, name string, log func(string, ...any)) error {
	stamp := fmt.Sprintf(`{"metadata":{"annotations":{"reconcile.fluxcd.io/requestedAt":%q}}}`, time.Now().Format(time.RFC3339Nano))
	what := fmt.Sprintf("%s %s/%s", kind, ns, name)
	if _, err := c.Dynamic().Resource(gvr).Namespace(ns).Patch(ctx, name, types.MergePatchType, []byte(stamp), metav1.PatchOptions{FieldManager: "gitops-resource"}); err != nil {
		return c.Explain("request a reconcile of", what, "patch", gvr.Resource, ns, err)
	}
	log("%s: reconcile requested", what)
	return nil
}

// helmChartName is the namespace and name of the HelmChart helm-controller
// keeps for hr: status.helmChart, else its naming rule (<hr ns>-<hr name>
// in the source's namespace).
func helmChartName(hr *unstructured.Unstructured) (ns, name string) {
	if ns, name, ok := strings.Cut(str(hr, "status", "helmChart"), "/"); ok {
		return ns, name
	}
	_, ns, _ = chartSource(hr)
	return ns, hr.GetNamespace() + "-" + hr.GetName()
}

// getHelmChart returns hr's HelmChart, or nil when it does not exist yet.
func getHelmChart(ctx context.Context, c *kube.Client, hr *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	ns, name := helmChartName(hr)
	chart, err := c.Dynamic().Resource(helmChartGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, c.Explain("get", "HelmChart "+ns+"/"+name+" of "+kube.Ref(hr), "get", helmChartGVR.Resource, ns, err)
	}
	return chart, nil
}

// waitHelmRelease waits until hr released what rev holds: with viaChart
// (its chart comes from the GitRepository at rev), first until its HelmChart
// built the chart at rev, then until hr attempted that chart artifact; in
// every case until hr is Ready at its generation with its last release
// deployed. hr as passed holds the spec of rev (the Kustomization applied
// it, or the commit does not touch it).
func waitHelmRelease(ctx context.Context, in resource.Input, c *kube.Client, hr *unstructured.Unstructured, rev string, viaChart bool) (*unstructured.Unstructured, *unstructured.Unstructured, error) {
	var chart *unstructured.Unstructured
	target := ""
	if viaChart {
		// helm-controller creates a new HelmRelease's HelmChart on its first
		// reconcile: the wait waits for it to exist too.
		ns, name := helmChartName(hr)
		chart = &unstructured.Unstructured{}
		chart.SetGroupVersionKind(helmChartGVR.GroupVersion().WithKind("HelmChart"))
		chart.SetNamespace(ns)
		chart.SetName(name)
		what := "HelmChart " + ns + "/" + name
		var err error
		chart, err = waitStage(ctx, in, c, stage{obj: chart, what: what,
			goal: "the chart built from revision " + rev, judge: health.HelmChart(rev)})
		if err != nil {
			return nil, nil, err
		}
		target = str(chart, "status", "artifact", "revision")
		if !strings.Contains(target, "+") && str(chart, "spec", "reconcileStrategy") != "Revision" {
			in.Logf("%s: chart version %s (reconcileStrategy ChartVersion): Flux releases a changed chart only when its version changes; reconcileStrategy: Revision releases every commit", what, target)
		}
	}
	goal := "its release at generation " + fmt.Sprint(hr.GetGeneration())
	if target != "" {
		goal = "the release of chart " + target
	}
	ns, name := hr.GetNamespace(), hr.GetName()
	hr, err := waitStage(ctx, in, c, stage{obj: hr, what: "HelmRelease " + ns + "/" + name,
		goal: goal, judge: health.HelmRelease(hr, target)})
	if errors.Is(err, errAgentFailed) {
		return nil, nil, withWorkloads(c, ns, name, err)
	}
	if err != nil {
		return nil, nil, err
	}
	return hr, chart, nil
}

// canReadPods: the credentials may list the pods and ReplicaSets where the
// workloads run (the verify-images Role of docs/cluster-rbac.md). Without,
// a failure report says only what the agent says.
func canReadPods(ctx context.Context, c *kube.Client, workloads []*unstructured.Unstructured) bool {
	for _, w := range workloads {
		one := metav1.ListOptions{Limit: 1}
		if _, err := c.Typed().CoreV1().Pods(w.GetNamespace()).List(ctx, one); err != nil {
			return false
		}
		if _, err := c.Typed().AppsV1().ReplicaSets(w.GetNamespace()).List(ctx, one); err != nil {
			return false
		}
	}
	return true
}

// withWorkloads adds to a failed release what its Deployments,
// StatefulSets and DaemonSets (status.inventory) are still waiting for;
// the wait logs their conditions, pods' reasons and events.
func withWorkloads(c *kube.Client, ns, name string, err error) error {
	const look = 5 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), look)
	defer cancel()
	hr, gerr := c.Dynamic().Resource(helmReleaseGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if gerr != nil {
		return err
	}
	var workloads []*unstructured.Unstructured
	for _, o := range fluxInventory(hr) {
		if kube.IsWorkload(o) {
			workloads = append(workloads, o)
		}
	}
	if len(workloads) == 0 || !canReadPods(ctx, c, workloads) {
		return err
	}
	var werr *kube.WaitError
	if _, e := c.Wait(ctx, workloads, kube.WaitOptions{Timeout: look, Since: time.Now().Add(-time.Hour), Quiet: true}); errors.As(e, &werr) {
		return fmt.Errorf("%w\nits workloads: %v", err, werr)
	}
	return err
}

// helmReleaseState is health.HelmReleaseState, with a Secret's data
// quoted in helm-controller's message masked.
func helmReleaseState(hr *unstructured.Unstructured) string {
	return kube.MaskSecretData(health.HelmReleaseState(hr))
}
