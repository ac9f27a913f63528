package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Labels and annotations this resource writes.
const (
	// LabelSet marks every object applied under one source and path; prune
	// only ever deletes objects carrying the set's value.
	LabelSet = "gitops-resource.io/set"
	// AnnotationRevision is the source commit (revision_file) of the apply.
	AnnotationRevision = "gitops-resource.io/revision"
	// AnnotationBuildURL links to the Concourse build that applied the object.
	AnnotationBuildURL = "gitops-resource.io/build-url"
	// AnnotationImages lists the images of the object's pod spec.
	AnnotationImages = "gitops-resource.io/images"
	// AnnotationLastApplied holds the manifest last applied to a workload,
	// the state rollback_on_failure restores.
	AnnotationLastApplied = "gitops-resource.io/last-applied"
	// AnnotationRestartedAt is kubectl rollout restart's pod template annotation.
	AnnotationRestartedAt = "kubectl.kubernetes.io/restartedAt"
	// restartManager owns restartedAt, so later applies leave it alone.
	restartManager = "gitops-resource-restart"
)

// SetID is the value of LabelSet for one server, namespace and path: short,
// stable, and a valid label value.
func SetID(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:])[:20]
}

// Provenance is stamped on every applied object.
type Provenance struct {
	SetID    string
	Revision string
	BuildURL string
}

// Stamp sets the set label and provenance annotations on obj, and on
// workloads the last-applied manifest (without itself).
func Stamp(obj *unstructured.Unstructured, p Provenance) {
	labels := obj.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelSet] = p.SetID
	obj.SetLabels(labels)
	ann := obj.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	delete(ann, AnnotationLastApplied)
	set := func(k, v string) {
		if v != "" {
			ann[k] = v
		}
	}
	set(AnnotationRevision, p.Revision)
	set(AnnotationBuildURL, p.BuildURL)
	set(AnnotationImages, strings.Join(Images(obj), ","))
	obj.SetAnnotations(ann)
	if IsWorkload(obj) {
		data, _ := obj.MarshalJSON()
		ann[AnnotationLastApplied] = string(data)
		obj.SetAnnotations(ann)
	}
}

// Previous is the state to roll obj back to: the manifest this resource
// last applied to it, else its live spec, or nil when it does not exist.
func (c *Client) Previous(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	live, err := c.Get(ctx, obj)
	if err != nil || live == nil {
		return nil, err
	}
	if data, ok := live.GetAnnotations()[AnnotationLastApplied]; ok {
		prev := &unstructured.Unstructured{}
		if err := prev.UnmarshalJSON([]byte(data)); err == nil {
			Stamp(prev, Provenance{SetID: prev.GetLabels()[LabelSet], Revision: prev.GetAnnotations()[AnnotationRevision], BuildURL: prev.GetAnnotations()[AnnotationBuildURL]})
			return prev, nil
		}
	}
	prev := &unstructured.Unstructured{Object: comparable(live)}
	unstructured.RemoveNestedField(prev.Object, "metadata", "annotations", "deployment.kubernetes.io/revision")
	unstructured.RemoveNestedField(prev.Object, "metadata", "selfLink")
	return prev, nil
}

// Restart rolls obj's pods the way kubectl rollout restart does: a new
// restartedAt annotation on its pod template, owned by a field manager of
// its own so the next apply does not remove it (and roll again).
func (c *Client) Restart(ctx context.Context, obj *unstructured.Unstructured, at time.Time) error {
	patch := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": obj.GetAPIVersion(), "kind": obj.GetKind(),
		"metadata": map[string]any{"name": obj.GetName(), "namespace": obj.GetNamespace()},
		"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
			"annotations": map[string]any{AnnotationRestartedAt: at.UTC().Format(time.RFC3339)},
		}}},
	}}
	if obj.GetNamespace() == "" {
		unstructured.RemoveNestedField(patch.Object, "metadata", "namespace")
	}
	_, err := c.applyAs(ctx, patch, false, restartManager)
	return err
}

// ObjRef identifies an object across applies.
type ObjRef struct {
	Group     string `json:"group,omitempty"`
	Version   string `json:"version"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// RefOf returns obj's ObjRef.
func RefOf(obj *unstructured.Unstructured) ObjRef {
	gvk := obj.GroupVersionKind()
	return ObjRef{gvk.Group, gvk.Version, gvk.Kind, obj.GetNamespace(), obj.GetName()}
}

func (r ObjRef) key() string {
	return r.Group + "/" + r.Kind + "/" + r.Namespace + "/" + r.Name
}

func (r ObjRef) object() *unstructured.Unstructured {
	o := &unstructured.Unstructured{}
	o.SetGroupVersionKind(schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind})
	o.SetNamespace(r.Namespace)
	o.SetName(r.Name)
	return o
}

// Inventory is the record of the objects applied under one set, kept in a
// ConfigMap in the client's namespace, so prune knows what it applied
// before, whatever kinds those were.
type Inventory struct {
	c     *Client
	setID string
}

// Inventory returns the inventory of setID.
func (c *Client) Inventory(setID string) Inventory { return Inventory{c, setID} }

func (inv Inventory) name() string { return "gitops-resource-set-" + inv.setID }

// Read lists the objects recorded, none when there is no record yet.
func (inv Inventory) Read(ctx context.Context) ([]ObjRef, error) {
	cm, err := inv.c.typed.CoreV1().ConfigMaps(inv.c.namespace).Get(ctx, inv.name(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, inv.c.explain("read the inventory", "ConfigMap/"+inv.c.namespace+"/"+inv.name(), "get", "configmaps", inv.c.namespace, err)
	}
	var refs []ObjRef
	if err := json.Unmarshal([]byte(cm.Data["objects"]), &refs); err != nil {
		return nil, fmt.Errorf("read the inventory ConfigMap/%s/%s: %w", inv.c.namespace, inv.name(), err)
	}
	return refs, nil
}

// Write records refs.
func (inv Inventory) Write(ctx context.Context, refs []ObjRef) error {
	sort.Slice(refs, func(i, j int) bool { return refs[i].key() < refs[j].key() })
	data, err := json.Marshal(refs)
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: inv.name(), Namespace: inv.c.namespace,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "gitops-resource"}},
		Data: map[string]string{"objects": string(data)},
	}
	body, err := json.Marshal(cm)
	if err != nil {
		return err
	}
	force := true
	_, err = inv.c.typed.CoreV1().ConfigMaps(inv.c.namespace).Patch(ctx, inv.name(), types.ApplyPatchType, body,
		metav1.PatchOptions{FieldManager: inv.c.fieldManager, Force: &force})
	return inv.c.explain("record the inventory", "ConfigMap/"+inv.c.namespace+"/"+inv.name(), "patch", "configmaps", inv.c.namespace, err)
}

// Merge returns the union of a and b.
func Merge(a, b []ObjRef) []ObjRef {
	seen := map[string]bool{}
	var out []ObjRef
	for _, r := range append(append([]ObjRef{}, a...), b...) {
		if !seen[r.key()] {
			seen[r.key()] = true
			out = append(out, r)
		}
	}
	return out
}

// Prune deletes the objects of previous that are not in current and still
// carry setID's label; anything else is left alone. It returns the refs of
// the deleted objects, and logs the ones it left.
func (c *Client) Prune(ctx context.Context, setID string, previous []ObjRef, current []*unstructured.Unstructured) ([]string, error) {
	keep := map[string]bool{}
	for _, o := range current {
		keep[RefOf(o).key()] = true
	}
	var deleted []string
	for _, r := range previous {
		if keep[r.key()] {
			continue
		}
		live, err := c.Get(ctx, r.object())
		if err != nil {
			if IsUnknownKind(err) {
				continue // its CRD is gone, and so is it
			}
			return deleted, err
		}
		if live == nil {
			continue
		}
		if live.GetLabels()[LabelSet] != setID {
			fmt.Fprintf(c.log, "prune: %s no longer carries this set's label: left alone\n", Ref(live))
			continue
		}
		if err := c.Delete(ctx, live); err != nil {
			return deleted, err
		}
		deleted = append(deleted, Ref(live))
	}
	return deleted, nil
}
