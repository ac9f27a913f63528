package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/gitops-resource/gitops-resource/pkg/health"
)

// WaitOptions tune Wait.
type WaitOptions struct {
	// Selector is a label selector every object carries (the set label):
	// one watch per kind and namespace instead of one per object.
	Selector string
	// Timeout is only used to word the timeout error; the context bounds.
	Timeout time.Duration
	// Since: pods created before it are not new (DaemonSets, Jobs).
	Since time.Time
	// VerifyImages requires the new pods' imageIDs to be the digests the
	// workload's spec pins before the workload counts as ready.
	VerifyImages bool
	// Quiet logs nothing while waiting (failure reports are still logged).
	Quiet bool
	// Judge judges every object instead of the rule of its kind
	// (health.For): an agent's judge of what it reports for a commit.
	Judge health.Judge
	// Every re-judges each object at least this often, changed or not,
	// for a judge that decides on time (a failure lasting past a retry).
	Every time.Duration
}

// Outcome is the final status of one waited-for object.
type Outcome struct {
	Ref     string
	Status  health.Status
	ReadyAt time.Time
	// Object is the object as last seen (as passed, if it never was).
	Object *unstructured.Unstructured
}

// WaitError is a wait that ended without every object ready.
type WaitError struct {
	Failed  []string // "Ref: why"
	Pending []string // "Ref (last status)"
	Timeout time.Duration
	// Interrupted: the step was stopped (aborted build), not timed out.
	Interrupted bool
	Report      string // conditions, pods and events of the objects concerned
}

func (e *WaitError) Error() string {
	if len(e.Failed) > 0 {
		return strings.Join(e.Failed, "; ")
	}
	if e.Interrupted {
		return "interrupted while waiting for " + strings.Join(e.Pending, ", ")
	}
	return fmt.Sprintf("timed out after %s still waiting for %s", e.Timeout, strings.Join(e.Pending, ", "))
}

type watched struct {
	obj    *unstructured.Unstructured
	key    string
	ns     string
	judge  health.Judge
	store  cache.Store
	status health.Status
	rv     string
	seen   bool // judged at least once
	exists bool // seen in the cache at least once
	at     time.Time
}

type nsInformers struct {
	pods, rs cache.SharedIndexInformer
}

const byController = "controller"

func controllerIndex(obj any) ([]string, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, nil
	}
	if ref := metav1.GetControllerOf(m); ref != nil {
		return []string{string(ref.UID)}, nil
	}
	return nil, nil
}

// Wait watches objs until every one is ready (as pkg/health judges it, or
// o.Judge), one fails, or ctx ends. It logs one line per status change. An
// object that is not there yet is waited for; one deleted while waited for
// (before it was ready) fails. A new pod of a rollout in
// ImagePullBackOff, ErrImagePull, CrashLoopBackOff or
// CreateContainerConfigError fails its workload at once, as does a
// Deployment's ProgressDeadlineExceeded. A failure or timeout returns a
// *WaitError and logs the objects' conditions, pods and events.
//
// Its steps: track each object (its resource and judge), watch
// them (one informer per resource and namespace), watch the pods and
// ReplicaSets of the workloads' namespaces, then judge every object on each
// change until done.
func (c *Client) Wait(ctx context.Context, objs []*unstructured.Unstructured, o WaitOptions) ([]Outcome, error) {
	wt := c.newWaiter(o)
	defer close(wt.stop)
	groups, err := wt.track(objs)
	if err != nil {
		return nil, err
	}
	wt.watchObjects(groups)
	wt.watchPods()
	return wt.until(ctx)
}

// waiter is one Wait: the objects it tracks, the informers watching them,
// and what the informers' handlers report to its loop.
type waiter struct {
	c     *Client
	o     WaitOptions
	log   io.Writer
	stop  chan struct{} // stops the informers
	dirty chan struct{} // something changed: judge again

	all    []*watched
	synced []cache.InformerSynced
	podInf map[string]*nsInformers // by namespace

	mu          sync.Mutex
	watchErr    error           // a watch the credentials may not make
	podsChanged map[string]bool // namespaces whose pods changed since the last look
	blind       map[string]bool // namespaces whose pods cannot be watched
}

// watchGroup is what one informer watches.
type watchGroup struct {
	gvr schema.GroupVersionResource
	ns  string
}

func (c *Client) newWaiter(o WaitOptions) *waiter {
	log := c.log
	if o.Quiet {
		log = io.Discard
	}
	return &waiter{c: c, o: o, log: log, stop: make(chan struct{}), dirty: make(chan struct{}, 1),
		podInf: map[string]*nsInformers{}, podsChanged: map[string]bool{}, blind: map[string]bool{}}
}

// track resolves each object's resource and judge, grouped by
// resource and namespace.
func (wt *waiter) track(objs []*unstructured.Unstructured) (map[watchGroup][]*watched, error) {
	groups := map[watchGroup][]*watched{}
	for _, obj := range objs {
		m, err := wt.c.mapping(obj.GroupVersionKind())
		if err != nil {
			return nil, err
		}
		key := obj.GetName()
		if obj.GetNamespace() != "" {
			key = obj.GetNamespace() + "/" + key
		}
		judge := wt.o.Judge
		if judge == nil {
			judge = health.For(groupKind(obj))
		}
		w := &watched{obj: obj, key: key, ns: obj.GetNamespace(), judge: judge}
		g := watchGroup{m.Resource, obj.GetNamespace()}
		groups[g] = append(groups[g], w)
		wt.all = append(wt.all, w)
	}
	return groups, nil
}

// watchObjects starts one informer per group: by the selector every object
// carries, else by name when the group is one object.
func (wt *waiter) watchObjects(groups map[watchGroup][]*watched) {
	for g, ws := range groups {
		selector, field := wt.o.Selector, ""
		if selector == "" {
			if len(ws) == 1 {
				field = fields.OneTermEqualSelector("metadata.name", ws[0].obj.GetName()).String()
			}
		}
		inf := dynamicinformer.NewFilteredDynamicInformer(wt.c.dyn, g.gvr, g.ns, 0, cache.Indexers{}, func(lo *metav1.ListOptions) {
			lo.LabelSelector, lo.FieldSelector = selector, field
		}).Informer()
		_ = inf.SetWatchErrorHandlerWithContext(wt.watchDenied(Ref(ws[0].obj), "list/watch", g.gvr.GroupResource().String(), g.ns))
		_, _ = inf.AddEventHandler(wt.handler(g.ns, false))
		for _, w := range ws {
			w.store = inf.GetStore()
		}
		wt.synced = append(wt.synced, inf.HasSynced)
		go inf.Run(wt.stop)
	}
}

// watchPods starts, for each namespace holding a workload, informers of its
// pods and ReplicaSets, indexed by controller.
func (wt *waiter) watchPods() {
	for _, w := range wt.all {
		if podSpecPath(w.obj) == nil || w.ns == "" || wt.podInf[w.ns] != nil {
			continue
		}
		f := informers.NewSharedInformerFactoryWithOptions(wt.c.typed, 0, informers.WithNamespace(w.ns))
		ni := &nsInformers{pods: f.Core().V1().Pods().Informer(), rs: f.Apps().V1().ReplicaSets().Informer()}
		for name, inf := range map[string]cache.SharedIndexInformer{"pods": ni.pods, "replicasets.apps": ni.rs} {
			ns := w.ns
			_ = inf.AddIndexers(cache.Indexers{byController: controllerIndex})
			_ = inf.SetWatchErrorHandlerWithContext(wt.podsDenied(name, ns))
			_, _ = inf.AddEventHandler(wt.handler(ns, true))
			wt.synced = append(wt.synced, func() bool {
				wt.mu.Lock()
				defer wt.mu.Unlock()
				return wt.blind[ns] || inf.HasSynced()
			})
		}
		wt.podInf[w.ns] = ni
		f.Start(wt.stop)
	}
}

// until judges every object on each change until all are ready, one has
// failed, a watch is denied, or ctx ends.
func (wt *waiter) until(ctx context.Context) ([]Outcome, error) {
	var tick <-chan time.Time // re-judge every object (o.Every)
	if wt.o.Every > 0 {
		t := time.NewTicker(wt.o.Every)
		defer t.Stop()
		tick = t.C
	}
	again := false
	for {
		changedNS, err := wt.events()
		if err != nil {
			return nil, err
		}
		synced := wt.allSynced()
		if synced {
			if done, err := wt.judge(ctx, changedNS, again); done {
				return outcomes(wt.all), err
			}
		}
		again = false
		// Informers report synced a moment after delivering their first
		// events, and a quiet object sends no more: until every cache has
		// synced, look again shortly instead of waiting for an event.
		var unsynced <-chan time.Time
		if !synced {
			unsynced = time.After(50 * time.Millisecond)
		}
		select {
		case <-unsynced:
		case <-tick:
			again = true
		case <-ctx.Done():
			return outcomes(wt.all), wt.c.waitError(ctx, wt.pending(), wt.podInf, wt.o, true)
		case <-wt.dirty:
		}
	}
}

// judge evaluates every object (each changed one, or with again every
// one): done when one failed (with the error) or every one is ready.
func (wt *waiter) judge(ctx context.Context, changedNS map[string]bool, again bool) (bool, error) {
	podInf := wt.watchablePods()
	var failed []*watched
	ready := 0
	for _, w := range wt.all {
		wt.c.evaluate(w, podInf[w.ns], again || changedNS[w.ns], wt.o, wt.log)
		switch w.status.State {
		case health.Current:
			ready++
		case health.Failed:
			failed = append(failed, w)
		}
	}
	if len(failed) > 0 {
		return true, wt.c.waitError(ctx, failed, podInf, wt.o, false)
	}
	return ready == len(wt.all), nil
}

// events takes what the handlers reported since the last look: a denied
// watch, and the namespaces whose pods changed.
func (wt *waiter) events() (map[string]bool, error) {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	changed := wt.podsChanged
	wt.podsChanged = map[string]bool{}
	return changed, wt.watchErr
}

func (wt *waiter) allSynced() bool {
	all := true
	for _, s := range wt.synced {
		if !s() {
			all = false
		}
	}
	return all
}

// watchablePods are the pod informers of the namespaces whose pods can be
// watched.
func (wt *waiter) watchablePods() map[string]*nsInformers {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	usable := map[string]*nsInformers{}
	for ns, ni := range wt.podInf {
		if !wt.blind[ns] {
			usable[ns] = ni
		}
	}
	return usable
}

// pending are the objects not ready yet.
func (wt *waiter) pending() []*watched {
	var pending []*watched
	for _, w := range wt.all {
		if w.status.State != health.Current {
			pending = append(pending, w)
		}
	}
	return pending
}

// poke wakes the loop; a wake-up already pending covers this one.
func (wt *waiter) poke() {
	select {
	case wt.dirty <- struct{}{}:
	default:
	}
}

// handler pokes the loop on every change, noting in pods' handlers that
// the pods of ns changed.
func (wt *waiter) handler(ns string, pods bool) cache.ResourceEventHandler {
	mark := func() {
		if pods {
			wt.mu.Lock()
			wt.podsChanged[ns] = true
			wt.mu.Unlock()
		}
		wt.poke()
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { mark() },
		UpdateFunc: func(any, any) { mark() },
		DeleteFunc: func(any) { mark() },
	}
}

// watchDenied ends the wait when the credentials may not watch the objects.
func (wt *waiter) watchDenied(what, verb, resource, ns string) cache.WatchErrorHandlerWithContext {
	return func(_ context.Context, _ *cache.Reflector, err error) {
		if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
			wt.mu.Lock()
			if wt.watchErr == nil {
				wt.watchErr = wt.c.explain("watch", what, verb, resource, ns, err)
			}
			wt.mu.Unlock()
			wt.poke()
		}
	}
}

// podsDenied: pods and ReplicaSets only sharpen the verdict (fail fast, the
// report); without permission to watch them in ns, the wait goes on
// without, after a warning.
func (wt *waiter) podsDenied(name, ns string) cache.WatchErrorHandlerWithContext {
	return func(_ context.Context, _ *cache.Reflector, err error) {
		if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
			wt.mu.Lock()
			if !wt.blind[ns] {
				wt.blind[ns] = true
				fmt.Fprintf(wt.c.log, "warning: cannot watch %s in namespace %s (%v): waiting on the workloads' status only, without failing fast on broken pods\n", name, ns, apierrors.ReasonForError(err))
			}
			wt.mu.Unlock()
			wt.poke()
		}
	}
}

func outcomes(all []*watched) []Outcome {
	out := make([]Outcome, len(all))
	for i, w := range all {
		out[i] = Outcome{Ref: Ref(w.obj), Status: w.status, ReadyAt: w.at, Object: w.obj}
	}
	return out
}

// evaluate updates w's status from the informer caches and logs a change;
// with again it judges w even if it did not change.
func (c *Client) evaluate(w *watched, pods *nsInformers, again bool, o WaitOptions, log io.Writer) {
	item, exists, _ := w.store.GetByKey(w.key)
	var st health.Status
	switch {
	case !exists && w.exists && w.status.State == health.Current:
		return // ready, then deleted (a Job's ttlSecondsAfterFinished): it was ready
	case !exists && w.exists:
		st = health.Status{State: health.Failed, Message: "deleted while waiting"}
	case !exists:
		st = health.Status{State: health.InProgress, Message: "does not exist yet"}
		w.rv = ""
	default:
		live := item.(*unstructured.Unstructured)
		if live.GetResourceVersion() == w.rv && !again && w.seen {
			return
		}
		w.rv = live.GetResourceVersion()
		w.obj = live
		w.exists = true
		st = w.judge(live, time.Now())
		if pods != nil && st.State != health.Failed {
			news := newPods(live, pods, o.Since)
			if st.State == health.InProgress {
				for _, p := range news {
					if why := health.PodProblem(p); why != "" {
						st = health.Status{State: health.Failed, Message: fmt.Sprintf("new pod %s: %s", p.Name, why)}
						break
					}
				}
			}
			if st.State == health.Current && o.VerifyImages && IsWorkload(live) {
				st = verifyImages(live, news, st)
			}
		} else if st.State == health.Current && o.VerifyImages && IsWorkload(live) {
			st = health.Status{State: health.Failed, Message: "verify_images needs to read its pods: grant get, list and watch on pods"}
		}
	}
	// A pod's or condition's message may quote a Secret: its values as the
	// client knows them, or its data as JSON (an agent's messages).
	st.Message = c.secrets.hide(MaskSecretData(st.Message))
	w.seen = true
	if st != w.status || w.status.Message == "" {
		if w.status.Message == "" {
			fmt.Fprintf(log, "%s: %s\n", Ref(w.obj), st.Message)
		} else {
			fmt.Fprintf(log, "%s: %s → %s\n", Ref(w.obj), w.status.Message, st.Message)
		}
		if st.State == health.Current && w.status.State != health.Current {
			w.at = time.Now()
		}
		w.status = st
	}
}

// newPods are the pods of obj's current revision.
func newPods(obj *unstructured.Unstructured, inf *nsInformers, since time.Time) []*corev1.Pod {
	owned := func(i cache.SharedIndexInformer, uid types.UID) []any {
		items, _ := i.GetIndexer().ByIndex(byController, string(uid))
		return items
	}
	var out []*corev1.Pod
	add := func(items []any, keep func(*corev1.Pod) bool) {
		for _, it := range items {
			if p, ok := it.(*corev1.Pod); ok && p.DeletionTimestamp == nil && keep(p) {
				out = append(out, p)
			}
		}
	}
	all := func(*corev1.Pod) bool { return true }
	switch groupKind(obj) {
	case gkDeployment:
		if obj.GetGeneration() > observedGeneration(obj) {
			return nil
		}
		rev := obj.GetAnnotations()["deployment.kubernetes.io/revision"]
		for _, it := range owned(inf.rs, obj.GetUID()) {
			if rs, ok := it.(*appsv1.ReplicaSet); ok && rev != "" && rs.Annotations["deployment.kubernetes.io/revision"] == rev {
				add(owned(inf.pods, rs.UID), all)
			}
		}
	case gkStatefulSet:
		rev, _, _ := unstructured.NestedString(obj.Object, "status", "updateRevision")
		add(owned(inf.pods, obj.GetUID()), func(p *corev1.Pod) bool {
			return rev != "" && p.Labels[appsv1.ControllerRevisionHashLabelKey] == rev
		})
	default:
		add(owned(inf.pods, obj.GetUID()), func(p *corev1.Pod) bool {
			return !p.CreationTimestamp.Time.Before(since.Add(-time.Second))
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func observedGeneration(obj *unstructured.Unstructured) int64 {
	og, _ := health.ObservedGeneration(obj)
	return og
}

// Digest returns the sha256 digest an image reference or imageID pins, or "".
func Digest(ref string) string {
	if i := strings.LastIndex(ref, "sha256:"); i >= 0 {
		return ref[i:]
	}
	return ""
}

// verifyImages holds a ready workload back until its new pods run the
// digests its spec pins, and fails it when one runs another digest.
func verifyImages(obj *unstructured.Unstructured, pods []*corev1.Pod, ready health.Status) health.Status {
	want := map[string]string{}
	for _, c := range Containers(obj) {
		if d := Digest(c.Image); d != "" {
			want[c.Name] = d
		}
	}
	if len(want) == 0 {
		return health.Status{State: health.Current, Message: ready.Message + ", images not pinned by digest: not verified"}
	}
	if len(pods) == 0 {
		return health.Status{State: health.InProgress, Message: ready.Message + ", waiting for its pods to verify images"}
	}
	for _, p := range pods {
		for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
			for _, cs := range list {
				d, ok := want[cs.Name]
				if !ok {
					continue
				}
				got := Digest(cs.ImageID)
				switch {
				case got == "":
					return health.Status{State: health.InProgress, Message: fmt.Sprintf("%s, waiting for pod %s to report the digest of container %s", ready.Message, p.Name, cs.Name)}
				case got != d:
					return health.Status{State: health.Failed, Message: fmt.Sprintf("pod %s container %s runs %s, not the applied %s", p.Name, cs.Name, got, d)}
				}
			}
		}
	}
	return health.Status{State: health.Current, Message: ready.Message + ", image digests verified"}
}

// waitError builds the error and logs the report of the objects concerned.
func (c *Client) waitError(ctx context.Context, ws []*watched, podInf map[string]*nsInformers, o WaitOptions, timeout bool) error {
	e := &WaitError{}
	if timeout {
		e.Timeout = o.Timeout
		e.Interrupted = errors.Is(ctx.Err(), context.Canceled)
	}
	var report strings.Builder
	for _, w := range ws {
		if timeout {
			e.Pending = append(e.Pending, fmt.Sprintf("%s (%s)", Ref(w.obj), w.status.Message))
		} else {
			e.Failed = append(e.Failed, fmt.Sprintf("%s failed: %s", Ref(w.obj), w.status.Message))
		}
		if len(e.Failed)+len(e.Pending) <= maxDescribedObjects {
			// The report is read after the deadline too.
			report.WriteString(c.Describe(context.WithoutCancel(ctx), w.obj, podInf[w.ns], o.Since))
		}
	}
	e.Report = report.String()
	fmt.Fprint(c.log, e.Report)
	return e
}

// Describe reports obj for a failure: its conditions, the state of its new
// pods, and its recent events and theirs, with the values of the Secrets
// the client has seen hidden (a crashing app may print them).
func (c *Client) Describe(ctx context.Context, obj *unstructured.Unstructured, inf *nsInformers, since time.Time) string {
	return c.secrets.hide(c.describe(ctx, obj, inf, since))
}

func (c *Client) describe(ctx context.Context, obj *unstructured.Unstructured, inf *nsInformers, since time.Time) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n", Ref(obj))
	if conds := Conditions(obj); len(conds) > 0 {
		b.WriteString("  conditions:\n")
		for _, cd := range conds {
			fmt.Fprintf(&b, "    %s\n", cd)
		}
	}
	uids := []types.UID{obj.GetUID()}
	if inf != nil {
		pods := newPods(obj, inf, since)
		if len(pods) > 0 {
			b.WriteString("  pods:\n")
		}
		owners := map[types.UID]bool{}
		for i, p := range pods {
			if i == maxDescribedPods {
				fmt.Fprintf(&b, "    ... and %d more\n", len(pods)-i)
				break
			}
			fmt.Fprintf(&b, "    %s: %s\n", p.Name, health.PodState(p))
			uids = append(uids, p.UID)
			if ref := metav1.GetControllerOf(p); ref != nil && ref.UID != obj.GetUID() && !owners[ref.UID] {
				owners[ref.UID] = true
				uids = append(uids, ref.UID)
			}
		}
	}
	if obj.GetNamespace() == "" {
		return b.String()
	}
	var mine []corev1.Event
	for _, uid := range uids {
		events, err := c.typed.CoreV1().Events(obj.GetNamespace()).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("involvedObject.uid", string(uid)).String()})
		switch {
		case apierrors.IsForbidden(err):
			// The Roles of modes flux and argocd leave events out: say so in
			// one line (the agent's own message explains the failure).
			fmt.Fprintf(&b, "  events: not shown: the credentials may not list events in namespace %s\n", obj.GetNamespace())
			return b.String()
		case err != nil:
			fmt.Fprintf(&b, "  events: not readable: %v\n", c.explain("list events", "", "list", "events", obj.GetNamespace(), err))
			return b.String()
		}
		mine = append(mine, events.Items...)
	}
	sort.Slice(mine, func(i, j int) bool { return eventTime(mine[i]).Before(eventTime(mine[j])) })
	if len(mine) > maxEvents {
		mine = mine[len(mine)-maxEvents:]
	}
	if len(mine) > 0 {
		b.WriteString("  events:\n")
	}
	for _, ev := range mine {
		fmt.Fprintf(&b, "    %s %s %s/%s: %s\n", ev.Type, ev.Reason, ev.InvolvedObject.Kind, ev.InvolvedObject.Name, strings.TrimSpace(ev.Message))
	}
	return b.String()
}

// Bounds of a failure report.
const (
	maxDescribedPods    = 5
	maxEvents           = 10
	maxDescribedObjects = 5
)

func eventTime(ev corev1.Event) time.Time {
	switch {
	case !ev.LastTimestamp.IsZero():
		return ev.LastTimestamp.Time
	case !ev.EventTime.IsZero():
		return ev.EventTime.Time
	}
	return ev.CreationTimestamp.Time
}
