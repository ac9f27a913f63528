package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/gitops-resource/gitops-resource/pkg/kube"
	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

// direct applies manifests itself and waits for them.
type direct struct{}

func (direct) out(ctx context.Context, in resource.Input, src *Source, c *kube.Client) (resource.Response, error) {
	p, _ := parseOutParams(in) // validated by open
	timeout := p.Timeout.Or(src.Timeout.Or(DefaultTimeout))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	began := time.Now()

	var revision string
	if p.RevisionFile != "" {
		var err error
		if revision, err = in.ReadParamFile("params.revision_file", p.RevisionFile); err != nil {
			return resource.Response{}, err
		}
	}
	name, err := resource.ParamPath("params.path", p.Path)
	if err != nil {
		return resource.Response{}, err
	}
	root, err := in.OpenBuildDir()
	if err != nil {
		return resource.Response{}, err
	}
	objs, err := kube.Load(root, name)
	root.Close()
	if err != nil {
		return resource.Response{}, resource.ParamError("params.path", p.Path, err)
	}
	if len(objs) == 0 {
		return resource.Response{}, resource.ConfigErrorf("params.path %s holds no Kubernetes objects", p.Path)
	}
	// The client never prints a Secret's values (kube/mask.go); should
	// anything else quote one, the log's redactor hides it too.
	for _, o := range objs {
		in.Secrets.Add(kube.SecretValues(o)...)
	}
	if err := c.Normalize(objs); err != nil {
		return resource.Response{}, fmt.Errorf("nothing applied: %w", err)
	}
	if revision == "" {
		revision = setHash(objs)
	}
	setID := kube.SetID(c.Host(), c.Namespace(), filepath.ToSlash(filepath.Clean(p.Path)))
	for _, o := range objs {
		kube.Stamp(o, kube.Provenance{SetID: setID, Revision: revision, BuildURL: in.Env.BuildURL()})
	}
	first, rest := kube.Phases(objs)
	in.Logf("%d objects from %s for %s (namespace %s), revision %s", len(objs), p.Path, c.Host(), c.Namespace(), revision)

	dry, deferred, err := c.Validate(ctx, objs, first)
	if err != nil {
		return resource.Response{}, fmt.Errorf("server-side dry run failed, nothing applied:\n%w", err)
	}
	meta := resource.Metadata{}
	meta.Add("revision", revision)
	meta.Add("objects", fmt.Sprint(len(objs)))
	meta.Add("images", strings.Join(setImages(objs), ","))
	meta.AddBuild(in.Env)

	if p.DryRun {
		plan, err := c.Plan(ctx, objs, dry)
		if err != nil {
			return resource.Response{}, fmt.Errorf("dry run: %w", err)
		}
		logResults(in, plan, "would be ")
		meta.Add("dry_run", "true")
		return resource.Response{Version: Version{revision}, Metadata: meta}, nil
	}

	inv := c.Inventory(setID)
	previousSet, err := inv.Read(ctx)
	if err != nil && p.Prune {
		return resource.Response{}, fmt.Errorf("prune needs the record of the last apply: %w", err)
	}
	var previous []*unstructured.Unstructured
	if p.RollbackOnFailure {
		for _, o := range rest {
			if !kube.IsWorkload(o) {
				continue
			}
			prev, err := c.Previous(ctx, o)
			if err != nil {
				return resource.Response{}, fmt.Errorf("record the state to roll back to: %w", err)
			}
			if prev != nil {
				previous = append(previous, prev)
			}
		}
	}

	var applied []kube.Result
	if len(first) > 0 {
		res, err := c.ApplyAll(ctx, first, dry)
		logResults(in, res, "")
		if err != nil {
			return resource.Response{}, fmt.Errorf("apply CRDs and Namespaces: %w", err)
		}
		applied = append(applied, res...)
		if _, err := c.Wait(ctx, first, kube.WaitOptions{Selector: kube.LabelSet + "=" + setID, Timeout: timeout, Since: began, Quiet: true}); err != nil {
			return resource.Response{}, fmt.Errorf("CRDs and Namespaces applied, the rest not: %w", err)
		}
		if len(deferred) > 0 {
			more, _, err := c.Validate(ctx, deferred, nil)
			if err != nil {
				return resource.Response{}, fmt.Errorf("CRDs and Namespaces applied; server-side dry run of the rest failed, nothing else applied:\n%w", err)
			}
			for k, v := range more {
				dry[k] = v
			}
		}
	}
	res, err := c.ApplyAll(ctx, rest, dry)
	logResults(in, res, "")
	applied = append(applied, res...)
	if werr := inv.Write(ctx, kube.Merge(previousSet, refs(objs))); werr != nil {
		if p.Prune {
			return resource.Response{}, werr
		}
		in.Logf("warning: %v (only prune needs it)", werr)
	}
	if err != nil {
		return resource.Response{}, fmt.Errorf("apply: %w", err)
	}

	var restarted []string
	if p.Restart.any() {
		now := time.Now()
		for _, o := range rest {
			if !kube.IsWorkload(o) || !p.Restart.selects(o, c.Namespace()) {
				continue
			}
			if err := c.Restart(ctx, o, now); err != nil {
				return resource.Response{}, fmt.Errorf("restart: %w", err)
			}
			restarted = append(restarted, kube.Ref(o))
			in.Logf("%s: restart requested (%s=%s)", kube.Ref(o), kube.AnnotationRestartedAt, now.UTC().Format(time.RFC3339))
		}
		if len(restarted) == 0 {
			return resource.Response{}, resource.ConfigErrorf("params.restart selects no Deployment, StatefulSet or DaemonSet of the set")
		}
	}
	meta.Add("restarted", strings.Join(restarted, ","))

	if p.wait() {
		in.Logf("waiting up to %s for %d objects to be ready", timeout, len(objs))
		_, err := c.Wait(ctx, objs, kube.WaitOptions{Selector: kube.LabelSet + "=" + setID, Timeout: timeout, Since: began, VerifyImages: p.VerifyImages})
		if err != nil {
			if p.RollbackOnFailure {
				return resource.Response{}, rollback(in, c, previous, timeout, began, err)
			}
			return resource.Response{}, err
		}
		in.Logf("all %d objects ready after %s", len(objs), time.Since(began).Round(time.Millisecond))
	}

	if p.Prune {
		deleted, err := c.Prune(ctx, setID, previousSet, objs)
		for _, d := range deleted {
			in.Logf("%s pruned", d)
		}
		if err != nil {
			return resource.Response{}, fmt.Errorf("prune: %w", err)
		}
		if err := inv.Write(ctx, refs(objs)); err != nil {
			return resource.Response{}, err
		}
		meta.Add("pruned", strings.Join(deleted, ","))
	}
	changed := 0
	for _, r := range applied {
		if r.Change != kube.Unchanged {
			changed++
		}
	}
	meta.Add("changed", fmt.Sprint(changed))
	return resource.Response{Version: Version{revision}, Metadata: meta}, nil
}

// rollback re-applies the workloads' previous state after a failed rollout,
// waits for it, and returns the failure saying what was rolled back.
func rollback(in resource.Input, c *kube.Client, previous []*unstructured.Unstructured, timeout time.Duration, began time.Time, cause error) error {
	if len(previous) == 0 {
		return fmt.Errorf("%w\nrollback_on_failure: nothing to roll back to (the workloads are new)", cause)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var names []string
	for _, prev := range previous {
		if _, err := c.ApplyOne(ctx, prev, false); err != nil {
			return fmt.Errorf("%w\nrollback failed: %v", cause, err)
		}
		desc := kube.Ref(prev)
		if imgs := kube.Images(prev); len(imgs) > 0 {
			desc += " to " + strings.Join(imgs, ",")
		}
		if rev := prev.GetAnnotations()[kube.AnnotationRevision]; rev != "" {
			desc += " (revision " + rev + ")"
		}
		names = append(names, desc)
		in.Logf("rolling back %s", desc)
	}
	if _, err := c.Wait(ctx, previous, kube.WaitOptions{Timeout: timeout, Since: began}); err != nil {
		return fmt.Errorf("%w\nrolled back %s, but the rollback did not become ready: %v", cause, strings.Join(names, "; "), err)
	}
	return fmt.Errorf("%w\nrolled back %s: it is ready again", cause, strings.Join(names, "; "))
}

func (r Restart) selects(o *unstructured.Unstructured, defNS string) bool {
	if r.All {
		return true
	}
	for _, s := range r.Selected {
		ns := s.Namespace
		if ns == "" {
			ns = defNS
		}
		if kindMatches(s.Kind, o.GetKind()) && s.Name == o.GetName() && ns == o.GetNamespace() {
			return true
		}
	}
	return false
}

func kindMatches(sel, kind string) bool {
	sel, kind = strings.ToLower(sel), strings.ToLower(kind)
	short := map[string]string{"deploy": "deployment", "sts": "statefulset", "ds": "daemonset"}
	if s, ok := short[sel]; ok {
		sel = s
	}
	sel, _, _ = strings.Cut(sel, ".")
	return sel == kind || sel == kind+"s"
}

func logResults(in resource.Input, rs []kube.Result, prefix string) {
	for _, r := range rs {
		if r.Ref == "" || r.Change == "" {
			continue
		}
		in.Logf("%s %s%s", r.Ref, prefix, r.Change)
		for _, d := range r.Diff {
			in.Logf("  %s", d)
		}
	}
}

func refs(objs []*unstructured.Unstructured) []kube.ObjRef {
	out := make([]kube.ObjRef, len(objs))
	for i, o := range objs {
		out[i] = kube.RefOf(o)
	}
	return out
}

// setHash is the revision of a set without revision_file: a short hash of
// the objects as read (before provenance is stamped).
func setHash(objs []*unstructured.Unstructured) string {
	h := sha256.New()
	for _, o := range objs {
		data, _ := json.Marshal(o.Object) // map keys are sorted
		h.Write(data)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func setImages(objs []*unstructured.Unstructured) []string {
	seen := map[string]bool{}
	var out []string
	for _, o := range objs {
		for _, i := range kube.Images(o) {
			if !seen[i] {
				seen[i] = true
				out = append(out, i)
			}
		}
	}
	sort.Strings(out)
	return out
}

// selected resolves source.resources to object references.
func selected(src *Source, c *kube.Client) ([]*unstructured.Unstructured, error) {
	if len(src.selected) == 0 {
		return nil, resource.ConfigErrorf("source.resources is required for check and get with mode direct: the workloads to report, e.g. [deployment/web]")
	}
	var out []*unstructured.Unstructured
	var errs []error
	for _, s := range src.selected {
		o, err := c.Resolve(s.Kind, s.Namespace, s.Name)
		if err != nil {
			errs = append(errs, fmt.Errorf("source.resources %s: %w", s, err))
			continue
		}
		out = append(out, o)
	}
	return out, errors.Join(errs...)
}

// liveImages is the version check reports: name=image for each selected
// object (name/container=image when it has several containers).
func liveImages(ctx context.Context, c *kube.Client, sel []*unstructured.Unstructured) (string, []*unstructured.Unstructured, error) {
	var parts []string
	var lives []*unstructured.Unstructured
	for _, o := range sel {
		live, err := c.Get(ctx, o)
		if err != nil {
			return "", nil, err
		}
		if live == nil {
			parts = append(parts, o.GetName()+"=(absent)")
			lives = append(lives, o)
			continue
		}
		lives = append(lives, live)
		var cs []kube.Container
		for _, ct := range kube.Containers(live) {
			if !ct.Init {
				cs = append(cs, ct)
			}
		}
		for _, ct := range cs {
			name := o.GetName()
			if len(cs) > 1 {
				name += "/" + ct.Name
			}
			parts = append(parts, name+"="+ct.Image)
		}
	}
	return strings.Join(parts, ","), lives, nil
}

func (direct) check(ctx context.Context, in resource.Input, src *Source, c *kube.Client) ([]Version, error) {
	sel, err := selected(src, c)
	if err != nil {
		return nil, err
	}
	v, _, err := liveImages(ctx, c, sel)
	if err != nil {
		return nil, err
	}
	in.Logf("live on %s: %s", c.Host(), v)
	return []Version{{v}}, nil
}

// status.json entries.
type objectStatus struct {
	Resource   string           `json:"resource"`
	State      string           `json:"state"`
	Message    string           `json:"message"`
	Revision   string           `json:"revision,omitempty"`
	BuildURL   string           `json:"build_url,omitempty"`
	Conditions []kube.Condition `json:"conditions,omitempty"`
}

func (direct) in(ctx context.Context, in resource.Input, src *Source, c *kube.Client) (resource.Response, error) {
	var want Version
	if err := resource.DecodeStrict(in.Request.Version, &want, "version"); err != nil {
		return resource.Response{}, err
	}
	sel, err := selected(src, c)
	if err != nil {
		return resource.Response{}, err
	}
	outcomes, err := c.Wait(ctx, sel, kube.WaitOptions{Timeout: src.Timeout.Or(DefaultTimeout), Since: time.Now()})
	if err != nil {
		return resource.Response{}, err
	}
	v, lives, err := liveImages(ctx, c, sel)
	if err != nil {
		return resource.Response{}, err
	}
	statuses := make([]objectStatus, len(lives))
	images := map[string]map[string]string{}
	revisions := map[string]bool{}
	for i, live := range lives {
		ann := live.GetAnnotations()
		statuses[i] = objectStatus{Resource: kube.Ref(live), State: outcomes[i].Status.State.String(), Message: outcomes[i].Status.Message,
			Revision: ann[kube.AnnotationRevision], BuildURL: ann[kube.AnnotationBuildURL], Conditions: kube.Conditions(live)}
		if r := ann[kube.AnnotationRevision]; r != "" {
			revisions[r] = true
		}
		m := map[string]string{}
		for _, ct := range kube.Containers(live) {
			m[ct.Name] = ct.Image
		}
		images[kube.Ref(live)] = m
	}
	// A put's version is the revision it stamped on the objects; check's
	// is the live images.
	if want.Revision != "" && want.Revision != v && !revisions[want.Revision] {
		in.Logf("warning: the cluster has moved on since version %q: it now runs %q", want.Revision, v)
	}
	for name, v := range map[string]any{"status.json": statuses, "images.json": images} {
		data, _ := json.MarshalIndent(v, "", "  ")
		if err := os.WriteFile(filepath.Join(in.Dir, name), append(data, '\n'), 0o644); err != nil {
			return resource.Response{}, fmt.Errorf("write %s: %w", name, err)
		}
	}
	meta := resource.Metadata{}
	meta.Add("images", v)
	var revs []string
	for r := range revisions {
		revs = append(revs, r)
	}
	sort.Strings(revs)
	meta.Add("revision", strings.Join(revs, ","))
	version := want
	if version.Revision == "" {
		version.Revision = v
	}
	return resource.Response{Version: version, Metadata: meta}, nil
}
