package resource

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzParseRequest: any bytes on stdin give a request or a config error,
// never a panic, and an error never echoes a value from the input.
func FuzzParseRequest(f *testing.F) {
	for _, seed := range []string{
		`{"source":{"kind":"semver","uri":"https://h/r.git","password":"hunter22"},"params":{"bump":"minor"}}`,
		`{"source":{"kind":"manifest"},"version":{"ref":"abc"}}`,
		`{"source":null}`, `{}`, `[]`, `"x"`, `{"source":{"kind":7}}`, `{"sourc":{}}`,
		`{"source":{"kind":"semver","depth":"deep-secret-value"}}`,
		"{\"source\":{\"kind\":\"\xff\"}}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ParseRequest(data)
		if err != nil {
			if !IsConfigError(err) {
				t.Fatalf("not a config error: %v", err)
			}
			return
		}
		if _, err := req.Kind(); err != nil && !IsConfigError(err) {
			t.Fatalf("kind: not a config error: %v", err)
		}
		var s testSource
		err = DecodeStrict(req.Source, &s, "source")
		if err == nil {
			return
		}
		var values map[string]any
		if json.Unmarshal(req.Source, &values) == nil {
			for _, v := range values {
				if str, ok := v.(string); ok && len(str) >= 8 && strings.Contains(err.Error(), str) {
					t.Fatalf("error echoes the value %q: %v", str, err)
				}
			}
		}
	})
}
