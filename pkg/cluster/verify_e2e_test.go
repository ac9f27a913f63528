package cluster_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	rt "github.com/gitops-resource/gitops-resource/internal/resourcetest"
	"github.com/gitops-resource/gitops-resource/internal/testenv/agenttest"
)

// Digests for verify_images in the agent modes: the kubelet (played by the
// test) runs good as written, and other where bad is written, as when a
// node pulled a tag that moved.
const (
	goodDigest  = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	badDigest   = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	otherDigest = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
)

func pinnedWeb(digest string) string {
	return strings.Replace(webDeployment, "nginx:1.0 # written by the manifest kind", "registry.example/web@"+digest, 1)
}

// reportDigests plays the kubelet for the fixture's namespace.
func (f *agentFixture) reportDigests() {
	f.env.ReportImageIDs(f.t, f.ns, func(p *corev1.Pod, cs corev1.ContainerStatus) string {
		for _, c := range p.Spec.Containers {
			if c.Name != cs.Name {
				continue
			}
			repo, digest, ok := strings.Cut(c.Image, "@")
			if !ok {
				return "docker.io/library/" + c.Image + "@" + goodDigest
			}
			if digest == badDigest {
				digest = otherDigest
			}
			return repo + "@" + digest
		}
		return ""
	})
}

func TestFluxModeVerifyImages(t *testing.T) {
	f := newAgentFixture(t)
	f.reportDigests()
	agenttest.StartFlux(t, f.env)
	// No wait: true: Ready=True right after the apply, so verify_images
	// itself must wait for the rollout.
	agenttest.Apply(t, f.env, f.ns, agenttest.FluxKustomization("web", f.git.HTTPURL("config"), "./deploy", f.ns, 0))
	sa := f.env.ServiceAccount(t, f.ns, append(docRole(t, "flux"), docRole(t, "verify-images")...)...)
	src := map[string]any{"kind": "cluster", "mode": "flux", "kubeconfig": string(sa.Kubeconfig), "namespace": f.ns, "kustomization": "web"}
	params := map[string]any{"revision_file": "revision", "timeout": "2m", "verify_images": true}

	good := f.git.Commit(t, "config", "main", map[string]string{"deploy/web.yaml": pinnedWeb(goodDigest)}, "web pinned")
	res := rt.Run(t, "out", f.revisionDir(good), map[string]any{"source": src, "params": params}, nil)
	t.Logf("good digest:\n%s", res.Stderr)
	res.OK(t, nil)
	require.Contains(t, res.Stderr, "verify_images: checking the pods of 1 workloads of Kustomization/"+f.ns+"/web")
	require.Contains(t, res.Stderr, "image digests verified")
	require.NotContains(t, res.Stderr, "warning", "the documented Roles leave nothing out")

	bad := f.git.Commit(t, "config", "main", map[string]string{"deploy/web.yaml": pinnedWeb(badDigest)}, "web pinned to a digest the node does not run")
	res = rt.Run(t, "out", f.revisionDir(bad), map[string]any{"source": src, "params": params}, nil)
	t.Logf("bad digest:\n%s", res.Stderr)
	res.Fails(t, "verify_images: Kustomization/"+f.ns+"/web applied revision "+bad, "Deployment/"+f.ns+"/web failed",
		"container app runs "+otherDigest+", not the applied "+badDigest)
}

func TestArgoCDModeVerifyImages(t *testing.T) {
	f := newAgentFixture(t)
	f.reportDigests()
	argo := agenttest.StartArgoCD(t, f.env)
	name := f.ns
	agenttest.Apply(t, f.env, argo.Namespace(), agenttest.ArgoCDApplication(name, f.git.HTTPURL("config"), "deploy", f.ns))
	// The pipeline's identity: the argocd Role where the Application lives,
	// the verify-images Role where the workloads run.
	sa := f.env.ServiceAccount(t, argo.Namespace(), docRole(t, "argocd")...)
	f.env.Grant(t, sa, f.ns, docRole(t, "verify-images")...)
	src := map[string]any{"kind": "cluster", "mode": "argocd", "kubeconfig": string(sa.Kubeconfig), "application": name}
	params := map[string]any{"revision_file": "revision", "sync": true, "timeout": "2m", "verify_images": true}

	good := f.git.Commit(t, "config", "main", map[string]string{"deploy/web.yaml": pinnedWeb(goodDigest)}, "web pinned")
	res := rt.Run(t, "out", f.revisionDir(good), map[string]any{"source": src, "params": params}, nil)
	t.Logf("good digest:\n%s", res.Stderr)
	res.OK(t, nil)
	require.Contains(t, res.Stderr, "image digests verified")
	require.NotContains(t, res.Stderr, "warning", "the documented Roles leave nothing out")

	bad := f.git.Commit(t, "config", "main", map[string]string{"deploy/web.yaml": pinnedWeb(badDigest)}, "web pinned to a digest the node does not run")
	res = rt.Run(t, "out", f.revisionDir(bad), map[string]any{"source": src, "params": params}, nil)
	t.Logf("bad digest:\n%s", res.Stderr)
	res.Fails(t, "verify_images: Application/"+argo.Namespace()+"/"+name+" applied revision "+bad, "Deployment/"+f.ns+"/web failed",
		"container app runs "+otherDigest+", not the applied "+badDigest)
}
