// Package forge opens, updates, waits for and merges pull requests on a
// forge: Gitea/Forgejo, GitHub and GitLab, each through its own Go client.
// It is shared: it imports no kind and no pkg/app, and no client-go.
package forge
