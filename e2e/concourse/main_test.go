package concourse

import (
	"flag"
	"io"
	"testing"

	"k8s.io/klog/v2"

	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
)

func TestMain(m *testing.M) {
	// TestPipelinesRequests runs the cluster kind in-process against an
	// address that refuses: client-go's discovery logs each refusal to
	// stderr through klog; that is noise here.
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	fs.Set("logtostderr", "false")
	klog.SetOutput(io.Discard)
	rt.Main(m)
}
