// Package kustomize builds a kustomization with kustomize's krusty API,
// reading only through an os.Root: nothing a kustomization names (a
// resource "../../..", a base that is a symlink out) is read from outside
// the build dir, and the build writes nothing.
//
// It is a shared package (pkg/kube loads objects with it, kind artifact
// packs its output): it never imports a kind nor pkg/app, and never
// client-go, so the kinds that do not talk to a cluster can use it.
package kustomize
