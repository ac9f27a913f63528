package kube

import (
	"testing"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestConflictOf(t *testing.T) {
	err := apierrors.NewApplyConflict([]metav1.StatusCause{
		{Type: metav1.CauseTypeFieldManagerConflict, Message: `conflict with "kube-controller-manager" with subresource "scale" using apps/v1`, Field: ".spec.replicas"},
		{Type: metav1.CauseTypeFieldManagerConflict, Message: `conflict with "kubectl-client-side-apply" using v1`, Field: ".metadata.labels.team"},
	}, "Apply failed with 2 conflicts")
	ce := conflictOf(err)
	require.NotNil(t, ce)
	require.Equal(t, []FieldConflict{
		{Field: ".spec.replicas", Manager: "kube-controller-manager", Owner: `"kube-controller-manager" with subresource "scale" using apps/v1`},
		{Field: ".metadata.labels.team", Manager: "kubectl-client-side-apply", Owner: `"kubectl-client-side-apply" using v1`},
	}, ce.Conflicts)
	require.False(t, ce.onlyClientSide())
	require.EqualError(t, ce, `the manifest changes fields another field manager owns: .spec.replicas (owned by "kube-controller-manager" with subresource "scale" using apps/v1), .metadata.labels.team (owned by "kubectl-client-side-apply" using v1)`)
	require.True(t, (&ConflictError{Conflicts: ce.Conflicts[1:]}).onlyClientSide())
	require.Nil(t, conflictOf(apierrors.NewConflict(schema.GroupResource{Resource: "configmaps"}, "x", nil)), "a resourceVersion conflict is no field conflict")
	require.Equal(t, err, transient(err), "a field conflict is not retried")
}

func TestImmutableOf(t *testing.T) {
	gk := schema.GroupKind{Group: "apps", Kind: "StatefulSet"}
	tests := []struct {
		name string
		errs field.ErrorList
		want []string
	}{
		{"selector", field.ErrorList{field.Invalid(field.NewPath("spec", "selector"), "{app: web}", "field is immutable")},
			[]string{"spec.selector (field is immutable)"}},
		{"statefulset", field.ErrorList{field.Forbidden(field.NewPath("spec"), "updates to statefulset spec for fields other than 'replicas' are forbidden")},
			[]string{"spec (updates to statefulset spec for fields other than 'replicas' are forbidden)"}},
		{"an invalid field beside", field.ErrorList{
			field.Invalid(field.NewPath("spec", "selector"), "{}", "field is immutable"),
			field.Required(field.NewPath("spec", "template"), "")}, nil},
		{"not immutable", field.ErrorList{field.Required(field.NewPath("spec", "template"), "")}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ie := immutableOf(apierrors.NewInvalid(gk, "db", tc.errs))
			if tc.want == nil {
				require.Nil(t, ie)
				return
			}
			require.Equal(t, tc.want, ie.Fields)
		})
	}
}

func TestRecreatable(t *testing.T) {
	for kind, want := range map[string]bool{"Job": true, "Namespace": false, "PersistentVolumeClaim": false} {
		o := &unstructured.Unstructured{}
		o.SetAPIVersion("v1")
		o.SetKind(kind)
		require.Equal(t, want, (&ImmutableError{}).recreatable(o), kind)
	}
}
