// Package app is the one binary behind /opt/resource/check, in and out: it
// reads the request, dispatches on source.kind and the verb, and writes the
// response, redacting secrets from everything it prints.
//
// It owns the dispatch only; each kind's verbs live in the kind's package
// (pkg/semver, pkg/manifest, pkg/cluster). It is the one package that
// imports the kinds, and the mains import it.
package app
