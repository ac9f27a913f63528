package forge_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/pkg/forge"
)

func TestConfigResolve(t *testing.T) {
	tests := []struct {
		name string
		cfg  forge.Config
		want forge.Config // Token and RepoURL are copied from cfg
		err  []string     // each must appear in the error; nil: no error
	}{
		{
			name: "github over https",
			cfg:  forge.Config{RepoURL: "https://github.com/acme/config.git"},
			want: forge.Config{Type: "github", URL: "https://github.com", Owner: "acme", Repo: "config"},
		},
		{
			name: "github scp-like, no .git",
			cfg:  forge.Config{RepoURL: "git@github.com:acme/config"},
			want: forge.Config{Type: "github", URL: "https://github.com", Owner: "acme", Repo: "config"},
		},
		{
			name: "gitlab subgroups over ssh",
			cfg:  forge.Config{RepoURL: "ssh://git@gitlab.com/acme/platform/team/config.git"},
			want: forge.Config{Type: "gitlab", URL: "https://gitlab.com", Owner: "acme/platform/team", Repo: "config"},
		},
		{
			name: "gitlab subgroups scp-like",
			cfg:  forge.Config{RepoURL: "git@gitlab.com:acme/platform/config.git"},
			want: forge.Config{Type: "gitlab", URL: "https://gitlab.com", Owner: "acme/platform", Repo: "config"},
		},
		{
			name: "self-hosted gitlab with its type",
			cfg:  forge.Config{Type: "gitlab", RepoURL: "https://git.example.com/a/b/c.git"},
			want: forge.Config{Type: "gitlab", URL: "https://git.example.com", Owner: "a/b", Repo: "c"},
		},
		{
			name: "gitea on a port over http, trailing slash",
			cfg:  forge.Config{Type: "gitea", RepoURL: "http://127.0.0.1:3000/alice/config.git/"},
			want: forge.Config{Type: "gitea", URL: "http://127.0.0.1:3000", Owner: "alice", Repo: "config"},
		},
		{
			name: "gitea served under a path",
			cfg:  forge.Config{Type: "gitea", RepoURL: "https://example.com/git/alice/config.git"},
			want: forge.Config{Type: "gitea", URL: "https://example.com/git", Owner: "alice", Repo: "config"},
		},
		{
			name: "gitea over ssh on a port: the API is https on the host",
			cfg:  forge.Config{Type: "gitea", RepoURL: "ssh://git@gitea.example.com:2222/alice/config.git"},
			want: forge.Config{Type: "gitea", URL: "https://gitea.example.com", Owner: "alice", Repo: "config"},
		},
		{
			name: "credentials in the uri are not kept",
			cfg:  forge.Config{Type: "gitea", RepoURL: "https://bot:hunter2@gitea.example.com/alice/config.git"},
			want: forge.Config{Type: "gitea", URL: "https://gitea.example.com", Owner: "alice", Repo: "config"},
		},
		{
			name: "url, owner and repo set win",
			cfg:  forge.Config{Type: "gitea", URL: "https://api.example.com/", Owner: "o", Repo: "r", RepoURL: "https://git.example.com/alice/config.git"},
			want: forge.Config{Type: "gitea", URL: "https://api.example.com", Owner: "o", Repo: "r"},
		},
		{
			name: "owner and repo set need no uri",
			cfg:  forge.Config{Type: "github", URL: "https://ghe.example.com", Owner: "o", Repo: "r"},
			want: forge.Config{Type: "github", URL: "https://ghe.example.com", Owner: "o", Repo: "r"},
		},
		{
			name: "unknown host asks for the type",
			cfg:  forge.Config{RepoURL: "https://git.example.com/alice/config.git"},
			err:  []string{"source.forge.type is not set", "git.example.com", "gitea, github or gitlab"},
		},
		{
			name: "bad type",
			cfg:  forge.Config{Type: "bitbucket", RepoURL: "https://github.com/a/b.git"},
			err:  []string{`source.forge.type "bitbucket" is not one of gitea, github, gitlab`},
		},
		{
			name: "github path with more than owner/repo",
			cfg:  forge.Config{RepoURL: "https://github.com/a/b/c.git"},
			err:  []string{`"a/b/c" is not owner/repository`},
		},
		{
			name: "no owner",
			cfg:  forge.Config{Type: "gitea", RepoURL: "https://gitea.example.com/config.git"},
			err:  []string{"names no owner/repository"},
		},
		{
			name: "file uri",
			cfg:  forge.Config{Type: "gitea", RepoURL: "file:///srv/config.git"},
			err:  []string{"not file"},
		},
		{
			name: "every problem at once, no password shown",
			cfg:  forge.Config{Type: "svn", URL: "ftp://u:secretpw@x", RepoURL: "https://u:secretpw@gitea.example.com/config.git"},
			err:  []string{`"svn"`, "source.forge.url", "source.forge.token is not set", "names no owner/repository"},
		},
		{
			name: "owner without repo",
			cfg:  forge.Config{Type: "gitea", URL: "https://x", Owner: "o"},
			err:  []string{"one without the other"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cfg.Token == "" && !strings.Contains(tt.name, "every problem") {
				tt.cfg.Token = "t0ken"
			}
			got, err := tt.cfg.Resolve()
			if tt.err != nil {
				require.Error(t, err)
				for _, s := range tt.err {
					require.Contains(t, err.Error(), s)
				}
				require.NotContains(t, err.Error(), "secretpw")
				require.NotContains(t, err.Error(), "t0ken")
				return
			}
			require.NoError(t, err)
			tt.want.Token, tt.want.RepoURL = tt.cfg.Token, tt.cfg.RepoURL
			require.Equal(t, tt.want, got)
		})
	}
}

func TestNewNeedsAToken(t *testing.T) {
	_, err := forge.New(forge.Config{Type: "gitea", RepoURL: "https://gitea.example.com/a/b.git"}, nil)
	require.ErrorContains(t, err, "source.forge.token is not set")
}
