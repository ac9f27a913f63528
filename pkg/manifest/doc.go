// Package manifest is the kind "manifest": a git repository of deployment
// configuration (plain manifests, kustomize overlays, Helm values). check
// reports the commits that touch the tracked paths, in writes the tree and
// the image references it holds, and out sets image references, rewriting
// only the bytes of the reference, and pushes one commit.
//
// It owns what is tracked and edited (paths, ignore_paths, value_paths,
// promote) and the commit it makes; finding and splicing YAML is
// pkg/yamledit's, image references pkg/imageref's, digests pkg/registry's
// and git pkg/gitrepo's.
//
// A kind imports the shared packages and pkg/resource, never another kind
// nor pkg/app: what two kinds share belongs in a shared package.
package manifest
