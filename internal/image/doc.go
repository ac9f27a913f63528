// Package image builds the resource image without Docker or a daemon: one
// static binary hard-linked as /opt/resource/check, in and out, the static
// binary /opt/resource/cluster they start for kind cluster (pkg/app), a CA
// bundle and an empty /tmp, in one layer on nothing, for linux/amd64 and
// linux/arm64 in one OCI index. `make image` (hack/image) and the
// real-Concourse end-to-end suite both run Make; the Dockerfile's build stage
// runs it too (Options.Layer) and unpacks the same layer into FROM scratch.
//
// The same commit gives the same digests whoever builds it, wherever and
// whenever: the binaries are built by the Go toolchain go.mod names, with
// -trimpath, no VCS stamp and no build ID; the layer's entries come in a
// fixed order with fixed times and owners; the CA bundle comes from a module
// pinned by go.sum; there is no base image.
//
// It is build tooling, run by hack/image, the Dockerfile and the tests;
// the code the binaries are built of (pkg/..., check, in, out, cluster)
// never imports it.
package image
