// Package artifact is the kind artifact: Kubernetes manifests shipped as an
// OCI artifact in Flux's format, the one `flux push artifact` writes and an
// OCIRepository pulls. out packs a dir of the build dir (built with
// kustomize first when it holds a kustomization) reproducibly, so the same
// files give the same digest, and pushes it under one or more tags; check
// follows a tag or the newest tag in a semver range; in pulls a version by
// digest and extracts it with every path, link, size and entry count
// bounded.
//
// It builds on pkg/registry (credentials, retries, plain HTTP), pkg/kustomize
// and pkg/resource; it never imports another kind nor pkg/app, nor client-go
// (pkg/kube): it does not talk to a cluster.
package artifact
