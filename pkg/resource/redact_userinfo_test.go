package resource

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRedactURLsInText: the user:password of a URL is replaced also when
// the password holds characters that keep the URL from parsing, and text
// around URLs without credentials is left as it is.
func TestRedactURLsInText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"clone https://ci:hunter2@example.com/x.git failed", "clone https://[redacted]@example.com/x.git failed"},
		{`"https://user:p/ss#w rd@host/x.git" is not a git URL`, `"https://[redacted]@host/x.git" is not a git URL`},
		{"https://ci:Zq8/Lm#3 vB@tP9@127.0.0.1:80/app.git: refused", "https://[redacted]@127.0.0.1:80/app.git: refused"},
		{"ssh://deploy:a?b@host/x and http://u:v@[::1]:8080/y", "ssh://[redacted]@host/x and http://[redacted]@[::1]:8080/y"},
		{"https://:token@host/x", "https://[redacted]@host/x"},
		{"first https://a:b@h/x\nsecond mail me@example.com", "first https://[redacted]@h/x\nsecond mail me@example.com"},
		{"a password in the first word wins: https://ci:pw@host/x.git, ask admin@corp.example", "a password in the first word wins: https://[redacted]@host/x.git, ask admin@corp.example"},

		{"fetch http://127.0.0.1:45431/app.git: contact admin@corp.example", ""},
		{"ssh://git@127.0.0.1:2222/app.git: ssh authentication failed as \"git\"", ""},
		{"Get \"https://host:443\": mail ops@example.com", ""},
		{"https://host: connection refused, ask ops@example.com", ""},
		{"git@github.com:org/repo.git", ""},
		{"no url here: a:b@c", ""},
		{"https://host/x.git?user=a:b@c", ""},
	}
	for _, tt := range tests {
		want := tt.want
		if want == "" {
			want = tt.in
		}
		require.Equal(t, want, (*Redactor)(nil).String(tt.in), "%q", tt.in)
		require.Equal(t, want, (&Redactor{}).String(tt.in), "%q", tt.in)
	}
}

func TestRedactURLAndUserinfo(t *testing.T) {
	tests := []struct{ raw, redacted, user, password string }{
		{"https://user:p/ss#w rd@host/x.git", "https://[redacted]@host/x.git", "user", "p/ss#w rd"},
		{"http://ci:Qm4%zz8r@127.0.0.1:80/app.git", "http://[redacted]@127.0.0.1:80/app.git", "ci", "Qm4%zz8r"},
		{"deploy:Rv5 q/8h@127.0.0.1:org/app.git", "[redacted]@127.0.0.1:org/app.git", "deploy", "Rv5 q/8h"},
		{"https://ci:p@ss@host/x.git", "https://[redacted]@host/x.git", "ci", "p@ss"},
		{"HTTPS://ci:x@host/x.git", "HTTPS://[redacted]@host/x.git", "ci", "x"},
		{"https://host:8443/x.git", "", "", ""},
		{"https://token@host/x.git", "", "", ""},
		{"git@github.com:org/x.git", "", "", ""},
		{"ssh://git@host:22/x.git", "", "", ""},
		{"/srv/git/x.git", "", "", ""},
		{"file:///srv/git/x.git", "", "", ""},
		{"", "", "", ""},
	}
	for _, tt := range tests {
		redacted := tt.redacted
		if redacted == "" {
			redacted = tt.raw
		}
		require.Equal(t, redacted, RedactURL(tt.raw), "%q", tt.raw)
		user, password := URLUserinfo(tt.raw)
		require.Equal(t, tt.user, user, "%q", tt.raw)
		require.Equal(t, tt.password, password, "%q", tt.raw)
	}
}
