package resource

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDurationBounds: numbers of seconds and duration strings get the same
// checks: finite, greater than zero, at most MaxDuration.
func TestDurationBounds(t *testing.T) {
	tests := []struct {
		json string
		want time.Duration
		err  string
	}{
		{`"90s"`, 90 * time.Second, ""},
		{`"5m"`, 5 * time.Minute, ""},
		{`"24h"`, 24 * time.Hour, ""},
		{`90`, 90 * time.Second, ""},
		{`"90"`, 90 * time.Second, ""},
		{`0.5`, 500 * time.Millisecond, ""},
		{`86400`, 24 * time.Hour, ""},

		{`0`, 0, `"0" must be greater than zero`},
		{`"0s"`, 0, `"0s" must be greater than zero`},
		{`-5`, 0, `"-5" must be greater than zero`},
		{`"-5s"`, 0, `"-5s" must be greater than zero`},
		{`-1e300`, 0, `"-1e300" must be greater than zero`},
		{`1e-12`, 0, `"1e-12" must be greater than zero`},
		{`"-Inf"`, 0, `"-Inf" must be greater than zero`},
		{`86401`, 0, `"86401" must be at most 24h`},
		{`"24h1s"`, 0, `"24h1s" must be at most 24h`},
		{`1e300`, 0, `"1e300" must be at most 24h`},
		{`1e400`, 0, `"1e400" must be at most 24h`},
		{`"+Inf"`, 0, `"+Inf" must be at most 24h`},
		{`"2562047h"`, 0, `"2562047h" must be at most 24h`},
		{`"NaN"`, 0, `"NaN" is not a duration`},
		{`"soon"`, 0, `"soon" is not a duration`},
		{`true`, 0, `expected a duration`},
	}
	for _, tt := range tests {
		t.Run(tt.json, func(t *testing.T) {
			var d Duration
			err := json.Unmarshal([]byte(tt.json), &d)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, time.Duration(d))
		})
	}
}
