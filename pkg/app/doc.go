// Package app is the binary behind /opt/resource/check, in and out: it
// reads the request, dispatches on source.kind and the verb, and writes the
// response, redacting secrets from everything it prints.
//
// It owns the dispatch only; each kind's verbs live in the kind's package
// (pkg/semver, pkg/manifest...). Kinds cluster and artifact run in a second
// binary, /opt/resource/cluster (pkg/app/clusterapp, the same dispatch):
// check, in and out hand it their requests by exec, so that they link
// neither client-go nor kustomize. pkg/app and pkg/app/clusterapp are the packages that
// import the kinds, and the mains import them.
package app
