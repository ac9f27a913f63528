package kube

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/util/csaupgrade"
)

// clientSide are the field managers of writes that were no server-side
// apply: kubectl apply (client-side), create and replace, and the entry the
// API server makes at the first server-side apply of an object that had no
// managedFields. A server-side apply shares their fields instead of
// removing them, so a field dropped from the manifest would stay.
var clientSide = sets.New("kubectl-client-side-apply", "kubectl-create", "kubectl-replace", "before-first-apply")

// takeOverAttempts bounds the retries of a takeover that lost a race with
// another write (its patch is guarded by the resourceVersion it read).
const takeOverAttempts = 4

// applyTakingOver applies obj. When its dry run (or the apply's answer)
// shows fields that client-side managers own, it first makes them this
// resource's, as kubectl apply --server-side does (takeOver), so the apply
// removes what the manifest no longer has instead of leaving it behind.
func (c *Client) applyTakingOver(ctx context.Context, obj, dry *unstructured.Unstructured, opts ApplyOptions) (*unstructured.Unstructured, error) {
	if dry != nil && len(clientSideManagers(dry)) > 0 {
		if err := c.takeOver(ctx, obj); err != nil {
			return nil, err
		}
	}
	live, err := c.applyWith(ctx, obj, false, c.fieldManager, opts.ForceConflicts)
	var ce *ConflictError
	switch {
	case errors.As(err, &ce) && ce.onlyClientSide():
	case err == nil && len(clientSideManagers(live)) > 0:
		// before-first-apply: made by this very apply, on an object
		// that had no managedFields.
	default:
		return live, err
	}
	if err := c.takeOver(ctx, obj); err != nil {
		return nil, err
	}
	return c.applyWith(ctx, obj, false, c.fieldManager, opts.ForceConflicts)
}

// takeOver moves the fields client-side managers own on the live obj to
// this resource's field manager (client-go's csaupgrade, as kubectl's
// migration to server-side apply), with a JSON patch of managedFields alone
// guarded by the resourceVersion it read.
func (c *Client) takeOver(ctx context.Context, obj *unstructured.Unstructured) error {
	m, err := c.mapping(obj.GroupVersionKind())
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		live, err := c.Get(ctx, obj)
		if err != nil || live == nil {
			return err
		}
		managers := clientSideManagers(live)
		patch, err := csaupgrade.UpgradeManagedFieldsPatch(live, sets.New(managers...), c.fieldManager)
		if err != nil {
			return fmt.Errorf("take over %s from %s: %w", Ref(obj), strings.Join(managers, ", "), err)
		}
		if patch == nil {
			return nil
		}
		_, err = c.resourceFor(m, obj.GetNamespace()).Patch(ctx, obj.GetName(), types.JSONPatchType, patch, metav1.PatchOptions{})
		if err == nil {
			fmt.Fprintf(c.log, "%s: took over fields of %s: what the manifest no longer sets is removed\n", Ref(obj), strings.Join(managers, ", "))
			return nil
		}
		if !apierrors.IsConflict(err) || attempt == takeOverAttempts {
			return c.secrets.hideErr(c.explain("take over the fields of "+strings.Join(managers, ", ")+" on", Ref(obj), "patch",
				m.Resource.GroupResource().String(), obj.GetNamespace(), err))
		}
	}
}

// clientSideManagers names the client-side managers with fields on obj.
func clientSideManagers(obj *unstructured.Unstructured) []string {
	found := sets.New[string]()
	for _, e := range obj.GetManagedFields() {
		if e.Operation == metav1.ManagedFieldsOperationUpdate && e.Subresource == "" && clientSide.Has(e.Manager) {
			found.Insert(e.Manager)
		}
	}
	return sets.List(found)
}

// FieldConflict is a field an apply would change that another field
// manager owns.
type FieldConflict struct {
	Field   string // .spec.replicas
	Manager string // kube-controller-manager
	Owner   string // the manager as the server describes it: "kube-controller-manager" with subresource "scale" using apps/v1 at ...
}

// ConflictError is an apply refused because it would change fields other
// field managers own (the API server's FieldManagerConflict causes).
type ConflictError struct{ Conflicts []FieldConflict }

func (e *ConflictError) Error() string {
	parts := make([]string, len(e.Conflicts))
	for i, c := range e.Conflicts {
		parts[i] = c.Field + " (owned by " + c.Owner + ")"
	}
	return "the manifest changes fields another field manager owns: " + strings.Join(parts, ", ")
}

func (e *ConflictError) onlyClientSide() bool {
	return !slices.ContainsFunc(e.Conflicts, func(c FieldConflict) bool { return !clientSide.Has(c.Manager) })
}

// conflictOf reads the field conflicts of an apply's 409, or nil.
func conflictOf(err error) *ConflictError {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil {
		return nil
	}
	var out []FieldConflict
	for _, cause := range status.Status().Details.Causes {
		if cause.Type != metav1.CauseTypeFieldManagerConflict {
			continue
		}
		owner := strings.TrimPrefix(cause.Message, "conflict with ")
		name := owner
		if q, err := strconv.QuotedPrefix(owner); err == nil {
			name, _ = strconv.Unquote(q)
		}
		out = append(out, FieldConflict{Field: cause.Field, Manager: name, Owner: owner})
	}
	if len(out) == 0 {
		return nil
	}
	return &ConflictError{Conflicts: out}
}

// immutablePhrases end the API server's messages for fields that cannot
// change once set (validation's "field is immutable", a Service's
// clusterIP, a StatefulSet's spec outside the fields it may update).
var immutablePhrases = []string{"field is immutable", "may not change once set", "updates to statefulset spec for fields other than", "is immutable after creation"}

// ImmutableError is a change the API server refuses because the fields
// cannot change once set: only deleting the object and creating it again
// makes it.
type ImmutableError struct {
	Fields []string // spec.selector (field is immutable)
}

func (e *ImmutableError) Error() string {
	return "the API server refuses to change what cannot change once set: " + strings.Join(e.Fields, "; ")
}

// neverRecreated are kinds whose deletion takes more than the object: a
// CRD its custom resources, a Namespace everything in it, a
// PersistentVolume(Claim) its data.
var neverRecreated = sets.New(gkCRD, gkNamespace, schema.GroupKind{Kind: "PersistentVolumeClaim"}, schema.GroupKind{Kind: "PersistentVolume"})

// recreatable: obj may be deleted and created again to make the change.
func (e *ImmutableError) recreatable(obj *unstructured.Unstructured) bool {
	return !neverRecreated.Has(groupKind(obj))
}

// immutableOf reads an apply's 422 whose every cause is a field that
// cannot change, or nil. The field's value, which the server quotes, is
// left out: it may be a Secret's.
func immutableOf(err error) *ImmutableError {
	var status apierrors.APIStatus
	if !apierrors.IsInvalid(err) || !errors.As(err, &status) || status.Status().Details == nil {
		return nil
	}
	var fields []string
	for _, cause := range status.Status().Details.Causes {
		i := -1
		for _, p := range immutablePhrases {
			if i = strings.Index(cause.Message, p); i >= 0 {
				break
			}
		}
		if i < 0 {
			return nil
		}
		fields = append(fields, fmt.Sprintf("%s (%s)", cause.Field, short(cause.Message[i:])))
	}
	if len(fields) == 0 {
		return nil
	}
	return &ImmutableError{Fields: fields}
}
