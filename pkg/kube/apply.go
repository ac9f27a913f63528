package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/gitops-resource/gitops-resource/pkg/retry"
)

// applyConcurrency bounds parallel apply requests.
const applyConcurrency = 8

// backoff retries idempotent requests (apply, get) on transient failures:
// 4 attempts, waiting up to 0.3s, 0.6s and 1.2s between them (jittered down
// to half).
var backoff = retry.Backoff{Attempts: 4, Base: 300 * time.Millisecond, Max: 1200 * time.Millisecond}

// transient marks the errors that may succeed when tried again as
// retry.Retryable. A conflict with another field manager is not one: the
// same apply meets the same owner.
func transient(err error) error {
	switch {
	case apierrors.IsConflict(err) && conflictOf(err) != nil:
		return err
	case apierrors.IsTooManyRequests(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err),
		apierrors.IsInternalError(err), apierrors.IsServiceUnavailable(err), apierrors.IsConflict(err),
		utilnet.IsConnectionReset(err), utilnet.IsConnectionRefused(err), utilnet.IsProbableEOF(err):
		return retry.Retryable(err)
	}
	return err
}

// Change is what an apply did (or, dry, would do) to one object.
type Change string

// The changes an apply reports.
const (
	Created    Change = "created"
	Configured Change = "configured"
	Unchanged  Change = "unchanged"
)

// Result is one applied object.
type Result struct {
	Ref    string
	Change Change
	Live   *unstructured.Unstructured // the server's answer
	Diff   []string                   // dry run: field paths that would change
}

// mapping finds the resource of obj's kind, refreshing discovery once when
// the kind is unknown (it may come from a CRD applied a moment ago).
func (c *Client) mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		c.mapper.Reset()
		m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		if meta.IsNoMatchError(err) {
			return nil, &APIError{Op: "find the resource type of", Object: fmt.Sprintf("kind %s in apiVersion %s", gvk.Kind, gvk.GroupVersion()),
				Host: c.host, Err: unknownKindError{c.host},
				Hint: "is its CRD installed (or part of the set), and the apiVersion right?"}
		}
		return nil, c.explain("discover", "the API resources", "list", "API groups", "", err)
	}
	return m, nil
}

func (c *Client) resourceFor(m *meta.RESTMapping, ns string) dynamic.ResourceInterface {
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return c.dyn.Resource(m.Resource).Namespace(ns)
	}
	return c.dyn.Resource(m.Resource)
}

// unknownKindError: discovery found no resource for a kind.
type unknownKindError struct{ host string }

func (e unknownKindError) Error() string {
	return "the API server " + e.host + " does not serve it"
}

// IsUnknownKind reports whether err is about a kind the server does not serve.
func IsUnknownKind(err error) bool {
	var e unknownKindError
	return errors.As(err, &e)
}

// Normalize sets the namespace of namespaced objects that name none to the
// client's namespace and clears it on cluster-scoped ones. Kinds the server
// does not serve yet must be defined by a CRD in objs; any other unknown
// kind is an error naming the kind and apiVersion.
func (c *Client) Normalize(objs []*unstructured.Unstructured) error {
	crds := map[schema.GroupKind]bool{} // group kind → namespaced
	for _, o := range objs {
		if groupKind(o) == gkCRD {
			scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
			crds[definedKind(o)] = scope != "Cluster"
		}
	}
	var errs []error
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		namespaced, fromCRD := crds[gvk.GroupKind()]
		if !fromCRD {
			m, err := c.mapping(gvk)
			if err != nil {
				if Unreachable(err) || isAuthError(err) {
					return err
				}
				errs = append(errs, fmt.Errorf("%s: %w", Ref(o), err))
				continue
			}
			namespaced = m.Scope.Name() == meta.RESTScopeNameNamespace
		}
		switch {
		case namespaced && o.GetNamespace() == "":
			o.SetNamespace(c.namespace)
		case !namespaced:
			o.SetNamespace("")
		}
	}
	return errors.Join(errs...)
}

// definedKind is the group and kind a CRD defines.
func definedKind(crd *unstructured.Unstructured) schema.GroupKind {
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
	return schema.GroupKind{Group: group, Kind: kind}
}

func isAuthError(err error) bool {
	var e *APIError
	return errors.As(err, &e) && (e.Code == 401 || e.Code == 403)
}

// Phases splits objs into what must exist first (CRDs and Namespaces) and
// the rest, keeping the order within each.
func Phases(objs []*unstructured.Unstructured) (first, rest []*unstructured.Unstructured) {
	for _, o := range objs {
		switch groupKind(o) {
		case gkCRD, gkNamespace:
			first = append(first, o)
		default:
			rest = append(rest, o)
		}
	}
	return first, rest
}

// WaitServed waits until discovery serves the kinds the CRDs among objs
// define (each served version), or ctx ends. An API server reports a CRD
// Established a moment before its discovery lists the new kind, and an
// object of that kind applied in that moment is refused as a kind the
// server does not serve.
func (c *Client) WaitServed(ctx context.Context, objs []*unstructured.Unstructured) error {
	var want []schema.GroupVersionKind
	for _, o := range objs {
		if groupKind(o) != gkCRD {
			continue
		}
		gk := definedKind(o)
		versions, _, _ := unstructured.NestedSlice(o.Object, "spec", "versions")
		for _, v := range versions {
			m, _ := v.(map[string]any)
			name, _ := m["name"].(string)
			if served, _ := m["served"].(bool); served && name != "" {
				want = append(want, gk.WithVersion(name))
			}
		}
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for len(want) > 0 {
		_, err := c.mapper.RESTMapping(want[0].GroupKind(), want[0].Version)
		switch {
		case err == nil:
			want = want[1:]
			continue
		case !meta.IsNoMatchError(err):
			return c.explain("discover", "the API resources", "list", "API groups", "", err)
		}
		c.mapper.Reset()
		select {
		case <-ctx.Done():
			return &APIError{Op: "find the resource type of", Object: fmt.Sprintf("kind %s in apiVersion %s", want[0].Kind, want[0].GroupVersion()),
				Host: c.host, Err: unknownKindError{c.host}, Hint: "its CRD is established, but discovery did not list the kind in time"}
		case <-tick.C:
		}
	}
	return nil
}

// ApplyOptions are how a put treats fields other field managers own and
// changes the API server refuses as immutable.
type ApplyOptions struct {
	// ForceConflicts takes the fields another field manager owns; without
	// it such an apply fails with a ConflictError naming each field and
	// its manager.
	ForceConflicts bool
	// RecreateOnImmutable makes Validate return the objects whose change
	// the server refuses as immutable, to be deleted and created again,
	// instead of failing on them.
	RecreateOnImmutable bool
}

// ApplyOne server-side applies obj, taking every field it sets (force): it
// restores what this resource applied before (a rollback). With dryRun it
// only validates.
func (c *Client) ApplyOne(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) (*unstructured.Unstructured, error) {
	return c.applyAs(ctx, obj, dryRun, c.fieldManager)
}

// applyAs applies obj as manager, taking every field it sets.
func (c *Client) applyAs(ctx context.Context, obj *unstructured.Unstructured, dryRun bool, manager string) (*unstructured.Unstructured, error) {
	return c.applyWith(ctx, obj, dryRun, manager, true)
}

// applyWith server-side applies obj as manager; without force, fields
// other managers own fail it with a ConflictError.
func (c *Client) applyWith(ctx context.Context, obj *unstructured.Unstructured, dryRun bool, manager string, force bool) (*unstructured.Unstructured, error) {
	op := "apply"
	if dryRun {
		op = "dry-run apply"
	}
	m, err := c.mapping(obj.GroupVersionKind())
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, Ref(obj), err)
	}
	data, err := obj.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("%s %s: encode: %w", op, Ref(obj), err)
	}
	opts := metav1.PatchOptions{FieldManager: manager, Force: &force}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	c.secrets.learn(obj)
	if IsSecret(obj) && c.secrets.firstRead(Ref(obj)) {
		// The server's answer (an error, a warning) may quote the values
		// being replaced too: an admission policy's message on oldObject.
		// Without permission to read them, only the new ones are hidden.
		_, _ = c.Get(ctx, obj)
	}
	var live *unstructured.Unstructured
	// No retry notices (here and in Get): an error may quote a Secret's
	// values, hidden only once it is returned (c.secrets.hideErr).
	err = backoff.Do(ctx, io.Discard, op+" "+Ref(obj), func() (err error) {
		live, err = c.resourceFor(m, obj.GetNamespace()).Patch(ctx, obj.GetName(), types.ApplyPatchType, data, opts)
		return transient(err)
	})
	if ce := conflictOf(err); ce != nil {
		return nil, &APIError{Op: op, Object: Ref(obj), Host: c.host, Code: http.StatusConflict, Err: ce,
			Hint: "leave these fields out of the manifest so their manager keeps them, or set params.force_conflicts: true to take them"}
	}
	if ie := immutableOf(err); ie != nil {
		return nil, c.secrets.hideErr(&APIError{Op: op, Object: Ref(obj), Host: c.host, Code: http.StatusUnprocessableEntity, Err: ie,
			Hint: "delete the object and put again, or set params.recreate_on_immutable: true to have the put delete it and create it again"})
	}
	if err != nil {
		return nil, c.secrets.hideErr(c.explain(op, Ref(obj), "patch", m.Resource.GroupResource().String(), obj.GetNamespace(), err))
	}
	return live, nil
}

// Get reads the live state of obj, or nil when it does not exist.
func (c *Client) Get(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	m, err := c.mapping(obj.GroupVersionKind())
	if err != nil {
		return nil, err
	}
	var live *unstructured.Unstructured
	err = backoff.Do(ctx, io.Discard, "get "+Ref(obj), func() (err error) {
		live, err = c.resourceFor(m, obj.GetNamespace()).Get(ctx, obj.GetName(), metav1.GetOptions{})
		return transient(err)
	})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, c.explain("get", Ref(obj), "get", m.Resource.GroupResource().String(), obj.GetNamespace(), err)
	}
	c.secrets.learn(live)
	return live, nil
}

// DeleteAndWait deletes each of objs in the foreground (its dependents
// first, as kubectl delete --cascade=foreground) and watches it until it is
// gone; a missing object is fine.
func (c *Client) DeleteAndWait(ctx context.Context, objs []*unstructured.Unstructured) error {
	_, err := each(ctx, objs, func(ctx context.Context, o *unstructured.Unstructured) (struct{}, error) {
		return struct{}{}, c.deleteAndWait(ctx, o)
	})
	return err
}

func (c *Client) deleteAndWait(ctx context.Context, obj *unstructured.Unstructured) error {
	m, err := c.mapping(obj.GroupVersionKind())
	if err != nil {
		return err
	}
	ri := c.resourceFor(m, obj.GetNamespace())
	resource := m.Resource.GroupResource().String()
	live, err := c.Get(ctx, obj)
	if err != nil || live == nil {
		return err
	}
	uid := live.GetUID()
	policy := metav1.DeletePropagationForeground
	err = ri.Delete(ctx, obj.GetName(), metav1.DeleteOptions{PropagationPolicy: &policy, Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) { // gone, or already another object
		return nil
	}
	if err != nil {
		return c.explain("delete", Ref(obj), "delete", resource, obj.GetNamespace(), err)
	}
	// Watching from the version read before the delete sees every event
	// after it, the Deleted one included.
	byName := fields.OneTermEqualSelector("metadata.name", obj.GetName()).String()
	lw := &cache.ListWatch{WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
		o.FieldSelector = byName
		return ri.Watch(ctx, o)
	}}
	_, err = watchtools.Until(ctx, live.GetResourceVersion(), lw, func(ev watch.Event) (bool, error) {
		o, ok := ev.Object.(*unstructured.Unstructured)
		return ev.Type == watch.Deleted && ok && o.GetUID() == uid, nil
	})
	if err != nil {
		return c.explain("wait for the deletion of", Ref(obj), "watch", resource, obj.GetNamespace(), err)
	}
	return nil
}

// Delete deletes obj (background propagation); a missing object is fine.
func (c *Client) Delete(ctx context.Context, obj *unstructured.Unstructured) error {
	m, err := c.mapping(obj.GroupVersionKind())
	if err != nil {
		return err
	}
	policy := metav1.DeletePropagationBackground
	err = c.resourceFor(m, obj.GetNamespace()).Delete(ctx, obj.GetName(), metav1.DeleteOptions{PropagationPolicy: &policy})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return c.explain("delete", Ref(obj), "delete", m.Resource.GroupResource().String(), obj.GetNamespace(), err)
}

// each runs fn over objs with bounded concurrency, collecting results in
// order and every error (not just the first).
func each[T any](ctx context.Context, objs []*unstructured.Unstructured, fn func(context.Context, *unstructured.Unstructured) (T, error)) ([]T, error) {
	out := make([]T, len(objs))
	errs := make([]error, len(objs))
	var g errgroup.Group
	g.SetLimit(applyConcurrency)
	for i, o := range objs {
		g.Go(func() error {
			out[i], errs[i] = fn(ctx, o)
			return nil
		})
	}
	_ = g.Wait()
	return out, errors.Join(errs...)
}

// Validation is the server-side dry run of a set.
type Validation struct {
	// Dry holds each object's dry-run result.
	Dry map[*unstructured.Unstructured]*unstructured.Unstructured
	// Deferred are the objects that cannot be dry-run before first (their
	// namespace or CRD) is applied.
	Deferred []*unstructured.Unstructured
	// Immutable are the objects whose change the server refuses as
	// immutable, with RecreateOnImmutable: to be deleted and created again.
	Immutable []*unstructured.Unstructured
}

// Validate dry-runs every object on the server. Objects that cannot be
// validated yet, because their namespace or CRD is created by first, are
// returned as deferred. Any other failure is returned, naming each object.
//
// Fields only client-side managers own (kubectl apply, create, replace) do
// not fail it: the apply takes them over (ApplyAll), so the dry run takes
// them too.
func (c *Client) Validate(ctx context.Context, objs, first []*unstructured.Unstructured, opts ApplyOptions) (Validation, error) {
	newNS, newKinds := map[string]bool{}, map[schema.GroupKind]bool{}
	for _, o := range first {
		switch groupKind(o) {
		case gkNamespace:
			newNS[o.GetName()] = true
		case gkCRD:
			newKinds[definedKind(o)] = true
		}
	}
	var mu sync.Mutex
	v := Validation{Dry: map[*unstructured.Unstructured]*unstructured.Unstructured{}}
	_, err := each(ctx, objs, func(ctx context.Context, o *unstructured.Unstructured) (struct{}, error) {
		res, err := c.applyWith(ctx, o, true, c.fieldManager, opts.ForceConflicts)
		var ce *ConflictError
		if errors.As(err, &ce) && ce.onlyClientSide() {
			res, err = c.applyWith(ctx, o, true, c.fieldManager, true)
		}
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			v.Dry[o] = res
			return struct{}{}, nil
		}
		var ae *APIError
		missingNS := errors.As(err, &ae) && apierrors.IsNotFound(ae.Err) && newNS[o.GetNamespace()]
		if newKinds[groupKind(o)] || missingNS {
			v.Deferred = append(v.Deferred, o)
			return struct{}{}, nil
		}
		var ie *ImmutableError
		if opts.RecreateOnImmutable && errors.As(err, &ie) && ie.recreatable(o) {
			v.Immutable = append(v.Immutable, o)
			return struct{}{}, nil
		}
		return struct{}{}, err
	})
	return v, err
}

// ApplyAll applies objs concurrently and reports what changed, given the
// dry-run results of the validation (nil when unknown). An object that
// client-side managers wrote is taken over first (takeOver).
func (c *Client) ApplyAll(ctx context.Context, objs []*unstructured.Unstructured, dry map[*unstructured.Unstructured]*unstructured.Unstructured, opts ApplyOptions) ([]Result, error) {
	return each(ctx, objs, func(ctx context.Context, o *unstructured.Unstructured) (Result, error) {
		live, err := c.applyTakingOver(ctx, o, dry[o], opts)
		if err != nil {
			return Result{Ref: Ref(o)}, err
		}
		r := Result{Ref: Ref(o), Live: live, Change: Configured}
		if d, ok := dry[o]; ok {
			switch {
			case d.GetResourceVersion() == "" || d.GetUID() != live.GetUID():
				r.Change = Created
			case d.GetResourceVersion() == live.GetResourceVersion():
				r.Change = Unchanged
			}
		}
		return r, nil
	})
}

// Plan dry-runs objs and compares each with its live state: what an apply
// would create or change, field by field.
func (c *Client) Plan(ctx context.Context, objs []*unstructured.Unstructured, dry map[*unstructured.Unstructured]*unstructured.Unstructured) ([]Result, error) {
	return each(ctx, objs, func(ctx context.Context, o *unstructured.Unstructured) (Result, error) {
		r := Result{Ref: Ref(o)}
		d, ok := dry[o]
		if !ok {
			r.Change = Created // its namespace or CRD does not exist yet
			return r, nil
		}
		live, err := c.Get(ctx, o)
		if err != nil {
			return r, err
		}
		r.Live = d
		if live == nil {
			r.Change = Created
			return r, nil
		}
		r.Diff = Diff(comparable(live), comparable(d))
		if m := clientSideManagers(live); len(m) > 0 {
			// The dry run shares their fields: what takeOver removes is
			// not in it.
			r.Diff = append(r.Diff, "(fields of "+strings.Join(m, ", ")+" taken over: what the manifest no longer sets is removed)")
		}
		r.Change = Unchanged
		if len(r.Diff) > 0 {
			r.Change = Configured
		}
		return r, nil
	})
}

// volatile are fields that differ between any two reads or builds.
var volatile = [][]string{
	{"metadata", "managedFields"}, {"metadata", "resourceVersion"}, {"metadata", "generation"},
	{"metadata", "uid"}, {"metadata", "creationTimestamp"}, {"status"},
	{"metadata", "annotations", AnnotationBuildURL}, {"metadata", "annotations", AnnotationLastApplied},
}

func comparable(obj *unstructured.Unstructured) map[string]any {
	c := obj.DeepCopy().Object
	for _, p := range volatile {
		unstructured.RemoveNestedField(c, p...)
	}
	return c
}

// Diff lists the paths where a and b differ, as "path: old → new". A map
// on one side only is listed key by key. Of a Secret it names the keys of
// data and stringData that change, and kubectl's last-applied annotation
// (a copy of them), but never their values: "data.password: changed
// (value hidden)".
func Diff(a, b any) []string {
	var out []string
	diffInto(&out, "", a, b, isSecretMap(a) || isSecretMap(b), false)
	sort.Strings(out)
	return out
}

// diffInto adds the differences of a and b at path to out. Values are not
// shown below the paths of a Secret that hold them (hide).
func diffInto(out *[]string, path string, a, b any, secret, hide bool) {
	hide = hide || secret && secretPaths[path]
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok || aok && b == nil || bok && a == nil {
		for k, av := range am {
			diffInto(out, join(path, k), av, bm[k], secret, hide)
		}
		for k, bv := range bm {
			if _, ok := am[k]; !ok {
				diffInto(out, join(path, k), nil, bv, secret, hide)
			}
		}
		return
	}
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok && bok && len(as) == len(bs) {
		for i := range as {
			diffInto(out, fmt.Sprintf("%s[%d]", path, i), as[i], bs[i], secret, hide)
		}
		return
	}
	if fmt.Sprint(a) == fmt.Sprint(b) {
		return
	}
	switch {
	case !hide:
		*out = append(*out, fmt.Sprintf("%s: %s → %s", path, short(a), short(b)))
	case a == nil:
		*out = append(*out, path+": added (value hidden)")
	case b == nil:
		*out = append(*out, path+": removed (value hidden)")
	default:
		*out = append(*out, path+": changed (value hidden)")
	}
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func short(v any) string {
	if v == nil {
		return "(none)"
	}
	s := fmt.Sprint(v)
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

// Resolve finds the object a kubectl-style kind names ("deployment",
// "deploy", "Deployment", "statefulsets.apps") in namespace (the client's
// when empty), as an object reference to Get or Wait on.
func (c *Client) Resolve(kind, namespace, name string) (*unstructured.Unstructured, error) {
	gr := schema.ParseGroupResource(strings.ToLower(kind))
	expander := restmapper.NewShortcutExpander(c.mapper, c.disc, nil)
	gvk, err := expander.KindFor(gr.WithVersion(""))
	if err != nil {
		if meta.IsNoMatchError(err) {
			return nil, fmt.Errorf("%s/%s: the API server %s serves no kind %q: use a kind such as deployment, statefulset or daemonset", kind, name, c.host, kind)
		}
		return nil, c.explain("discover", "the API resources", "list", "API groups", "", err)
	}
	m, err := c.mapping(gvk)
	if err != nil {
		return nil, err
	}
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(gvk)
	obj.SetName(name)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if namespace == "" {
			namespace = c.namespace
		}
		obj.SetNamespace(namespace)
	}
	return obj, nil
}
