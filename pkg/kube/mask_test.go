package kube

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Values of the Secrets below (base64 in data): none may be printed.
const (
	oldPassword = "old-pass-1111"   // b2xkLXBhc3MtMTExMQ==
	newPassword = "new-pass-2222"   // bmV3LXBhc3MtMjIyMg==
	goneToken   = "gone-token-3333" // Z29uZS10b2tlbi0zMzMz
	newKey      = "new-key-4444"
)

var allValues = []string{oldPassword, newPassword, goneToken, newKey,
	"b2xkLXBhc3MtMTExMQ==", "bmV3LXBhc3MtMjIyMg==", "Z29uZS10b2tlbi0zMzMz"}

func requireNoValues(t *testing.T, text string) {
	t.Helper()
	for _, v := range allValues {
		require.NotContains(t, text, v)
	}
}

func TestDiffOfASecretNamesKeysNeverValues(t *testing.T) {
	live := obj(t, `apiVersion: v1
kind: Secret
metadata:
  name: db
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{"apiVersion":"v1","data":{"password":"b2xkLXBhc3MtMTExMQ=="},"kind":"Secret"}'
type: Opaque
data: {password: b2xkLXBhc3MtMTExMQ==, token: Z29uZS10b2tlbi0zMzMz}
`)
	dry := obj(t, `apiVersion: v1
kind: Secret
metadata:
  name: db
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{"apiVersion":"v1","data":{"password":"bmV3LXBhc3MtMjIyMg=="},"kind":"Secret"}'
type: kubernetes.io/basic-auth
data: {password: bmV3LXBhc3MtMjIyMg==}
stringData: {key: new-key-4444}
`)
	got := Diff(comparable(live), comparable(dry))
	require.Equal(t, []string{
		"data.password: changed (value hidden)",
		"data.token: removed (value hidden)",
		"metadata.annotations.kubectl.kubernetes.io/last-applied-configuration: changed (value hidden)",
		"stringData.key: added (value hidden)",
		"type: Opaque → kubernetes.io/basic-auth",
	}, got)

	// A Secret that had no data, or loses it all: still key by key.
	empty := map[string]any{"apiVersion": "v1", "kind": "Secret"}
	full := map[string]any{"apiVersion": "v1", "kind": "Secret", "data": live.Object["data"]}
	require.Equal(t, []string{"data.password: removed (value hidden)", "data.token: removed (value hidden)"}, Diff(full, empty))
	require.Equal(t, []string{"data.password: added (value hidden)", "data.token: added (value hidden)"}, Diff(empty, full))

	// Other kinds show values, and a new map key by key.
	cm := Diff(map[string]any{"apiVersion": "v1", "kind": "ConfigMap"},
		map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "data": map[string]any{"greeting": "hello"}})
	require.Equal(t, []string{"data.greeting: (none) → hello"}, cm)
}

func TestSecretValues(t *testing.T) {
	s := obj(t, `apiVersion: v1
kind: Secret
metadata:
  name: db
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{"stringData":{"token":"gone-token-3333"}}'
data: {password: bmV3LXBhc3MtMjIyMg==}
stringData: {key: new-key-4444}
`)
	require.ElementsMatch(t, []string{"bmV3LXBhc3MtMjIyMg==", newPassword, newKey, goneToken}, SecretValues(s))
	require.Nil(t, SecretValues(obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: bmV3LXBhc3MtMjIyMg==}\n")))
	s.SetAnnotations(map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "not json " + oldPassword})
	require.Contains(t, SecretValues(s), "not json "+oldPassword, "an annotation kubectl did not write is hidden whole")
}

func TestMaskSecretData(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain JSON",
			`Secret "db" is invalid: {"apiVersion":"v1","data":{"password":"b2xkLXBhc3MtMTExMQ==","token":"Z29uZS10b2tlbi0zMzMz"},"kind":"Secret"}`,
			`Secret "db" is invalid: {"apiVersion":"v1","data":{[redacted]},"kind":"Secret"}`},
		{"stringData with braces and quotes in values",
			`apply: {"stringData": {"config": "{\"pw\": \"new-pass-2222\"}", "key": "new-key-4444"}, "type": "Opaque"}`,
			`apply: {"stringData": {[redacted]}, "type": "Opaque"}`},
		{"a quoted last-applied annotation",
			`annotation: "{\"data\":{\"password\":\"b2xkLXBhc3MtMTExMQ==\"},\"kind\":\"Secret\"}" rest`,
			`annotation: "{\"data\":{[redacted]},\"kind\":\"Secret\"}" rest`},
		{"twice quoted",
			`"{\"msg\":\"{\\\"data\\\":{\\\"token\\\":\\\"gone-token-3333\\\"}}\"}"`,
			`"{\"msg\":\"{\\\"data\\\":{[redacted]}}\"}"`},
		{"cut short: masked to the end of its string",
			`"{\"data\":{\"password\":\"new-pass-2222` + `" and after`,
			`"{\"data\":{[redacted]" and after`},
		{"cut short: masked to the end", `{"data":{"password":"new-pass-2222`, `{"data":{[redacted]`},
		{"other keys untouched", `{"metadata":{"name":"data"},"binaryData":{"a":"b"}}`, `{"metadata":{"name":"data"},"binaryData":{"a":"b"}}`},
		{"no JSON", "Deployment/ns/web: 1/2 available", "Deployment/ns/web: 1/2 available"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MaskSecretData(tt.in)
			require.Equal(t, tt.want, got)
			requireNoValues(t, got)
		})
	}
}

func TestClientHidesTheSecretsItHasSeen(t *testing.T) {
	var seen secretsSeen
	seen.learn(obj(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata: {password: b2xkLXBhc3MtMTExMQ==}\nstringData: {token: gone-token-3333}\n"))
	seen.learn(obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {greeting: new-pass-2222}\n"))
	require.Equal(t, "container app terminated: Error (exit 1) login with [redacted] ([redacted]) failed; new-pass-2222 is no secret",
		seen.hide("container app terminated: Error (exit 1) login with old-pass-1111 (Z29uZS10b2tlbi0zMzMz) failed; new-pass-2222 is no secret"))

	status := apierrors.NewInvalid(schema.GroupKind{Kind: "Secret"}, "db", nil)
	status.ErrStatus.Message = "denied: password old-pass-1111 is weak"
	apiErr := &APIError{Op: "apply", Object: "Secret/ns/db", Host: "https://h", Err: status}
	err := seen.hideErr(apiErr)
	require.Equal(t, "apply Secret/ns/db: denied: password [redacted] is weak", err.Error())
	var ae *APIError
	require.True(t, errors.As(err, &ae), "callers still see the APIError")
	require.True(t, apierrors.IsInvalid(err))
	require.Same(t, err, seen.hideErr(err), "hidden once")
	plain := errors.New("nothing secret")
	require.Same(t, plain, seen.hideErr(plain))
	require.NoError(t, seen.hideErr(nil))
	require.False(t, strings.Contains(seen.hide("b2xkLXBhc3MtMTExMQ=="), "b2xk"))
}
