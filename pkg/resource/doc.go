// Package resource is the Concourse protocol layer shared by every kind:
// strict request decoding, responses and metadata, the BUILD_* environment,
// configuration errors, and redaction of secrets from everything printed.
// It also owns the rules every kind follows for what a pipeline gives it:
// durations and strings as YAML authors write them, %name% placeholders,
// and paths in the build dir that may not leave it.
//
// It imports no other package of this module, so that every package may
// build on it.
package resource
