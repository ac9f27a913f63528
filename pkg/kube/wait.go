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
}

// Outcome is the final status of one waited-for object.
type Outcome struct {
	Ref     string
	Status  Status
	ReadyAt time.Time
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
	rule   Rule
	store  cache.Store
	status Status
	rv     string
	seen   bool
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

// Wait watches objs until every one is ready (see RuleFor), one fails, or
// ctx ends. It logs one line per status change. A new pod of a rollout in
// ImagePullBackOff, ErrImagePull, CrashLoopBackOff or
// CreateContainerConfigError fails its workload at once, as does a
// Deployment's ProgressDeadlineExceeded. A failure or timeout returns a
// *WaitError and logs the objects' conditions, pods and events.
func (c *Client) Wait(ctx context.Context, objs []*unstructured.Unstructured, o WaitOptions) ([]Outcome, error) {
	log := c.log
	if o.Quiet {
		log = io.Discard
	}
	stop := make(chan struct{})
	defer close(stop)
	dirty := make(chan struct{}, 1)
	poke := func() {
		select {
		case dirty <- struct{}{}:
		default:
		}
	}
	var mu sync.Mutex
	var watchErr error
	podsChanged := map[string]bool{}
	blind := map[string]bool{} // namespaces whose pods cannot be watched
	handler := func(ns string, pods bool) cache.ResourceEventHandler {
		mark := func() {
			if pods {
				mu.Lock()
				podsChanged[ns] = true
				mu.Unlock()
			}
			poke()
		}
		return cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { mark() },
			UpdateFunc: func(any, any) { mark() },
			DeleteFunc: func(any) { mark() },
		}
	}
	errHandler := func(what, verb, resource, ns string) cache.WatchErrorHandlerWithContext {
		return func(_ context.Context, _ *cache.Reflector, err error) {
			if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
				mu.Lock()
				if watchErr == nil {
					watchErr = c.explain("watch", what, verb, resource, ns, err)
				}
				mu.Unlock()
				poke()
			}
		}
	}

	type group struct {
		gvr schema.GroupVersionResource
		ns  string
	}
	groups := map[group][]*watched{}
	var all []*watched
	for _, obj := range objs {
		m, err := c.mapping(obj.GroupVersionKind())
		if err != nil {
			return nil, err
		}
		key := obj.GetName()
		if obj.GetNamespace() != "" {
			key = obj.GetNamespace() + "/" + key
		}
		w := &watched{obj: obj, key: key, ns: obj.GetNamespace(), rule: RuleFor(groupKind(obj))}
		g := group{m.Resource, obj.GetNamespace()}
		groups[g] = append(groups[g], w)
		all = append(all, w)
	}
	var synced []cache.InformerSynced
	for g, ws := range groups {
		selector, field := o.Selector, ""
		if selector == "" {
			if len(ws) == 1 {
				field = fields.OneTermEqualSelector("metadata.name", ws[0].obj.GetName()).String()
			}
		}
		inf := dynamicinformer.NewFilteredDynamicInformer(c.dyn, g.gvr, g.ns, 0, cache.Indexers{}, func(lo *metav1.ListOptions) {
			lo.LabelSelector, lo.FieldSelector = selector, field
		}).Informer()
		_ = inf.SetWatchErrorHandlerWithContext(errHandler(Ref(ws[0].obj), "list/watch", g.gvr.GroupResource().String(), g.ns))
		_, _ = inf.AddEventHandler(handler(g.ns, false))
		for _, w := range ws {
			w.store = inf.GetStore()
		}
		synced = append(synced, inf.HasSynced)
		go inf.Run(stop)
	}
	podInf := map[string]*nsInformers{}
	for _, w := range all {
		if podSpecPath(w.obj) == nil || w.ns == "" || podInf[w.ns] != nil {
			continue
		}
		f := informers.NewSharedInformerFactoryWithOptions(c.typed, 0, informers.WithNamespace(w.ns))
		ni := &nsInformers{pods: f.Core().V1().Pods().Informer(), rs: f.Apps().V1().ReplicaSets().Informer()}
		for name, inf := range map[string]cache.SharedIndexInformer{"pods": ni.pods, "replicasets.apps": ni.rs} {
			ns := w.ns
			_ = inf.AddIndexers(cache.Indexers{byController: controllerIndex})
			// Pods and ReplicaSets only sharpen the verdict (fail fast, the
			// report): without permission to watch them, wait without.
			_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
				if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
					mu.Lock()
					if !blind[ns] {
						blind[ns] = true
						fmt.Fprintf(c.log, "warning: cannot watch %s in namespace %s (%v): waiting on the workloads' status only, without failing fast on broken pods\n", name, ns, apierrors.ReasonForError(err))
					}
					mu.Unlock()
					poke()
				}
			})
			_, _ = inf.AddEventHandler(handler(ns, true))
			synced = append(synced, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return blind[ns] || inf.HasSynced()
			})
		}
		podInf[w.ns] = ni
		f.Start(stop)
	}

	for {
		mu.Lock()
		err := watchErr
		changedNS := podsChanged
		podsChanged = map[string]bool{}
		mu.Unlock()
		if err != nil {
			return nil, err
		}
		allSynced := true
		for _, s := range synced {
			if !s() {
				allSynced = false
			}
		}
		if allSynced {
			var failed []*watched
			ready := 0
			mu.Lock()
			usable := map[string]*nsInformers{}
			for ns, ni := range podInf {
				if !blind[ns] {
					usable[ns] = ni
				}
			}
			mu.Unlock()
			podInf := usable
			for _, w := range all {
				c.evaluate(w, podInf[w.ns], changedNS[w.ns], o, log)
				switch w.status.State {
				case Current:
					ready++
				case Failed:
					failed = append(failed, w)
				}
			}
			if len(failed) > 0 {
				return outcomes(all), c.waitError(ctx, failed, podInf, o, false)
			}
			if ready == len(all) {
				return outcomes(all), nil
			}
		}
		// Informers report synced a moment after delivering their first
		// events, and a quiet object sends no more: until every cache has
		// synced, look again shortly instead of waiting for an event.
		var unsynced <-chan time.Time
		if !allSynced {
			unsynced = time.After(50 * time.Millisecond)
		}
		select {
		case <-unsynced:
		case <-ctx.Done():
			var pending []*watched
			for _, w := range all {
				if w.status.State != Current {
					pending = append(pending, w)
				}
			}
			return outcomes(all), c.waitError(ctx, pending, podInf, o, true)
		case <-dirty:
		}
	}
}

func outcomes(all []*watched) []Outcome {
	out := make([]Outcome, len(all))
	for i, w := range all {
		out[i] = Outcome{Ref: Ref(w.obj), Status: w.status, ReadyAt: w.at}
	}
	return out
}

// evaluate updates w's status from the informer caches and logs a change.
func (c *Client) evaluate(w *watched, pods *nsInformers, podsChanged bool, o WaitOptions, log io.Writer) {
	item, exists, _ := w.store.GetByKey(w.key)
	var st Status
	if !exists {
		st = Status{InProgress, "does not exist yet"}
		w.rv = ""
	} else {
		live := item.(*unstructured.Unstructured)
		if live.GetResourceVersion() == w.rv && !podsChanged && w.seen {
			return
		}
		w.rv = live.GetResourceVersion()
		w.obj = live
		st = w.rule.Status(live)
		if pods != nil && st.State != Failed {
			news := newPods(live, pods, o.Since)
			if st.State == InProgress {
				for _, p := range news {
					if why := PodProblem(p); why != "" {
						st = Status{Failed, fmt.Sprintf("new pod %s: %s", p.Name, why)}
						break
					}
				}
			}
			if st.State == Current && o.VerifyImages && IsWorkload(live) {
				st = verifyImages(live, news, st)
			}
		} else if st.State == Current && o.VerifyImages && IsWorkload(live) {
			st = Status{Failed, "verify_images needs to read its pods: grant get, list and watch on pods"}
		}
	}
	st.Message = c.secrets.hide(st.Message) // a pod's or condition's message may quote a Secret
	w.seen = true
	if st != w.status || w.status.Message == "" {
		if w.status.Message == "" {
			fmt.Fprintf(log, "%s: %s\n", Ref(w.obj), st.Message)
		} else {
			fmt.Fprintf(log, "%s: %s → %s\n", Ref(w.obj), w.status.Message, st.Message)
		}
		if st.State == Current && w.status.State != Current {
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
	og, _ := nestedInt(obj.Object, "status", "observedGeneration")
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
func verifyImages(obj *unstructured.Unstructured, pods []*corev1.Pod, ready Status) Status {
	want := map[string]string{}
	for _, c := range Containers(obj) {
		if d := Digest(c.Image); d != "" {
			want[c.Name] = d
		}
	}
	if len(want) == 0 {
		return Status{Current, ready.Message + ", images not pinned by digest: not verified"}
	}
	if len(pods) == 0 {
		return Status{InProgress, ready.Message + ", waiting for its pods to verify images"}
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
					return Status{InProgress, fmt.Sprintf("%s, waiting for pod %s to report the digest of container %s", ready.Message, p.Name, cs.Name)}
				case got != d:
					return Status{Failed, fmt.Sprintf("pod %s container %s runs %s, not the applied %s", p.Name, cs.Name, got, d)}
				}
			}
		}
	}
	return Status{Current, ready.Message + ", image digests verified"}
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
			fmt.Fprintf(&b, "    %s: %s\n", p.Name, PodState(p))
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
		if err != nil {
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
