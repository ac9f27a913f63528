// Package clusterapp is the binary of kinds cluster and artifact,
// /opt/resource/cluster: pkg/app's dispatch with those two kinds. check, in
// and out hand it the requests of those kinds (pkg/app's siblings), so that
// they link neither kustomize (~24 MB of code) nor client-go, whose package
// init is most of a semver check's start.
//
// It imports pkg/app, pkg/cluster, pkg/artifact and pkg/resource; the main ./cluster
// imports it and nothing else of this module.
package clusterapp
