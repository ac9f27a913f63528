package gitrepo_test

import (
	"bytes"
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	"github.com/gitops-resource/gitops-resource/pkg/gitrepo"
	"github.com/gitops-resource/gitops-resource/pkg/retry"
)

var fast = retry.Backoff{Attempts: 6, Base: 10 * time.Millisecond, Max: 100 * time.Millisecond}

func writeFile(name, content string) gitrepo.EditFunc {
	return func(s *gitrepo.Snapshot) error {
		s.WriteFile(name, []byte(content))
		_, err := s.Commit("set "+name, gitrepo.DefaultAuthor)
		return err
	}
}

// faultOn breaks the first n requests of one git service (and method).
func faultOn(service, method string, n int, f gittest.Fault) func(*http.Request) gittest.Fault {
	var seen atomic.Int64
	return func(r *http.Request) gittest.Fault {
		if gittest.Service(r) == service && r.Method == method && seen.Add(1) <= int64(n) {
			return f
		}
		return gittest.Fault{}
	}
}

func TestUpdateSurvivesServerFaults(t *testing.T) {
	tests := []struct {
		name  string
		fault func(*http.Request) gittest.Fault
	}{
		{"500 on the ref advertisement", faultOn("git-upload-pack", http.MethodGet, 2, gittest.Fault{Status: 500})},
		{"connection closed mid-fetch", faultOn("git-upload-pack", http.MethodPost, 1, gittest.Fault{TruncateAfter: 20})},
		{"hang-up on fetch", faultOn("git-upload-pack", http.MethodPost, 1, gittest.Fault{Hangup: true})},
		{"500 on push", faultOn("git-receive-pack", http.MethodPost, 1, gittest.Fault{Status: 500})},
		{"connection closed mid-push", faultOn("git-receive-pack", http.MethodPost, 1, gittest.Fault{Hangup: true})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var log bytes.Buffer
			srv := gittest.New(t, gittest.WithHTTPFault(tt.fault))
			srv.CreateRepo(t, "r")
			srv.Commit(t, "r", "main", map[string]string{"a": "1"}, "seed")
			c, err := gitrepo.New(srv.HTTPURL("r"), gitrepo.Auth{}, gitrepo.WithBackoff(fast), gitrepo.WithLog(&log))
			require.NoError(t, err)
			defer c.Close()
			res, err := c.Update(context.Background(), "main", 1, writeFile("a", "2"))
			require.NoError(t, err, log.String())
			require.True(t, res.Pushed)
			require.Equal(t, res.Commit.String(), srv.Tip(t, "r", "main"), "the write landed and was verified")
			got, _ := srv.ReadFile(t, "r", "main", "a")
			require.Equal(t, "2", got)
			require.Len(t, srv.Log(t, "r", "main"), 2, "exactly one new commit")
			require.Contains(t, log.String(), "retrying", "the retry is logged")
		})
	}
}

func TestPushDeclinedByHookFailsWithoutChange(t *testing.T) {
	t.Parallel()
	srv := gittest.New(t)
	srv.CreateRepo(t, "r")
	tip := srv.Commit(t, "r", "main", map[string]string{"a": "1"}, "seed")
	srv.InstallHook(t, "r", "pre-receive", "#!/bin/sh\necho 'branch main is protected' >&2\nexit 1\n")
	var log bytes.Buffer
	c, err := gitrepo.New(srv.HTTPURL("r"), gitrepo.Auth{}, gitrepo.WithBackoff(fast), gitrepo.WithLog(&log))
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Update(context.Background(), "main", 1, writeFile("a", "2"))
	require.ErrorContains(t, err, "declined")
	require.NotContains(t, log.String(), "retrying", "a declined push is final")
	require.ErrorContains(t, err, srv.HTTPAddr())
	require.Equal(t, tip, srv.Tip(t, "r", "main"))
}

func TestUpdateGivesUpAfterBoundedRetries(t *testing.T) {
	t.Parallel()
	srv := gittest.New(t, gittest.WithHTTPFault(func(*http.Request) gittest.Fault { return gittest.Fault{Status: 503} }))
	srv.CreateRepo(t, "r")
	c, err := gitrepo.New(srv.HTTPURL("r"), gitrepo.Auth{}, gitrepo.WithBackoff(fast))
	require.NoError(t, err)
	defer c.Close()
	start := time.Now()
	_, err = c.Update(context.Background(), "main", 1, writeFile("a", "2"))
	require.ErrorContains(t, err, "gave up after 6 attempts")
	require.ErrorContains(t, err, srv.HTTPAddr())
	require.Less(t, time.Since(start), 30*time.Second)
}

func TestNoChangeMeansNoPush(t *testing.T) {
	t.Parallel()
	srv := gittest.New(t)
	srv.CreateRepo(t, "r")
	tip := srv.Commit(t, "r", "main", map[string]string{"dir/a": "1"}, "seed")
	c, err := gitrepo.New(srv.HTTPURL("r"), gitrepo.Auth{})
	require.NoError(t, err)
	defer c.Close()
	res, err := c.Update(context.Background(), "main", 1, writeFile("dir/a", "1"))
	require.NoError(t, err)
	require.False(t, res.Pushed)
	require.Equal(t, tip, res.Commit.String())
}

func TestNestedTreeEditKeepsOtherFiles(t *testing.T) {
	t.Parallel()
	srv := gittest.New(t)
	srv.CreateRepo(t, "r")
	srv.Commit(t, "r", "main", map[string]string{"a/b/c.yaml": "c", "a/d.yaml": "d", "e": "e"}, "seed")
	c, err := gitrepo.New(srv.HTTPURL("r"), gitrepo.Auth{})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Update(context.Background(), "main", 1, writeFile("a/b/new.yaml", "n"))
	require.NoError(t, err)
	for path, want := range map[string]string{"a/b/c.yaml": "c", "a/d.yaml": "d", "e": "e", "a/b/new.yaml": "n"} {
		got, ok := srv.ReadFile(t, "r", "main", path)
		require.True(t, ok, path)
		require.Equal(t, want, got)
	}
	srv.Git(t, "r", "fsck", "--strict")
}

func TestHeldThenHungUpFetchIsRetried(t *testing.T) {
	t.Parallel()
	var log bytes.Buffer
	// The first ref advertisement is held, then the connection dropped.
	srv := gittest.New(t, gittest.WithHTTPFault(faultOn("git-upload-pack", http.MethodGet, 1, gittest.Fault{Delay: 3 * time.Second, Hangup: true})))
	srv.CreateRepo(t, "r")
	srv.Commit(t, "r", "main", map[string]string{"a": "1"}, "seed")
	c, err := gitrepo.New(srv.HTTPURL("r"), gitrepo.Auth{}, gitrepo.WithBackoff(fast), gitrepo.WithLog(&log))
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = c.Snapshot(ctx, "main", 1)
	require.NoError(t, err, log.String())
}
