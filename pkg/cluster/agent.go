package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/gitops-resource/gitops-resource/pkg/health"
	"github.com/gitops-resource/gitops-resource/pkg/kube"
	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

// agentKind is what differs between Flux and Argo CD: which object is
// watched, how a reconcile is requested, and how its status is judged.
type agentKind interface {
	// target is the object the source names; kind is its Kind.
	target(src *Source) (schema.GroupVersionResource, string, string)
	kind() string
	// live is the revision the object reports as applied, or "".
	live(obj *unstructured.Unstructured) string
	// request asks the agent to reconcile now (towards rev), and returns
	// obj as patched, or nil when obj itself was not patched.
	request(ctx context.Context, c *kube.Client, obj *unstructured.Unstructured, rev string, p *AgentParams, log func(string, ...any)) (*unstructured.Unstructured, error)
	// judger returns the judge of the object's status for rev (pkg/health):
	// ready when applied and healthy, failed when the attempt for rev has
	// failed.
	judger(obj *unstructured.Unstructured, rev string) health.Judge
	// managed lists the objects the agent reports it applied (for
	// verify_images), as references: kind, namespace and name.
	managed(obj *unstructured.Unstructured) []*unstructured.Unstructured
}

// agent is a mode that hands delivery to an in-cluster agent.
type agent struct{ kind agentKind }

func (a agent) get(ctx context.Context, c *kube.Client, src *Source) (*unstructured.Unstructured, dynamic.ResourceInterface, string, error) {
	gvr, ns, name := a.kind.target(src)
	ri := c.Dynamic().Resource(gvr).Namespace(ns)
	what := fmt.Sprintf("%s %s/%s", a.kind.kind(), ns, name)
	obj, err := ri.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		field := "kustomization"
		if src.Mode == ModeArgoCD {
			field = "application"
		}
		return nil, nil, what, resource.ConfigErrorf("%s not found on %s: check source.%s and source.namespace", what, c.Host(), field)
	}
	if err != nil {
		return nil, nil, what, c.Explain("get", what, "get", gvr.Resource, ns, err)
	}
	return obj, ri, what, nil
}

func (a agent) check(ctx context.Context, in resource.Input, req checkRequest, c *kube.Client) ([]Version, error) {
	src := req.Source
	obj, _, what, err := a.get(ctx, c, src)
	if err != nil {
		return nil, err
	}
	rev := a.kind.live(obj)
	in.Logf("%s on %s: applied revision %q", what, c.Host(), rev)
	if err := a.logFollowers(ctx, in, src, c); err != nil {
		return nil, err
	}
	return liveVersions(rev), nil
}

// liveVersions is check's answer when the agent reports rev applied: none
// before the agent applied anything.
func liveVersions(rev string) []Version {
	if rev == "" {
		return []Version{}
	}
	return []Version{{Revision: rev}}
}

func (a agent) in(ctx context.Context, in resource.Input, req inRequest, c *kube.Client) (resource.Response, error) {
	src, want := req.Source, req.Version.Revision
	obj, err := a.wait(ctx, in, src, c, want, nil)
	if err != nil {
		return resource.Response{}, a.withFollowers(c, src, err)
	}
	followers, err := a.follow(ctx, in, src, c, obj, want)
	if err != nil {
		return resource.Response{}, err
	}
	return respond(in, a.kind.live(obj), append([]*unstructured.Unstructured{obj}, followers...), want)
}

func (a agent) out(ctx context.Context, in resource.Input, req outRequest, c *kube.Client) (resource.Response, error) {
	src, p := req.Source, req.Agent
	obj, err := a.wait(ctx, in, src, c, p.Revision, p)
	if err != nil {
		return resource.Response{}, a.withFollowers(c, src, err)
	}
	followers, err := a.follow(ctx, in, src, c, obj, p.Revision)
	if err != nil {
		return resource.Response{}, err
	}
	objs := append([]*unstructured.Unstructured{obj}, followers...)
	if p.VerifyImages {
		if err := verifyManaged(ctx, in, c, objs, a.kind.managed, p.Revision, req.timeout()); err != nil {
			return resource.Response{}, err
		}
	}
	return respond(in, a.kind.live(obj), objs, p.Revision)
}

// follow waits for what the target applied and source names besides: the
// HelmRelease a Kustomization applies (mode flux with source.helmrelease).
func (a agent) follow(ctx context.Context, in resource.Input, src *Source, c *kube.Client, obj *unstructured.Unstructured, rev string) ([]*unstructured.Unstructured, error) {
	if src.HelmRelease == "" { // set for mode flux only (Source.validate)
		return nil, nil
	}
	hr, err := getHelmRelease(ctx, c, src)
	if err != nil {
		return nil, err
	}
	// The chart follows the commit too when it comes from the
	// Kustomization's own GitRepository.
	viaChart := sameSourceRef(hr, obj)
	hr, _, err = waitHelmRelease(ctx, in, c, hr, rev, viaChart)
	if err != nil {
		return nil, err
	}
	return []*unstructured.Unstructured{hr}, nil
}

// withFollowers adds the state of the HelmRelease to a failure of the
// Kustomization that applies it: its health check fails on the release,
// and helm-controller's message says why.
func (a agent) withFollowers(c *kube.Client, src *Source, err error) error {
	if src.HelmRelease == "" || !errors.Is(err, errAgentFailed) {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hr, herr := getHelmRelease(ctx, c, src)
	if herr != nil {
		return err
	}
	return fmt.Errorf("%w\n%s: %s", err, kube.Ref(hr), helmReleaseState(hr))
}

// logFollowers reports the state of what follow waits for, for check.
func (a agent) logFollowers(ctx context.Context, in resource.Input, src *Source, c *kube.Client) error {
	if src.HelmRelease == "" {
		return nil
	}
	hr, err := getHelmRelease(ctx, c, src)
	if err != nil {
		return err
	}
	in.Logf("%s: %s", kube.Ref(hr), helmReleaseState(hr))
	return nil
}

// wait requests a reconcile (when p is not nil and the object is not done
// already) and watches the object until the judge says applied and healthy
// at rev, or failed, or ctx ends.
func (a agent) wait(ctx context.Context, in resource.Input, src *Source, c *kube.Client, rev string, p *AgentParams) (*unstructured.Unstructured, error) {
	obj, _, what, err := a.get(ctx, c, src)
	if err != nil {
		return nil, err
	}
	judge := a.kind.judger(obj, rev)
	st := judge(obj, time.Now())
	switch {
	case st.State == health.Current:
		in.Logf("%s: already applied and healthy at %s (%s)", what, rev, kube.MaskSecretData(st.Message))
		return obj, nil
	case st.State == health.Failed && p == nil:
		return nil, fmt.Errorf("%s: %w: %s", what, errAgentFailed, kube.MaskSecretData(st.Message))
	}
	if p != nil {
		// A failure seen before the request is judged again after it: the
		// request may be the retry (argocd: a new sync operation).
		patched, err := a.kind.request(ctx, c, obj, rev, p, in.Logf)
		if err != nil {
			return nil, err
		}
		if patched != nil {
			obj = patched
		}
		judge = a.kind.judger(obj, rev)
	}
	target := stage{obj: obj, what: what, goal: "revision " + rev + " to be applied and healthy", judge: judge}
	if w, ok := a.kind.(watchesBeside); ok {
		target.beside = w.beside(ctx, c, obj, in.Logf)
	}
	return waitStage(ctx, in, c, target)
}

// watchesBeside is an agentKind that watches other objects beside the
// target, judged by its judger too, which may fail the wait (mode flux:
// the Kustomization's GitRepository refusing the commit).
type watchesBeside interface {
	beside(ctx context.Context, c *kube.Client, obj *unstructured.Unstructured, log func(string, ...any)) []*unstructured.Unstructured
}

// stage is one object to watch until its judge is done.
type stage struct {
	obj   *unstructured.Unstructured // as last read, or only its kind, namespace and name
	what  string                     // Kind ns/name
	goal  string                     // "revision X to be applied and healthy"
	judge health.Judge
	// beside are watched and judged with obj: any failing fails the stage.
	beside []*unstructured.Unstructured
}

// waitStage watches st.obj until st.judge says it is ready or failed, or
// ctx ends: kube.Wait, which logs each change of state, re-judging once a
// second (a judge may fail on time: an attempt still failing after the
// agent's retries). An object not created yet is waited for.
func waitStage(ctx context.Context, in resource.Input, c *kube.Client, st stage) (*unstructured.Unstructured, error) {
	in.Logf("%s: waiting for %s", st.what, st.goal)
	began := time.Now()
	outcomes, err := c.Wait(ctx, append([]*unstructured.Unstructured{st.obj}, st.beside...), kube.WaitOptions{Judge: st.judge, Every: time.Second})
	var werr *kube.WaitError
	switch {
	case err == nil:
		in.Logf("%s: %s: done after %s", st.what, st.goal, time.Since(began).Round(time.Millisecond))
		return outcomes[0].Object, nil
	case errors.As(err, &werr) && len(werr.Failed) > 0:
		for i, o := range outcomes {
			if o.Status.State != health.Failed {
				continue
			}
			why := o.Status.Message
			if i > 0 { // an object beside: named
				why = fmt.Sprintf("%s %s/%s %s", o.Object.GetKind(), o.Object.GetNamespace(), o.Object.GetName(), why)
			}
			return nil, fmt.Errorf("%s: %w: %s", st.what, errAgentFailed, why)
		}
	case errors.As(err, &werr):
		return nil, fmt.Errorf("%s: gave up waiting for %s after %s; last seen: %s", st.what, st.goal, time.Since(began).Round(time.Second), outcomes[0].Status.Message)
	}
	return nil, fmt.Errorf("%s: %w", st.what, err)
}

var errAgentFailed = errors.New("the agent reports a failure")

// respond writes the first object's status to status.json and each other
// one's to <kind>.json (helmrelease.json), and reports the live revision.
func respond(in resource.Input, live string, objs []*unstructured.Unstructured, rev string) (resource.Response, error) {
	meta := resource.Metadata{}
	meta.Add("revision", live)
	for i, obj := range objs {
		status, _, _ := unstructured.NestedMap(obj.Object, "status") // a copy
		maskStrings(status)
		name := "status.json"
		if i > 0 {
			name = strings.ToLower(obj.GetKind()) + ".json"
		}
		if in.Dir != "" {
			data, err := json.MarshalIndent(status, "", "  ")
			if err != nil {
				return resource.Response{}, err
			}
			if err := os.WriteFile(filepath.Join(in.Dir, name), data, 0o644); err != nil {
				return resource.Response{}, fmt.Errorf("write %s: %w", name, err)
			}
		}
		ref := obj.GetKind() + "/" + obj.GetNamespace() + "/" + obj.GetName()
		if i == 0 {
			meta.Add("object", ref)
		}
		if obj.GetKind() == "HelmRelease" {
			meta.Add("helmrelease", ref+": "+helmReleaseState(obj))
		}
	}
	meta.AddBuild(in.Env)
	if live == "" {
		live = rev
	}
	return resource.Response{Version: Version{Revision: live}, Metadata: meta}, nil
}

// maskStrings masks a Secret's data quoted in any string inside v (a
// decoded status, written to the get dir as it is), and returns v.
func maskStrings(v any) any {
	switch v := v.(type) {
	case string:
		return kube.MaskSecretData(v)
	case map[string]any:
		for k, e := range v {
			v[k] = maskStrings(e)
		}
	case []any:
		for i, e := range v {
			v[i] = maskStrings(e)
		}
	}
	return v
}

func str(obj *unstructured.Unstructured, path ...string) string {
	s, _, _ := unstructured.NestedString(obj.Object, path...)
	return s
}
