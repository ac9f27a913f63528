package clusterapp

import (
	"github.com/go-logr/logr"
	"k8s.io/klog/v2"

	"github.com/gitops-resource/gitops-resource/pkg/app"
	"github.com/gitops-resource/gitops-resource/pkg/artifact"
	"github.com/gitops-resource/gitops-resource/pkg/cluster"
	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

// Main runs the verb named by argv[0] (check, in or out: check, in and out
// hand it a request under the verb's name), or check when run by another
// name, for kinds cluster and artifact, and returns the exit code.
func Main() int {
	// client-go reports through klog straight to stderr, past the redactor
	// ("Unhandled Error ... couldn't get current server API group list").
	// Every failure that matters comes back as an error; the rest is noise.
	klog.SetLogger(logr.Discard())
	return app.Binary{Kinds: map[string]resource.Kind{"cluster": cluster.Kind(), "artifact": artifact.Kind()}}.Main(app.Check)
}
