package kube

import (
	"encoding/base64"
	"encoding/json"
	"regexp"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

// A Secret's values never reach the build log, which the whole team reads.
// Three layers keep them out:
//   - Diff names the keys of a Secret's data and stringData that change,
//     and kubectl's last-applied-configuration annotation (a copy of the
//     data), never their values;
//   - the client learns the values of every Secret it applies or reads, and
//     hides them in what it reports: API errors (an admission policy may
//     quote them), warnings, and the conditions, pods and events of a
//     failure report (an app may print them as it dies);
//   - MaskSecretData hides data maps quoted as JSON in text whose values
//     nobody knows, such as an agent's status messages.

var gkSecret = schema.GroupKind{Kind: "Secret"}

// IsSecret reports whether obj is a core Secret.
func IsSecret(obj *unstructured.Unstructured) bool { return groupKind(obj) == gkSecret }

// isSecretMap is IsSecret for a decoded object.
func isSecretMap(obj any) bool {
	m, ok := obj.(map[string]any)
	return ok && m["apiVersion"] == "v1" && m["kind"] == "Secret"
}

// secretPaths are the fields of a Secret that hold its values.
var secretPaths = map[string]bool{
	"data": true, "stringData": true,
	"metadata.annotations." + corev1.LastAppliedConfigAnnotation: true,
}

// SecretValues returns the values obj holds if it is a Secret: each entry
// of data (decoded, and as written), of stringData, and of the copy of both
// in its kubectl last-applied-configuration annotation. It returns nil for
// any other object.
func SecretValues(obj *unstructured.Unstructured) []string {
	if !IsSecret(obj) {
		return nil
	}
	values := secretFieldValues(obj.Object)
	if last := obj.GetAnnotations()[corev1.LastAppliedConfigAnnotation]; last != "" {
		var copied map[string]any
		if err := json.Unmarshal([]byte(last), &copied); err != nil {
			return append(values, last) // not kubectl's: hide it whole
		}
		values = append(values, secretFieldValues(copied)...)
	}
	return values
}

func secretFieldValues(obj map[string]any) []string {
	var out []string
	data, _ := obj["data"].(map[string]any)
	for _, v := range data {
		s, _ := v.(string)
		out = append(out, s)
		if plain, err := base64.StdEncoding.DecodeString(s); err == nil {
			out = append(out, string(plain))
		}
	}
	stringData, _ := obj["stringData"].(map[string]any)
	for _, v := range stringData {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

// secretsSeen holds the values of the Secrets a client applied or read.
type secretsSeen struct {
	resource.Redactor
	mu   sync.Mutex
	read map[string]bool // Secrets whose live values were read
}

// firstRead reports whether ref's live values are yet to be read, and
// from now on counts them as read.
func (s *secretsSeen) firstRead(ref string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.read[ref] {
		return false
	}
	if s.read == nil {
		s.read = map[string]bool{}
	}
	s.read[ref] = true
	return true
}

// learn registers obj's values if it is a Secret.
func (s *secretsSeen) learn(obj *unstructured.Unstructured) {
	if obj != nil {
		s.Add(SecretValues(obj)...)
	}
}

// hide replaces every value learnt, plain or base64, and any data map
// quoted as JSON, in text the client reports.
func (s *secretsSeen) hide(text string) string {
	return MaskSecretData(s.String(text))
}

// maskedError is an error whose message had Secret values hidden; errors.As
// and errors.Is still see the error underneath.
type maskedError struct {
	err error
	msg string
}

func (e *maskedError) Error() string { return e.msg }
func (e *maskedError) Unwrap() error { return e.err }

// hideErr is hide for an error.
func (s *secretsSeen) hideErr(err error) error {
	if err == nil {
		return nil
	}
	if msg := s.hide(err.Error()); msg != err.Error() {
		return &maskedError{err: err, msg: msg}
	}
	return err
}

// hidingWarnings passes the server's warnings on with Secret values hidden.
type hidingWarnings struct {
	secrets *secretsSeen
	next    rest.WarningHandler
}

func (w hidingWarnings) HandleWarningHeader(code int, agent, text string) {
	w.next.HandleWarningHeader(code, agent, w.secrets.hide(text))
}

// secretDataKey finds a Secret's data or stringData map quoted as JSON in
// text: plain ("data":{), or inside JSON strings (\"data\":{ in a quoted
// last-applied annotation), the backslashes before both quotes alike.
var secretDataKey = regexp.MustCompile(`(\\*)"(?:data|stringData)(\\*)"\s*:\s*\{`)

// MaskSecretData replaces the contents of every data and stringData map
// quoted as JSON in text (a message that echoes a Secret, or kubectl's
// last-applied annotation of one) with [redacted]. The map ends at its
// closing brace, found outside JSON strings; a map that does not end is
// masked to the end of the text or of the string that quotes it.
func MaskSecretData(text string) string {
	var out []byte
	last := 0
	for _, m := range secretDataKey.FindAllStringSubmatchIndex(text, -1) {
		if m[0] < last || m[3]-m[2] != m[5]-m[4] {
			continue
		}
		level, ok := quoteLevel(m[3] - m[2])
		if !ok {
			continue
		}
		end := mapEnd(text, m[1], level)
		out = append(out, text[last:m[1]]...)
		out = append(out, resource.Redacted...)
		last = end
	}
	if out == nil {
		return text
	}
	return string(append(out, text[last:]...))
}

// quoteLevel is how deeply JSON text is nested in JSON strings when its
// quotes are preceded by run backslashes: 0 for ", 1 for \", 2 for \\\".
func quoteLevel(run int) (int, bool) {
	for level := 0; level < 4; level++ {
		if quoteRole(run, level) == delimiter {
			return level, true
		}
	}
	return 0, false
}

type role int

const (
	delimiter role = iota // opens or closes a string of the text
	escaped               // a quote character inside such a string
	outer                 // closes a string that quotes the text
)

// quoteRole says what a quote preceded by run backslashes is, in JSON text
// nested level times in JSON strings.
func quoteRole(run, level int) role {
	for ; level > 0; level-- {
		if run%2 == 0 {
			return outer
		}
		run = (run - 1) / 2
	}
	if run%2 == 0 {
		return delimiter
	}
	return escaped
}

// mapEnd returns the index of the brace that closes the map whose body
// starts at i, or where the text quoting it ends.
func mapEnd(text string, i, level int) int {
	depth, inString := 1, false
	for ; i < len(text); i++ {
		switch text[i] {
		case '"':
			run := 0
			for run < i && text[i-1-run] == '\\' {
				run++
			}
			switch quoteRole(run, level) {
			case outer:
				return i - run
			case delimiter:
				inString = !inString
			}
		case '{':
			if !inString {
				depth++
			}
		case '}':
			if !inString {
				if depth--; depth == 0 {
					return i
				}
			}
		}
	}
	return len(text)
}
