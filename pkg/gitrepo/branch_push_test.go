package gitrepo_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	"github.com/gitops-resource/gitops-resource/pkg/gitrepo"
)

func TestUpdateBranchFromReplacesTheBranchOnBasesTip(t *testing.T) {
	t.Parallel()
	srv := gittest.New(t)
	srv.CreateRepo(t, "r")
	seed := srv.Commit(t, "r", "main", map[string]string{"a": "1", "b": "1"}, "seed")
	var log bytes.Buffer
	c, err := gitrepo.New(srv.HTTPURL("r"), gitrepo.Auth{}, gitrepo.WithBackoff(fast), gitrepo.WithLog(&log))
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()

	// A new branch, made on main's tip; main is never pushed.
	res, err := c.UpdateBranchFrom(ctx, "main", "pr", 1, writeFile("a", "2"))
	require.NoError(t, err, log.String())
	require.True(t, res.Changed)
	require.True(t, res.Pushed)
	require.Equal(t, seed, res.Base.String())
	require.Equal(t, res.Commit.String(), srv.Tip(t, "r", "pr"))
	require.Equal(t, seed, srv.Tip(t, "r", "main"))
	require.Contains(t, res.Message, "set a")
	first := res.Commit.String()

	// The same change again: kept as it is.
	res, err = c.UpdateBranchFrom(ctx, "main", "pr", 1, writeFile("a", "2"))
	require.NoError(t, err)
	require.True(t, res.Kept)
	require.False(t, res.Pushed)
	require.Equal(t, first, res.Commit.String())

	// main moves on: the branch is rebuilt on its new tip (a force push),
	// not stacked on its old commit.
	tip := srv.Commit(t, "r", "main", map[string]string{"b": "2"}, "someone else")
	res, err = c.UpdateBranchFrom(ctx, "main", "pr", 1, writeFile("a", "3"))
	require.NoError(t, err)
	require.True(t, res.Pushed)
	require.Equal(t, tip, res.Base.String())
	require.Equal(t, res.Commit.String(), srv.Tip(t, "r", "pr"))
	log2 := srv.Log(t, "r", "pr")
	require.Len(t, log2, 3, "seed, someone else, ours: the old commit is gone")
	got, _ := srv.ReadFile(t, "r", "pr", "b")
	require.Equal(t, "2", got)
	got, _ = srv.ReadFile(t, "r", "pr", "a")
	require.Equal(t, "3", got)
	require.Equal(t, tip, srv.Tip(t, "r", "main"))

	// No change against main: nothing pushed, the branch stays.
	prTip := srv.Tip(t, "r", "pr")
	res, err = c.UpdateBranchFrom(ctx, "main", "pr", 1, writeFile("a", "1"))
	require.NoError(t, err)
	require.False(t, res.Changed)
	require.False(t, res.Pushed)
	require.Equal(t, tip, res.Commit.String())
	require.Equal(t, prTip, srv.Tip(t, "r", "pr"))

	_, err = c.UpdateBranchFrom(ctx, "main", "main", 1, writeFile("a", "9"))
	require.ErrorContains(t, err, "the branch and its base must differ")
}
