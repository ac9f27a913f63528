package kube

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/gitops-resource/gitops-resource/pkg/health"
)

// How each kind is judged ready, failed or in progress is pkg/health's:
// Wait watches the objects and asks it.

// Condition is one entry of status.conditions, as Conditions reports it.
type Condition = health.Condition

// Conditions reads status.conditions of any object (health.Conditions),
// with a Secret's data quoted as JSON in a message masked (MaskSecretData).
func Conditions(obj *unstructured.Unstructured) []Condition {
	conds := health.Conditions(obj)
	for i := range conds {
		conds[i].Message = MaskSecretData(conds[i].Message)
	}
	return conds
}
