package manifest

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/gitops-resource/gitops-resource/pkg/forge"
	"github.com/gitops-resource/gitops-resource/pkg/gitrepo"
	"github.com/gitops-resource/gitops-resource/pkg/imageref"
	"github.com/gitops-resource/gitops-resource/pkg/resource"
	"github.com/gitops-resource/gitops-resource/pkg/retry"
)

// ForgeSource is source.forge: the forge that holds the repository, for
// put's pull_request. check and get never use it (they follow the base
// branch); its token may also be the git password (gitPassword).
type ForgeSource struct {
	// Type is gitea (Gitea and Forgejo), github or gitlab; empty for
	// github.com and gitlab.com, recognised from source.uri.
	Type string `json:"type"`
	// URL is the forge's base URL; default source.uri's scheme and host.
	URL string `json:"url"`
	// Token authenticates the forge's API.
	Token string `json:"token"`
}

// PullRequestParams are put's pull_request: the change goes to a branch of
// ours made from base's tip, and a pull request from it into base.
type PullRequestParams struct {
	// Title has the placeholders of commit_message; default the commit's
	// subject (commit_message expanded).
	Title string `json:"title"`
	// Body is written above the table of changes, the build link and the
	// commit's trailers; it has the placeholders of commit_message.
	Body   string   `json:"body"`
	Labels []string `json:"labels"`
	// Base is the branch the pull request merges into; default
	// source.branch.
	Base string `json:"base"`
	// Branch is the pull request's head branch, replaced on each put;
	// default prBranchName.
	Branch string `json:"branch"`
	// Merge is none, auto (the forge's auto-merge) or now (the put merges
	// once the checks pass); default none.
	Merge string `json:"merge"`
	// Wait is none, opened or merged; default opened (merged with merge:
	// now).
	Wait string `json:"wait"`
	// Method is merge, squash or rebase; default merge.
	Method string `json:"method"`
	// Timeout bounds wait: merged and merge: now; default 1h.
	Timeout resource.Duration `json:"timeout"`
}

// The values of pull_request.merge and pull_request.wait.
const (
	mergeNone = "none"
	mergeAuto = "auto"
	mergeNow  = "now"

	waitNone   = "none"
	waitOpened = "opened"
	waitMerged = "merged"
)

// defaultPRTimeout bounds waiting for a merge when pull_request.timeout is
// not set.
const defaultPRTimeout = time.Hour

// withDefaults is p with every default filled in but Base and Branch,
// which depend on the source and the images.
func (p PullRequestParams) withDefaults() PullRequestParams {
	if p.Merge == "" {
		p.Merge = mergeNone
	}
	if p.Wait == "" {
		p.Wait = waitOpened
		if p.Merge == mergeNow {
			p.Wait = waitMerged
		}
	}
	if p.Method == "" {
		p.Method = string(forge.MergeCommit)
	}
	return p
}

// validate reports every problem with pull_request at once; pushBranch is
// params.push_branch.
func (p PullRequestParams) validate(pushBranch string) error {
	const field = "params.pull_request"
	var errs []error
	if pushBranch != "" {
		errs = append(errs, resource.ConfigErrorf("params.push_branch and %s cannot both be set: with a pull request the change goes to %s.branch", field, field))
	}
	for _, b := range []struct{ name, value string }{{"base", p.Base}, {"branch", p.Branch}} {
		if b.value == "" {
			continue
		}
		if err := gitrepo.ValidBranch(b.value); err != nil {
			errs = append(errs, resource.ConfigErrorf("%s.%s %v", field, b.name, err))
		}
	}
	if p.Base != "" && p.Base == p.Branch {
		errs = append(errs, resource.ConfigErrorf("%s.branch and %s.base are both %q: the pull request's branch must differ from the branch it merges into", field, field, p.Base))
	}
	switch p.Merge {
	case "", mergeNone, mergeAuto, mergeNow:
	default:
		errs = append(errs, resource.ConfigErrorf("%s.merge %q is not one of none, auto, now", field, p.Merge))
	}
	switch p.Wait {
	case "", waitNone, waitOpened, waitMerged:
	default:
		errs = append(errs, resource.ConfigErrorf("%s.wait %q is not one of none, opened, merged", field, p.Wait))
	}
	if p.Merge == mergeNow && (p.Wait == waitNone || p.Wait == waitOpened) {
		errs = append(errs, resource.ConfigErrorf("%s.wait: %s contradicts merge: now, which merges and so ends merged: leave wait out", field, p.Wait))
	}
	switch forge.MergeMethod(p.Method) {
	case "", forge.MergeCommit, forge.Squash, forge.Rebase:
	default:
		errs = append(errs, resource.ConfigErrorf("%s.method %q is not one of merge, squash, rebase", field, p.Method))
	}
	d := p.withDefaults()
	if p.Timeout != 0 && d.Wait != waitMerged {
		errs = append(errs, resource.ConfigErrorf("%s.timeout bounds wait: merged and merge: now, and this put does neither: leave it out or set wait: merged", field))
	}
	for i, l := range p.Labels {
		if strings.TrimSpace(l) == "" {
			errs = append(errs, resource.ConfigErrorf("%s.labels[%d] is empty", field, i))
		}
	}
	for _, t := range []struct{ name, value string }{{"title", p.Title}, {"body", p.Body}} {
		if t.value == "" {
			continue
		}
		if _, err := resource.Expand(t.value, messageValues(nil, resource.Env{})); err != nil {
			errs = append(errs, resource.ConfigErrorf("%s.%s: %v", field, t.name, err))
		}
	}
	return errors.Join(errs...)
}

// validatePullRequest checks what pull_request needs of the source: a
// forge that can be told from it, and a head branch that is not the
// tracked branch (which it would replace).
func validatePullRequest(src *Source, p *PullRequestParams) error {
	var errs []error
	if src.Forge == nil {
		errs = append(errs, resource.ConfigErrorf("params.pull_request needs source.forge: {type, url, token} of the forge that holds %s", src.URI))
	} else if _, err := src.forgeConfig().Resolve(); err != nil {
		for _, e := range unjoin(err) {
			errs = append(errs, resource.ConfigErrorf("%v", e))
		}
	}
	if p.Branch != "" && p.Branch == src.Branch {
		errs = append(errs, resource.ConfigErrorf("params.pull_request.branch is source.branch (%s): the pull request's branch is replaced on each put, and source.branch must never be", src.Branch))
	}
	return errors.Join(errs...)
}

// unjoin splits an errors.Join into its errors.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func (s *Source) forgeConfig() forge.Config {
	f := ForgeSource{}
	if s.Forge != nil {
		f = *s.Forge
	}
	return forge.Config{Type: f.Type, URL: f.URL, Token: f.Token, RepoURL: s.URI}
}

// forgeTokenAsPassword makes source.forge.token the git password of an
// http(s) uri when no other git credential is set: password, private_key
// or a password in the uri. The username, when not set, is x-access-token
// (GitHub's word for it; Gitea and Forgejo take any name with a token), or
// oauth2 on GitLab.
func (s *Source) forgeTokenAsPassword() {
	if s.Forge == nil || s.Forge.Token == "" || s.Password != "" || s.PrivateKey != "" {
		return
	}
	if !strings.HasPrefix(s.URI, "https://") && !strings.HasPrefix(s.URI, "http://") {
		return
	}
	if _, pass := resource.URLUserinfo(s.URI); pass != "" {
		return
	}
	s.Password = s.Forge.Token
	if s.Username == "" {
		s.Username = "x-access-token"
		typ := s.Forge.Type
		if cfg, err := s.forgeConfig().Resolve(); err == nil {
			typ = cfg.Type
		}
		if typ == forge.TypeGitLab {
			s.Username = "oauth2"
		}
	}
}

// openForge is the client of the source's forge; skip_ssl_verification
// applies to it as to git.
func (s *Source) openForge() (forge.Forge, error) {
	hc := &http.Client{}
	if s.SkipSSLVerification {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user asked for it
		hc.Transport = tr
	}
	f, err := forge.New(s.forgeConfig(), hc)
	if err != nil {
		return nil, resource.ConfigErrorf("%v", err)
	}
	return f, nil
}

// prBranchName is the default head branch: "gitops/" + the images' names
// (each repository's last path element, or the setter's policy name, or
// "promote-" + the last element of promote.to), sorted, joined with "-",
// cut to 40 characters, then "-" and 8 hex digits of a hash of what the
// change is: the base, the canonical repositories and setters, promote's
// from and to, and the paths in scope. It does not depend on the tags, so
// every put of the same images into the same base updates one pull
// request; two puts of the same image into different paths (staging,
// prod) or bases get two.
func prBranchName(base string, targets []Target, promote *Promote, scope pathSet) string {
	var names, identity []string
	for _, t := range targets {
		switch {
		case t.Repository != "":
			names = append(names, path.Base(t.Repository))
			identity = append(identity, "image "+imageref.Canonical(t.Repository))
		case t.Setter != "":
			_, policy, _ := strings.Cut(t.Setter, ":")
			names = append(names, policy)
		}
		if t.Setter != "" {
			identity = append(identity, "setter "+t.Setter)
		}
	}
	if promote != nil {
		names = append(names, "promote-"+path.Base(path.Clean(promote.To)))
		identity = append(identity, "promote "+path.Clean(promote.From)+" -> "+path.Clean(promote.To))
	}
	for i := range names {
		names[i] = slug(names[i])
	}
	slices.Sort(names)
	names = slices.Compact(names)
	name := strings.Join(slices.DeleteFunc(names, func(s string) bool { return s == "" }), "-")
	if len(name) > 40 {
		name = strings.TrimRight(name[:40], "-.")
	}
	if name == "" {
		name = "images"
	}
	slices.Sort(identity)
	identity = slices.Compact(identity)
	identity = append(identity, "base "+base)
	for _, p := range scope.include {
		identity = append(identity, "path "+p)
	}
	for _, p := range scope.exclude {
		identity = append(identity, "ignore "+p)
	}
	sum := sha256.Sum256([]byte(strings.Join(identity, "\n")))
	return "gitops/" + name + "-" + hex.EncodeToString(sum[:4])
}

// slug keeps [a-z0-9._] of s, lowercased, and makes every other run of
// characters one "-".
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' {
			b.WriteRune(r)
			dash = false
			continue
		}
		if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.Trim(b.String(), "-.")
}

// prTitle is pull_request.title expanded, or the commit's subject.
func prTitle(p PullRequestParams, msgTemplate string, changes []ImageChange, env resource.Env) (string, error) {
	text, field := p.Title, "params.pull_request.title"
	if text == "" {
		text, field = msgTemplate, "params.commit_message"
	}
	expanded, err := resource.Expand(text, messageValues(changes, env))
	if err != nil {
		return "", resource.ConfigErrorf("%s: %v", field, err)
	}
	subject, _, _ := strings.Cut(strings.TrimSpace(expanded), "\n")
	if subject = strings.TrimSpace(subject); subject == "" {
		subject = "update images"
	}
	return subject, nil
}

// prBody is pull_request.body expanded, then the table of changes, the
// build link and the trailers of the head commit's message.
func prBody(p PullRequestParams, branch string, changes []ImageChange, env resource.Env, message string) (string, error) {
	var b strings.Builder
	if p.Body != "" {
		expanded, err := resource.Expand(p.Body, messageValues(changes, env))
		if err != nil {
			return "", resource.ConfigErrorf("params.pull_request.body: %v", err)
		}
		b.WriteString(strings.TrimSpace(expanded))
		b.WriteString("\n\n")
	}
	b.WriteString(changesTable(changes))
	switch build, u := env.Build(), env.BuildURL(); {
	case build != "" && u != "":
		fmt.Fprintf(&b, "\nBuild: [%s](%s)\n", cell(build), u)
	case u != "":
		fmt.Fprintf(&b, "\nBuild: %s\n", u)
	case build != "":
		fmt.Fprintf(&b, "\nBuild: %s\n", cell(build))
	}
	if t := trailers(message); t != "" {
		fmt.Fprintf(&b, "\n```\n%s\n```\n", t)
	}
	fmt.Fprintf(&b, "\n<sub>Opened by gitops-resource: every put of these images replaces the branch `%s` with a new commit on the base's tip.</sub>\n", branch)
	return b.String(), nil
}

// changesTable is the %changes% as a Markdown table: one row per image
// and old and new value, with the files changed.
func changesTable(changes []ImageChange) string {
	var b strings.Builder
	b.WriteString("| image | from | to | files |\n|---|---|---|---|\n")
	for _, u := range uniqueChanges(changes) {
		var files []string
		for _, c := range changes {
			if imageref.Canonical(c.Repository) == imageref.Canonical(u.Repository) && c.Old == u.Old && c.New == u.New {
				files = append(files, "`"+cell(c.File)+"`")
			}
		}
		files = slices.Compact(files)
		old := "`" + cell(u.Old) + "`"
		if u.Old == "" {
			old = "(added)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s |\n", cell(u.Repository), old, cell(u.New), strings.Join(files, ", "))
	}
	return b.String()
}

// cell escapes what would end a Markdown table cell or code span.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "`", "'", "\n", " ").Replace(s)
}

// trailers is the last paragraph of a commit message when it is made of
// "Key: value" lines.
func trailers(message string) string {
	paras := strings.Split(strings.TrimSpace(message), "\n\n")
	if len(paras) < 2 {
		return ""
	}
	last := paras[len(paras)-1]
	for _, line := range strings.Split(last, "\n") {
		k, _, ok := strings.Cut(line, ": ")
		if !ok || k == "" || strings.Contains(k, " ") {
			return ""
		}
	}
	return last
}

// prRun opens or updates a pull request and merges or waits for it as
// pull_request says.
type prRun struct {
	forge  forge.Forge
	params PullRequestParams // withDefaults
	log    io.Writer
	// poll is the pause before the n-th (from 0) look at the forge while
	// waiting; interval in production.
	poll func(ctx context.Context, n int) error
	// mergeRetry retries the forge's transient refusals of a merge.
	mergeRetry retry.Backoff
	// checks is the last checks report printed, to print only changes.
	checks string
}

func newPRRun(f forge.Forge, p PullRequestParams, log io.Writer) *prRun {
	return &prRun{forge: f, params: p.withDefaults(), log: log, poll: interval,
		mergeRetry: retry.Backoff{Attempts: 10, Base: 500 * time.Millisecond, Max: 4 * time.Second}}
}

// interval waits 0.5s, 1s, 2s, 4s, 8s, then 10s between looks, or until
// ctx ends.
func interval(ctx context.Context, n int) error {
	d := min(500*time.Millisecond<<min(n, 5), 10*time.Second)
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-time.After(d):
		return nil
	}
}

func (r *prRun) logf(format string, args ...any) { fmt.Fprintf(r.log, format+"\n", args...) }

// openOrUpdate updates our open pull request from head into base in place,
// or opens one.
func (r *prRun) openOrUpdate(ctx context.Context, npr forge.NewPullRequest) (*forge.PullRequest, error) {
	pr, err := r.forge.FindOpen(ctx, npr.Head, npr.Base)
	if err != nil {
		return nil, fmt.Errorf("look for an open pull request from %s into %s: %w", npr.Head, npr.Base, err)
	}
	if pr != nil {
		got, err := r.forge.Update(ctx, pr.Number, npr)
		if err != nil {
			return nil, fmt.Errorf("update pull request %s: %w", pr.URL, err)
		}
		r.logf("updated pull request #%d in place: %s", got.Number, got.URL)
		return got, nil
	}
	got, err := r.forge.Open(ctx, npr)
	if err != nil {
		// Another put of the same images may have opened it meanwhile.
		if again, ferr := r.forge.FindOpen(ctx, npr.Head, npr.Base); ferr == nil && again != nil {
			return r.openOrUpdate(ctx, npr)
		}
		return nil, fmt.Errorf("open a pull request from %s into %s: %w", npr.Head, npr.Base, err)
	}
	r.logf("opened pull request #%d: %s", got.Number, got.URL)
	return got, nil
}

// get reads the pull request again, tolerating a few transient failures
// in a row (a long wait must outlive a network blip).
func (r *prRun) get(ctx context.Context, pr *forge.PullRequest, failures *int) (*forge.PullRequest, error) {
	got, err := r.forge.Get(ctx, pr.Number)
	if err == nil {
		*failures = 0
		return got, nil
	}
	*failures++
	if ctx.Err() == nil && retry.IsRetryable(err) && *failures < 5 {
		r.logf("read pull request %s: %v (will look again)", pr.URL, err)
		return pr, nil
	}
	return nil, fmt.Errorf("read pull request %s: %w", pr.URL, err)
}

// awaitHead waits until the forge shows sha as the pull request's head:
// forges take a push to a pull request's branch in asynchronously.
func (r *prRun) awaitHead(ctx context.Context, pr *forge.PullRequest, sha string) (*forge.PullRequest, error) {
	failures := 0
	for n := 0; ; n++ {
		if pr.HeadSHA == sha || pr.State != forge.Open {
			return pr, nil
		}
		if n == 1 {
			r.logf("waiting for %s to show %s as its head (it shows %s)", pr.URL, short12(sha), short12(pr.HeadSHA))
		}
		if err := r.poll(ctx, n); err != nil {
			return nil, fmt.Errorf("pull request %s still shows %s as its head, not %s: %w", pr.URL, short12(pr.HeadSHA), short12(sha), err)
		}
		var err error
		if pr, err = r.get(ctx, pr, &failures); err != nil {
			return nil, err
		}
	}
}

// reportChecks prints the checks of sha when they changed since the last
// report, and returns them.
func (r *prRun) reportChecks(ctx context.Context, sha string) (forge.Checks, error) {
	ch, err := r.forge.Checks(ctx, sha)
	if err != nil {
		return ch, fmt.Errorf("read the checks of %s: %w", short12(sha), err)
	}
	report := fmt.Sprintf("checks on %s: %s", short12(sha), ch.State)
	for _, l := range ch.Lines {
		report += "\n  " + l
	}
	if report != r.checks {
		r.checks = report
		r.logf("%s", report)
	}
	return ch, nil
}

// closedErr is the error for a pull request closed without a merge.
func closedErr(pr *forge.PullRequest) error {
	return fmt.Errorf("pull request %s was closed without being merged: nothing reached %s", pr.URL, pr.Base)
}

// awaitMerged waits until the pull request is merged and returns it, with
// its merge commit; it fails when the pull request is closed unmerged, or
// when ctx ends (the timeout).
func (r *prRun) awaitMerged(ctx context.Context, pr *forge.PullRequest) (*forge.PullRequest, error) {
	failures := 0
	for n := 0; ; n++ {
		switch pr.State {
		case forge.Merged:
			if pr.MergeCommit != "" {
				return pr, nil
			}
		case forge.Closed:
			return nil, closedErr(pr)
		case forge.Open:
			if _, err := r.reportChecks(ctx, pr.HeadSHA); err != nil {
				if ctx.Err() != nil || !retry.IsRetryable(err) {
					return nil, r.waitErr(ctx, pr, err)
				}
				r.logf("%v (will look again)", err)
			}
		}
		if err := r.poll(ctx, n); err != nil {
			return nil, r.waitErr(ctx, pr, err)
		}
		var err error
		if pr, err = r.get(ctx, pr, &failures); err != nil {
			return nil, r.waitErr(ctx, pr, err)
		}
	}
}

// waitErr says what happened to a wait for a merge.
func (r *prRun) waitErr(ctx context.Context, pr *forge.PullRequest, err error) error {
	if errors.Is(context.Cause(ctx), errPRTimeout) {
		return fmt.Errorf("pull request %s was not merged within %s (params.pull_request.timeout)", pr.URL, r.params.Timeout.Or(defaultPRTimeout))
	}
	return err
}

// errPRTimeout is the cause of the wait's context ending at its timeout.
var errPRTimeout = errors.New("params.pull_request.timeout passed")

// mergeNow waits for the checks of the head to pass, merges with the head
// pinned, retrying the forge's transient refusals, and waits for the
// merge commit. Failing checks fail it, with their lines.
func (r *prRun) mergeNow(ctx context.Context, pr *forge.PullRequest) (*forge.PullRequest, error) {
	failures := 0
	for n := 0; ; n++ {
		switch pr.State {
		case forge.Merged:
			return r.awaitMerged(ctx, pr)
		case forge.Closed:
			return nil, closedErr(pr)
		}
		ch, err := r.reportChecks(ctx, pr.HeadSHA)
		if err != nil && (ctx.Err() != nil || !retry.IsRetryable(err)) {
			return nil, r.waitErr(ctx, pr, err)
		}
		if err == nil {
			switch ch.State {
			case forge.Failure:
				return nil, fmt.Errorf("pull request %s is not merged: the checks on %s failed:\n  %s", pr.URL, short12(pr.HeadSHA), strings.Join(ch.Lines, "\n  "))
			case forge.Success, forge.None:
				return r.merge(ctx, pr)
			}
		}
		if err := r.poll(ctx, n); err != nil {
			return nil, r.waitErr(ctx, pr, err)
		}
		if pr, err = r.get(ctx, pr, &failures); err != nil {
			return nil, r.waitErr(ctx, pr, err)
		}
	}
}

// merge merges pr at its head, retrying what the forge refuses for now.
func (r *prRun) merge(ctx context.Context, pr *forge.PullRequest) (*forge.PullRequest, error) {
	method := forge.MergeMethod(r.params.Method)
	r.logf("merging %s (%s) at %s", pr.URL, method, short12(pr.HeadSHA))
	// Only what the forge marks retry.Retryable is tried again (Gitea's 405
	// "try again later", 5xx): a refusal for lack of rights is final.
	err := r.mergeRetry.Do(ctx, r.log, "merge "+pr.URL, func() error {
		return r.forge.Merge(ctx, pr.Number, method, pr.HeadSHA)
	})
	if err != nil {
		// A merge whose answer was lost, or one made by someone else
		// meanwhile, is a merge.
		if now, gerr := r.forge.Get(ctx, pr.Number); gerr == nil && now.State == forge.Merged {
			return r.awaitMerged(ctx, now)
		}
		return nil, r.waitErr(ctx, pr, fmt.Errorf("merge pull request %s: %w", pr.URL, err))
	}
	return r.awaitMerged(ctx, pr)
}

// autoMerge asks the forge to merge once the checks pass.
func (r *prRun) autoMerge(ctx context.Context, pr *forge.PullRequest, forgeName string) error {
	err := r.forge.AutoMerge(ctx, pr.Number, forge.MergeMethod(r.params.Method), pr.HeadSHA)
	if errors.Is(err, forge.ErrNoAutoMerge) {
		return resource.ConfigErrorf("params.pull_request.merge: auto on %s: %v (merge: now has the put merge once the checks pass)", forgeName, err)
	}
	if err != nil {
		return fmt.Errorf("ask %s to merge pull request %s once its checks pass: %w", forgeName, pr.URL, err)
	}
	r.logf("asked %s to merge %s once its checks pass", forgeName, pr.URL)
	return nil
}

func short12(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// outPullRequest is put with pull_request: the edit is made on base's tip
// and committed to the pull request's branch, which is replaced (base is
// never pushed); then our open pull request from that branch is updated in
// place, or one is opened, and merged or waited for. ctx bounds the git and
// forge calls (source.timeout); a wait for the merge is bounded by
// pull_request.timeout instead, from stepCtx.
func outPullRequest(stepCtx, ctx context.Context, in resource.Input, req outRequest, client *gitrepo.Client, targets []Target, scope pathSet, msgTemplate string, author gitrepo.Signature) (resource.Response, error) {
	src, params := req.Source, req.Params
	p := params.PullRequest.withDefaults()
	f, err := src.openForge()
	if err != nil {
		return resource.Response{}, err
	}
	forgeName := src.forgeName()
	base := p.Base
	if base == "" {
		base = src.Branch
	}
	branch := p.Branch
	if branch == "" {
		branch = prBranchName(base, targets, params.Promote, scope)
		if err := gitrepo.ValidBranch(branch); err != nil { // cannot happen: slug keeps only safe characters
			return resource.Response{}, fmt.Errorf("the pull request's branch %q: %w", branch, err)
		}
		if branch == src.Branch {
			return resource.Response{}, resource.ConfigErrorf("the pull request's branch would be source.branch (%s): set params.pull_request.branch", branch)
		}
	}
	// [ci skip] in the head commit would stop the forge's CI from checking
	// the pull request: by default it is not written here.
	ciSkip := params.CISkip != nil && *params.CISkip
	// Ask the forge before writing: a token or URL it refuses fails the put
	// with nothing pushed.
	if _, err := f.FindOpen(ctx, branch, base); err != nil {
		return resource.Response{}, fmt.Errorf("look for an open pull request from %s into %s: %w", branch, base, err)
	}
	var changes []ImageChange
	res, err := client.UpdateBranchFrom(ctx, base, branch, 1, func(snap *gitrepo.Snapshot) error {
		changes = nil
		if snap.Head == nil {
			return resource.ConfigErrorf("branch %s does not exist on %s: there is nothing to edit", base, client.URL())
		}
		var err error
		changes, err = commitEdit(in, src, params, targets, scope, snap, msgTemplate, ciSkip, author)
		return err
	})
	if err != nil {
		return resource.Response{}, err
	}
	logChanges(in, changes)
	baseTip := res.Base.String()
	meta := resource.Metadata{}
	if !res.Changed {
		in.Logf("every reference is already as requested on %s: no pull request, nothing pushed; %s is the tip of %s", base, baseTip[:12], base)
		meta.Add("commit", baseTip)
		meta.AddBuild(in.Env)
		return resource.Response{Version: Version{baseTip}, Metadata: meta}, nil
	}
	head := res.Commit.String()
	switch {
	case res.Kept:
		in.Logf("%s already holds this change on %s at %s: kept as it is", branch, base, head[:12])
	default:
		in.Logf("pushed %s to %s (made on %s at %s) on %s", head[:12], branch, base, baseTip[:12], client.URL())
	}
	title, err := prTitle(p, msgTemplate, changes, in.Env)
	if err != nil {
		return resource.Response{}, err
	}
	body, err := prBody(p, branch, changes, in.Env, res.Message)
	if err != nil {
		return resource.Response{}, err
	}
	run := newPRRun(f, p, in.Log)
	pr, err := run.openOrUpdate(ctx, forge.NewPullRequest{Title: title, Body: body, Head: branch, Base: base, Labels: p.Labels})
	if err != nil {
		return resource.Response{}, err
	}
	meta.Add("commit", head)
	meta.Add("pr_url", pr.URL)
	meta.Add("pr_number", fmt.Sprint(pr.Number))
	meta.Add("pr_branch", branch)
	for _, c := range uniqueChanges(changes) {
		meta.Add("image", imageLine(c))
	}
	if res.SignedWith != "" {
		meta.Add("signing_key_fingerprint", res.SignedWith)
	}
	version := baseTip
	if p.Wait != waitNone || p.Merge != mergeNone {
		if pr, err = run.awaitHead(ctx, pr, head); err != nil {
			return resource.Response{}, err
		}
	}
	if p.Merge == mergeAuto {
		if err := run.autoMerge(ctx, pr, forgeName); err != nil {
			return resource.Response{}, err
		}
	}
	if p.Wait == waitMerged {
		timeout := p.Timeout.Or(defaultPRTimeout)
		wctx, cancel := context.WithTimeoutCause(stepCtx, timeout, errPRTimeout)
		defer cancel()
		if p.Merge == mergeNow {
			in.Logf("merging %s once its checks pass (timeout %s)", pr.URL, timeout)
			pr, err = run.mergeNow(wctx, pr)
		} else {
			in.Logf("waiting for %s to be merged (timeout %s)", pr.URL, timeout)
			pr, err = run.awaitMerged(wctx, pr)
		}
		if err != nil {
			return resource.Response{}, err
		}
		version = pr.MergeCommit
		meta.Add("merge_commit", version)
		in.Logf("%s is merged: %s is on %s", pr.URL, version[:min(12, len(version))], base)
	} else {
		in.Logf("the version stays %s, the tip of %s, until the pull request is merged", baseTip[:12], base)
	}
	meta.AddBuild(in.Env)
	return resource.Response{Version: Version{version}, Metadata: meta}, nil
}

// forgeName names the forge in messages: its type and host.
func (s *Source) forgeName() string {
	cfg, err := s.forgeConfig().Resolve()
	if err != nil {
		return "the forge"
	}
	return fmt.Sprintf("%s (%s)", cfg.URL, cfg.Type)
}
