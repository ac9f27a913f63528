package semver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/Masterminds/semver/v3"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitops-resource/gitops-resource/pkg/gitrepo"
	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

// Kind is the semver kind's verbs.
func Kind() resource.Kind { return resource.NewKind(Check, In, Out) }

// Check lists the versions from the requested one on, oldest first: the
// numbers the version file held (driver git) or the version tags (driver
// tags). Without a requested version it reports the current one; with no
// version yet, initial_version.
func Check(ctx context.Context, in resource.Input) ([]Version, error) {
	req, err := parseCheckRequest(in)
	if err != nil {
		return nil, err
	}
	src, cursor := req.Source, req.Version
	client, ctx, done, err := src.Open(ctx, in.Log)
	if err != nil {
		return nil, err
	}
	defer done()
	if src.Driver == driverGit {
		return checkFile(ctx, in, src, client, cursor)
	}
	all, err := src.store(client, in, "").versions(ctx)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		in.Logf("no version on %s yet: reporting initial_version %s", client.URL(), src.initial)
		return []Version{{src.initial.String()}}, nil
	}
	in.Logf("latest version on %s (branch %s): %s", client.URL(), src.Branch, all[len(all)-1])
	if cursor == nil {
		return []Version{{all[len(all)-1].String()}}, nil
	}
	out := []Version{}
	for _, v := range all {
		if !v.LessThan(cursor) {
			out = append(out, Version{v.String()})
		}
	}
	return out, nil
}

// checkFile is check for driver git. A check that finds the branch tip where
// the cache says the last check saw it reports the cached number after one
// round trip (the ref listing). Otherwise it fetches the tip (depth 1) and
// reads the file; when a version was requested that is not the current one,
// it fetches the branch's history to disk, historyDepth commits and deeper
// as needed, and walks it (fileHistory).
func checkFile(ctx context.Context, in resource.Input, src *Source, client *gitrepo.Client, cursor *semver.Version) ([]Version, error) {
	f := &fileStore{src: src, client: client, env: in.Env}
	cache := newCheckCache(src, client.URL(), in.Logf)
	var known plumbing.Hash // the tip the cache answers for
	e, ok := cache.load()
	if ok && (cursor == nil || cursor.String() == e.reported(src.initial)) {
		known = plumbing.NewHash(e.Tip)
	}
	snap, err := client.SnapshotIfMoved(ctx, src.Branch, 1, known)
	if err != nil {
		return nil, err
	}
	if snap == nil {
		in.Logf("branch %s of %s is still at %s: version %s (nothing fetched)", src.Branch, client.URL(), short(e.Tip), e.reported(src.initial))
		return []Version{{e.reported(src.initial)}}, nil
	}
	current, err := f.currentOf(snap, cache)
	switch {
	case err != nil:
		return nil, err
	case current == nil:
		in.Logf("no version on %s (branch %s) yet: reporting initial_version %s", client.URL(), src.Branch, src.initial)
		return []Version{{src.initial.String()}}, nil
	}
	in.Logf("latest version on %s (branch %s): %s", client.URL(), src.Branch, current)
	if cursor == nil || cursor.String() == current.String() {
		return []Version{{current.String()}}, nil
	}
	hist, err := client.History(ctx, src.Branch, historyDepth)
	if err != nil {
		return nil, err
	}
	defer hist.Close()
	history, err := fileHistory(ctx, hist, src.File, cursor)
	if err != nil {
		return nil, fmt.Errorf("walk the history of %s on branch %s of %s: %w", src.File, src.Branch, client.URL(), err)
	}
	if history == nil {
		in.Logf("%s never held %s on the first-parent line of branch %s: reporting the current version %s", src.File, cursor, src.Branch, current)
		return []Version{{current.String()}}, nil
	}
	in.Logf("%s held %d version(s) from %s on, on branch %s", src.File, len(history), cursor, src.Branch)
	out := make([]Version, len(history))
	for i, v := range history {
		out[i] = Version{v.String()}
	}
	return out, nil
}

// In writes the requested number to the files "number" and "version". With
// bump params it writes the bumped number instead (the version stays the
// requested one), as semver-resource does.
func In(ctx context.Context, in resource.Input) (resource.Response, error) {
	req, err := parseInRequest(in)
	if err != nil {
		return resource.Response{}, err
	}
	params, v := req.Params, req.Version
	written := params.bump("").Apply(v)
	for _, name := range []string{"number", "version"} {
		if err := os.WriteFile(filepath.Join(in.Dir, name), []byte(written.String()), 0o644); err != nil {
			return resource.Response{}, fmt.Errorf("write %s: %w", name, err)
		}
	}
	meta := resource.Metadata{}
	meta.Add("number", v.String())
	return resource.Response{Version: Version{v.String()}, Metadata: meta}, nil
}

// Out bumps the version (re-applying the bump on the newest state after a
// lost race), sets it from a file, or with get_latest reports it unchanged.
func Out(ctx context.Context, in resource.Input) (resource.Response, error) {
	req, err := parseOutRequest(in)
	if err != nil {
		return resource.Response{}, err
	}
	src, params := req.Source, req.Params
	var fixed *semver.Version
	if params.File != "" {
		text, err := in.ReadParamFile("params.file", params.File)
		if err != nil {
			return resource.Response{}, err
		}
		if fixed, err = parseFileNumber(text); err != nil {
			return resource.Response{}, resource.ConfigErrorf("params.file %s: %v", params.File, err)
		}
		if err := gitrepo.ValidTag(*src.TagPrefix + fixed.String()); src.Driver == driverTags && err != nil {
			return resource.Response{}, resource.ConfigErrorf("params.file %s: %v", params.File, err) // 1.0.0-rc.lock
		}
	}
	var refCommit string
	if params.RefFile != "" {
		if refCommit, err = in.ReadParamFile("params.ref_file", params.RefFile); err != nil {
			return resource.Response{}, err
		}
	}
	client, ctx, done, err := src.Open(ctx, in.Log)
	if err != nil {
		return resource.Response{}, err
	}
	defer done()
	st := src.store(client, in, refCommit)
	if params.GetLatest {
		return latest(ctx, src, st)
	}
	res, err := st.write(ctx, func(current *semver.Version, messages []string) *semver.Version {
		if fixed != nil {
			return fixed
		}
		if current == nil {
			current = src.initial
		}
		level := ""
		if params.Bump == "auto" {
			level = conventionalLevel(messages)
			in.Logf("bump auto: %d commit(s) since the last version → %s", len(messages), level)
		}
		return params.bump(level).Apply(current)
	}, params.Bump == "auto")
	if err != nil {
		return resource.Response{}, err
	}
	prev := "none"
	if res.previous != nil {
		prev = res.previous.String()
	}
	if res.pushed {
		in.Logf("%s → %s, pushed %s to %s", prev, res.number, short(res.commit), client.URL())
	} else {
		in.Logf("%s is already the version on %s: nothing pushed", res.number, client.URL())
	}
	meta := resource.Metadata{}
	meta.Add("number", res.number.String())
	if res.previous != nil {
		meta.Add("previous_number", res.previous.String())
	}
	meta.Add("commit", res.commit)
	if res.signedWith != "" {
		meta.Add("signing_key_fingerprint", res.signedWith)
	}
	meta.AddBuild(in.Env)
	return resource.Response{Version: Version{res.number.String()}, Metadata: meta}, nil
}

func latest(ctx context.Context, src *Source, st store) (resource.Response, error) {
	all, err := st.versions(ctx)
	if err != nil {
		return resource.Response{}, err
	}
	v := src.initial
	if len(all) > 0 {
		v = all[len(all)-1]
	}
	meta := resource.Metadata{}
	meta.Add("number", v.String())
	return resource.Response{Version: Version{v.String()}, Metadata: meta}, nil
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
