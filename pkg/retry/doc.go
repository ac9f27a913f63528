// Package retry is the one retry policy of the resource's git, registry and
// Kubernetes API calls: a bounded number of attempts with jittered
// exponential delays, retrying only what the caller marked Retryable (what
// may go differently next time: the network failing, a 5xx, a 429, a lost
// race), never a config error or an answer that will not change.
//
// It owns the policy only; classifying an error is each caller's (gitrepo,
// registry, kube). It imports no other package of this module.
package retry
