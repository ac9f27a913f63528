// Package registry talks to container registries with go-containerregistry:
// it resolves a tag to the digest the registry serves for it, with the
// pipeline's credentials, bounded retries on 429 and 5xx, and plain HTTP for
// registries on loopback.
//
// It is a shared package, and so never imports a kind nor pkg/app; the retry
// policy itself is pkg/retry's.
package registry
