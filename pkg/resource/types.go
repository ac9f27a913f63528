package resource

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// String is a string that also accepts a JSON number, for values pipeline
// authors write unquoted in YAML (tag: 1.10, initial_version: 1).
type String string

// UnmarshalJSON implements json.Unmarshaler.
func (s *String) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = String(v)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("expected a string or a number")
	}
	*s = String(n.String())
	return nil
}

// Duration is a time.Duration written as "90s", "5m" or a number of seconds.
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s String
	if err := s.UnmarshalJSON(b); err != nil {
		return fmt.Errorf("expected a duration such as \"90s\" or \"5m\"")
	}
	if secs, err := strconv.ParseFloat(string(s), 64); err == nil {
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(string(s))
	if err != nil || v < 0 {
		return fmt.Errorf("%q is not a duration such as \"90s\" or \"5m\"", string(s))
	}
	*d = Duration(v)
	return nil
}

// Or returns d, or def when d is zero.
func (d Duration) Or(def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return time.Duration(d)
}
