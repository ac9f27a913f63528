package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/gitops-resource/gitops-resource/pkg/kube"
	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

// direct applies manifests itself and waits for them.
type direct struct{}

// out is a list of named steps: build the set from params.path, dry-run it
// on the server (dry_run: answer with the plan), remember what to prune and
// roll back to, apply CRDs and Namespaces first, delete what must be
// recreated, apply the rest, restart, wait (rolling back on failure), prune.
func (direct) out(ctx context.Context, in resource.Input, req outRequest, c *kube.Client) (resource.Response, error) {
	s := &put{in: in, c: c, p: req.Params, timeout: req.timeout(), began: time.Now()}
	if err := s.build(); err != nil {
		return resource.Response{}, err
	}
	if err := s.dryRun(ctx); err != nil {
		return resource.Response{}, err
	}
	if s.p.DryRun {
		return s.plan(ctx)
	}
	for _, step := range []func(context.Context) error{s.remember, s.applyFirst, s.recreate, s.apply, s.restart, s.wait, s.prune} {
		if err := step(ctx); err != nil {
			return resource.Response{}, err
		}
	}
	return s.response(), nil
}

// put is one put in mode direct: its request and client, and what each
// step of out records for the steps after it.
type put struct {
	in      resource.Input
	c       *kube.Client
	p       *OutParams
	timeout time.Duration
	began   time.Time

	revision    string
	setID       string
	objs        []*unstructured.Unstructured // the set, stamped
	first, rest []*unstructured.Unstructured // CRDs and Namespaces; the others
	// dry holds each object's server-side dry run; deferred, the objects
	// that cannot be dry-run before first is applied.
	dry         map[*unstructured.Unstructured]*unstructured.Unstructured
	deferred    []*unstructured.Unstructured
	immutable   []*unstructured.Unstructured // to delete and create again (recreate_on_immutable)
	inv         kube.Inventory
	previousSet []kube.ObjRef                // what the set applied last, for prune
	previous    []*unstructured.Unstructured // the workloads' live state, for rollback
	applied     []kube.Result
	restarted   []string
	pruned      []string
}

// build reads params.path (and params.revision_file) into the set: its
// Secrets' values registered with the redactor, normalized, stamped with
// the set and the revision.
func (s *put) build() error {
	if s.p.RevisionFile != "" {
		var err error
		if s.revision, err = s.in.ReadParamFile("params.revision_file", s.p.RevisionFile); err != nil {
			return err
		}
	}
	name, err := resource.ParamPath("params.path", s.p.Path)
	if err != nil {
		return err
	}
	root, err := s.in.OpenBuildDir()
	if err != nil {
		return err
	}
	objs, err := kube.Load(root, name)
	root.Close()
	if err != nil {
		return resource.ParamError("params.path", s.p.Path, err)
	}
	if len(objs) == 0 {
		return resource.ConfigErrorf("params.path %s holds no Kubernetes objects", s.p.Path)
	}
	// The client never prints a Secret's values (kube/mask.go); should
	// anything else quote one, the log's redactor hides it too.
	for _, o := range objs {
		s.in.Secrets.Add(kube.SecretValues(o)...)
	}
	if err := s.c.Normalize(objs); err != nil {
		return fmt.Errorf("nothing applied: %w", err)
	}
	if s.revision == "" {
		s.revision = setHash(objs)
	}
	s.setID = kube.SetID(s.c.Host(), s.c.Namespace(), filepath.ToSlash(filepath.Clean(s.p.Path)))
	for _, o := range objs {
		kube.Stamp(o, kube.Provenance{SetID: s.setID, Revision: s.revision, BuildURL: s.in.Env.BuildURL()})
	}
	s.objs = objs
	s.first, s.rest = kube.Phases(objs)
	s.in.Logf("%d objects from %s for %s (namespace %s), revision %s", len(objs), s.p.Path, s.c.Host(), s.c.Namespace(), s.revision)
	return nil
}

// dryRun validates every object with a server-side dry run: nothing is
// applied when one fails.
func (s *put) dryRun(ctx context.Context) error {
	v, err := s.c.Validate(ctx, s.objs, s.first, s.applyOptions())
	if err != nil {
		return fmt.Errorf("server-side dry run failed, nothing applied:\n%w", err)
	}
	s.dry, s.deferred, s.immutable = v.Dry, v.Deferred, v.Immutable
	return nil
}

// applyOptions are the params that say how to treat fields other managers
// own and changes the server refuses as immutable.
func (s *put) applyOptions() kube.ApplyOptions {
	return kube.ApplyOptions{ForceConflicts: s.p.ForceConflicts, RecreateOnImmutable: s.p.RecreateOnImmutable}
}

// plan is the answer of dry_run: what apply would change.
func (s *put) plan(ctx context.Context) (resource.Response, error) {
	inPlace := slices.DeleteFunc(slices.Clone(s.objs), func(o *unstructured.Unstructured) bool { return slices.Contains(s.immutable, o) })
	plan, err := s.c.Plan(ctx, inPlace, s.dry)
	if err != nil {
		return resource.Response{}, fmt.Errorf("dry run: %w", err)
	}
	logResults(s.in, plan, "would be ")
	for _, o := range s.immutable {
		s.in.Logf("%s would be deleted and created again: the server refuses the change in place (recreate_on_immutable)", kube.Ref(o))
	}
	meta := s.metadata()
	meta.Add("dry_run", "true")
	return resource.Response{Version: Version{s.revision}, Metadata: meta}, nil
}

// remember reads what the set applied last (prune deletes what it no
// longer has) and, with rollback_on_failure, the live state of its
// workloads to roll back to.
func (s *put) remember(ctx context.Context) error {
	s.inv = s.c.Inventory(s.setID)
	var err error
	if s.previousSet, err = s.inv.Read(ctx); err != nil && s.p.Prune {
		return fmt.Errorf("prune needs the record of the last apply: %w", err)
	}
	if !s.p.RollbackOnFailure {
		return nil
	}
	for _, o := range s.rest {
		if !kube.IsWorkload(o) {
			continue
		}
		prev, err := s.c.Previous(ctx, o)
		if err != nil {
			return fmt.Errorf("record the state to roll back to: %w", err)
		}
		if prev != nil {
			s.previous = append(s.previous, prev)
		}
	}
	return nil
}

// applyFirst applies the CRDs and Namespaces and waits for them, then
// dry-runs the objects that needed them.
func (s *put) applyFirst(ctx context.Context) error {
	if len(s.first) == 0 {
		return nil
	}
	res, err := s.c.ApplyAll(ctx, s.first, s.dry, s.applyOptions())
	logResults(s.in, res, "")
	if err != nil {
		return fmt.Errorf("apply CRDs and Namespaces: %w", err)
	}
	s.applied = append(s.applied, res...)
	if _, err := s.c.Wait(ctx, s.first, kube.WaitOptions{Selector: s.selector(), Timeout: s.timeout, Since: s.began, Quiet: true}); err != nil {
		return fmt.Errorf("CRDs and Namespaces applied, the rest not: %w", err)
	}
	if len(s.deferred) == 0 {
		return nil
	}
	served, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.c.WaitServed(served, s.first); err != nil {
		return fmt.Errorf("CRDs and Namespaces applied, the rest not: %w", err)
	}
	more, err := s.c.Validate(ctx, s.deferred, nil, s.applyOptions())
	if err != nil {
		return fmt.Errorf("CRDs and Namespaces applied; server-side dry run of the rest failed, nothing else applied:\n%w", err)
	}
	maps.Copy(s.dry, more.Dry)
	return nil
}

// recreate deletes the objects whose change the server refuses as
// immutable (recreate_on_immutable), in the foreground, waits until each
// is gone, and dry-runs them again as new: apply creates them.
func (s *put) recreate(ctx context.Context) error {
	if len(s.immutable) == 0 {
		return nil
	}
	for _, o := range s.immutable {
		s.in.Logf("%s: the server refuses the change in place: deleting it to create it again (recreate_on_immutable)", kube.Ref(o))
	}
	if err := s.c.DeleteAndWait(ctx, s.immutable); err != nil {
		return fmt.Errorf("recreate: %w", err)
	}
	again, err := s.c.Validate(ctx, s.immutable, nil, s.applyOptions())
	if err != nil {
		return fmt.Errorf("recreate: deleted, but the server-side dry run of the new object failed, it is not created:\n%w", err)
	}
	maps.Copy(s.dry, again.Dry)
	return nil
}

// apply applies the rest and records the set in its inventory, which only
// prune needs.
func (s *put) apply(ctx context.Context) error {
	res, err := s.c.ApplyAll(ctx, s.rest, s.dry, s.applyOptions())
	logResults(s.in, res, "")
	s.applied = append(s.applied, res...)
	if werr := s.inv.Write(ctx, kube.Merge(s.previousSet, refs(s.objs))); werr != nil {
		if s.p.Prune {
			return werr
		}
		s.in.Logf("warning: %v (only prune needs it)", werr)
	}
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	return nil
}

// restart requests a rollout of the workloads params.restart selects.
func (s *put) restart(ctx context.Context) error {
	if !s.p.Restart.any() {
		return nil
	}
	now := time.Now()
	for _, o := range s.rest {
		if !kube.IsWorkload(o) || !s.p.Restart.selects(o, s.c.Namespace()) {
			continue
		}
		if err := s.c.Restart(ctx, o, now); err != nil {
			return fmt.Errorf("restart: %w", err)
		}
		s.restarted = append(s.restarted, kube.Ref(o))
		s.in.Logf("%s: restart requested (%s=%s)", kube.Ref(o), kube.AnnotationRestartedAt, now.UTC().Format(time.RFC3339))
	}
	if len(s.restarted) == 0 {
		return resource.ConfigErrorf("params.restart selects no Deployment, StatefulSet or DaemonSet of the set")
	}
	return nil
}

// wait waits for the set to be ready, and with rollback_on_failure rolls
// the workloads back when it is not.
func (s *put) wait(ctx context.Context) error {
	if !s.p.wait() {
		return nil
	}
	s.in.Logf("waiting up to %s for %d objects to be ready", s.timeout, len(s.objs))
	if _, err := s.c.Wait(ctx, s.objs, kube.WaitOptions{Selector: s.selector(), Timeout: s.timeout, Since: s.began, VerifyImages: s.p.VerifyImages}); err != nil {
		if s.p.RollbackOnFailure {
			return s.rollback(err)
		}
		return err
	}
	s.in.Logf("all %d objects ready after %s", len(s.objs), time.Since(s.began).Round(time.Millisecond))
	return nil
}

// rollback re-applies the workloads' previous state after a failed rollout,
// waits for it, and returns the failure saying what was rolled back.
func (s *put) rollback(cause error) error {
	if len(s.previous) == 0 {
		return fmt.Errorf("%w\nrollback_on_failure: nothing to roll back to (the workloads are new)", cause)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	var names []string
	for _, prev := range s.previous {
		if _, err := s.c.ApplyOne(ctx, prev, false); err != nil {
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
		s.in.Logf("rolling back %s", desc)
	}
	if _, err := s.c.Wait(ctx, s.previous, kube.WaitOptions{Timeout: s.timeout, Since: s.began}); err != nil {
		return fmt.Errorf("%w\nrolled back %s, but the rollback did not become ready: %v", cause, strings.Join(names, "; "), err)
	}
	return fmt.Errorf("%w\nrolled back %s: it is ready again", cause, strings.Join(names, "; "))
}

// prune deletes what the set applied before and no longer has, and
// records the set as it is now.
func (s *put) prune(ctx context.Context) error {
	if !s.p.Prune {
		return nil
	}
	deleted, err := s.c.Prune(ctx, s.setID, s.previousSet, s.objs)
	for _, d := range deleted {
		s.in.Logf("%s pruned", d)
	}
	if err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	if err := s.inv.Write(ctx, refs(s.objs)); err != nil {
		return err
	}
	s.pruned = deleted
	return nil
}

// selector selects the objects of the set: one watch per kind and
// namespace while waiting.
func (s *put) selector() string { return kube.LabelSet + "=" + s.setID }

// metadata describes the set.
func (s *put) metadata() resource.Metadata {
	meta := resource.Metadata{}
	meta.Add("revision", s.revision)
	meta.Add("objects", fmt.Sprint(len(s.objs)))
	meta.Add("images", strings.Join(setImages(s.objs), ","))
	meta.AddBuild(s.in.Env)
	return meta
}

// response is put's answer once every step is done.
func (s *put) response() resource.Response {
	meta := s.metadata()
	meta.Add("restarted", strings.Join(s.restarted, ","))
	meta.Add("pruned", strings.Join(s.pruned, ","))
	changed := 0
	for _, r := range s.applied {
		if r.Change != kube.Unchanged {
			changed++
		}
	}
	meta.Add("changed", fmt.Sprint(changed))
	return resource.Response{Version: Version{s.revision}, Metadata: meta}
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

func (direct) check(ctx context.Context, in resource.Input, req checkRequest, c *kube.Client) ([]Version, error) {
	sel, err := selected(req.Source, c)
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

func (direct) in(ctx context.Context, in resource.Input, req inRequest, c *kube.Client) (resource.Response, error) {
	want := req.Version
	sel, err := selected(req.Source, c)
	if err != nil {
		return resource.Response{}, err
	}
	outcomes, err := c.Wait(ctx, sel, kube.WaitOptions{Timeout: req.Source.timeout(0), Since: time.Now()})
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
