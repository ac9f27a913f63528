// Package layering holds no code: its test checks the import rules that the
// doc.go of each package states, with `go list -deps`, and fails naming the
// package, the forbidden import and the chain of imports that leads there:
//
//   - pkg/resource, pkg/imageref and pkg/retry import no package of this
//     module; pkg/yamledit imports only pkg/imageref; pkg/health (the
//     judges of objects' health) imports no package of this module either;
//   - check, in and out import only pkg/app; cluster (the second binary,
//     kind cluster's) only pkg/app/clusterapp;
//   - pkg/app never imports pkg/cluster nor pkg/app/clusterapp, and check,
//     in and out link no k8s.io/client-go: kind cluster runs in the cluster
//     binary, so the other kinds' checks do not pay client-go's package init;
//   - a kind (pkg/semver, pkg/manifest, pkg/cluster...) never imports another
//     kind nor pkg/app/...;
//   - the other packages under pkg/ are shared: they never import a kind nor
//     pkg/app/... (so pkg/kube never imports pkg/cluster);
//   - the code the binaries are built of (pkg/..., check, in, out, cluster) never
//     imports a test harness (internal/gittest, internal/resourcetest,
//     internal/proc, internal/testenv/..., internal/testenv/kubetest,
//     internal/testenv/agenttest) nor the image builder internal/image; a package
//     whose own code imports "testing" has to be listed as a harness.
//
// It also checks that every package keeps its package comment in doc.go,
// and in no other file. Change a rule in layering_test.go and in the doc.go
// files it concerns together.
package layering
