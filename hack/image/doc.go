// Command image builds the resource image with internal/image, without
// Docker: `make image` runs it. -o writes the index (linux/amd64 and
// linux/arm64) as an OCI layout; -push pushes it (credentials from
// REGISTRY_USERNAME and REGISTRY_PASSWORD, else docker's config.json); -layer
// writes one platform's layer as a tar, for the Dockerfile.
//
// It reads flags and calls internal/image, the one package of this module it
// imports.
package main
