package resource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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

// Duration is a time.Duration written as "90s", "5m" or a number of
// seconds; either way it is greater than zero and at most MaxDuration.
type Duration time.Duration

// MaxDuration bounds every duration a source or params give: longer than
// any step should wait, and far from where a number of seconds overflows.
const MaxDuration = 24 * time.Hour

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s String
	if err := s.UnmarshalJSON(b); err != nil {
		return fmt.Errorf("expected a duration such as \"90s\" or \"5m\"")
	}
	v, err := parseDuration(string(s))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	notDuration := fmt.Errorf("%q is not a duration such as \"90s\" or \"5m\"", s)
	var v time.Duration
	secs, err := strconv.ParseFloat(s, 64)
	switch {
	case math.IsNaN(secs):
		return 0, notDuration
	case err == nil || errors.Is(err, strconv.ErrRange):
		// Seconds, clamped first: a number past the bounds (1e300, Inf)
		// would overflow into any value.
		v = time.Duration(math.Max(-1, math.Min(secs, MaxDuration.Seconds()+1)) * float64(time.Second))
	default:
		if v, err = time.ParseDuration(s); err != nil {
			return 0, notDuration
		}
	}
	switch {
	case v <= 0:
		return 0, fmt.Errorf("%q must be greater than zero", s)
	case v > MaxDuration:
		return 0, fmt.Errorf("%q must be at most %gh", s, MaxDuration.Hours())
	}
	return v, nil
}

// Or returns d, or def when d is zero.
func (d Duration) Or(def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return time.Duration(d)
}
