package resource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// Request is what Concourse writes on stdin for every verb. Source, Version
// and Params stay raw here: each kind decodes them strictly into its own types.
type Request struct {
	Source  json.RawMessage `json:"source"`
	Version json.RawMessage `json:"version"`
	Params  json.RawMessage `json:"params"`
}

// ParseRequest decodes the stdin envelope.
func ParseRequest(data []byte) (Request, error) {
	var req Request
	if len(bytes.TrimSpace(data)) == 0 {
		return req, ConfigErrorf("the request on stdin is empty: Concourse sends {\"source\": {...}}")
	}
	if err := DecodeStrict(data, &req, "request"); err != nil {
		return req, err
	}
	return req, nil
}

// Kind reads source.kind without decoding the rest of the source. A
// source without kind whose driver is "git" is a semver-resource source,
// which kind semver takes as it is: it is kind "semver". Another
// semver-resource driver (s3, gcs, swift) is named as unsupported.
func (r Request) Kind() (string, error) {
	var probe struct {
		Kind   json.RawMessage `json:"kind"`
		Driver json.RawMessage `json:"driver"`
	}
	if isNull(r.Source) {
		return "", ConfigErrorf("source is missing: it needs at least \"kind\"")
	}
	if err := json.Unmarshal(r.Source, &probe); err != nil {
		return "", ConfigErrorf("source must be a JSON object: %s", describeJSONError(err, "source"))
	}
	if isNull(probe.Kind) {
		var driver string
		if isNull(probe.Driver) || json.Unmarshal(probe.Driver, &driver) != nil {
			return "", nil
		}
		switch driver {
		case "git":
			return "semver", nil
		case "s3", "gcs", "swift":
			return "", ConfigErrorf("source.driver %q of semver-resource is not supported: kind semver keeps the version in git (driver git, or tags)", driver)
		}
		return "", nil
	}
	var kind string
	if err := json.Unmarshal(probe.Kind, &kind); err != nil {
		return "", ConfigErrorf("source.kind must be a string")
	}
	return kind, nil
}

// DecodeParams decodes a request's params strictly (DecodeStrict) into a
// new T and has them validate themselves: how every kind reads the params
// of a verb that takes a typed set of them.
func DecodeParams[T any, PT interface {
	*T
	Validate() error
}](in Input) (*T, error) {
	p := PT(new(T))
	if err := DecodeStrict(in.Request.Params, p, "params"); err != nil {
		return nil, err
	}
	return p, p.Validate()
}

// DecodeStrict decodes raw into v, which must point to a struct. Every key
// that v does not declare is reported at once, each with the closest valid
// key, under the name section ("source", "params"). Each key is decoded on
// its own, so a bad value names its key. An absent or null raw decodes as an
// empty object.
func DecodeStrict(raw json.RawMessage, v any, section string) error {
	if isNull(raw) {
		raw = json.RawMessage("{}")
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return ConfigErrorf("%s must be a JSON object: %s", section, describeJSONError(err, section))
	}
	target := reflect.ValueOf(v).Elem()
	fields := jsonFields(target.Type())
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	var errs []error
	for _, k := range names {
		index, ok := fields[k]
		if !ok {
			msg := fmt.Sprintf("%s: unknown key %q", section, k)
			if s := closest(k, fields); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			errs = append(errs, configError{msg})
			continue
		}
		field := target.FieldByIndex(index)
		if isNull(keys[k]) {
			continue
		}
		if err := decodeValue(keys[k], field.Addr().Interface(), section+"."+k); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// decodeValue decodes one value, strictly when it is an object.
func decodeValue(raw json.RawMessage, ptr any, name string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(ptr); err != nil {
		if IsConfigError(err) {
			return err
		}
		return ConfigErrorf("%s", describeJSONError(err, name))
	}
	return nil
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}

// describeJSONError turns encoding/json's errors into a sentence that names
// the field, never echoing the offending value (it may be a secret).
func describeJSONError(err error, section string) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := section
		if typeErr.Field != "" {
			field += "." + typeErr.Field
		}
		return fmt.Sprintf("%s: expected %s, got a JSON %s", field, describeType(typeErr.Type), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("%s is not valid JSON (at byte %d)", section, syntaxErr.Offset)
	}
	return section + ": " + strings.TrimPrefix(err.Error(), "json: ")
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

// jsonFields maps the JSON keys a struct type accepts to their field index,
// following embedded structs the way encoding/json does.
func jsonFields(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, idx := range jsonFields(f.Type) {
				out[k] = append([]int{i}, idx...)
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = []int{i}
	}
	return out
}

// closest returns the known key nearest to k by edit distance, if it is
// near enough to be a plausible typo.
func closest(k string, known map[string][]int) string {
	names := make([]string, 0, len(known))
	for n := range known {
		names = append(names, n)
	}
	k = strings.ToLower(k)
	if near := Nearest(k, names, 1); len(near) == 1 && editDistance(k, near[0]) < len(k)/2+2 {
		return near[0]
	}
	return ""
}

// Nearest returns the n candidates nearest to word by edit distance,
// nearest first (ties in name order), for "did you mean" messages.
func Nearest(word string, candidates []string, n int) []string {
	type scored struct {
		name string
		dist int
	}
	all := make([]scored, len(candidates))
	for i, c := range candidates {
		all[i] = scored{c, editDistance(word, c)}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].dist != all[j].dist {
			return all[i].dist < all[j].dist
		}
		return all[i].name < all[j].name
	})
	out := make([]string, 0, min(n, len(all)))
	for _, s := range all[:min(n, len(all))] {
		out = append(out, s.name)
	}
	return out
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
