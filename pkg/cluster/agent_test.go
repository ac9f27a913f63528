package cluster

import (
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"
)

const sha = "3becd003b8704fbc0c7e3f041ff27c51e53ed5f6"

func obj(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	data, err := yaml.YAMLToJSON([]byte(y))
	require.NoError(t, err)
	u := &unstructured.Unstructured{}
	// As the API client decodes: integers as int64, so generations compare.
	require.NoError(t, utiljson.Unmarshal(data, &u.Object))
	return u
}
