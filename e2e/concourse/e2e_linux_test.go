package concourse

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	"github.com/gitops-resource/gitops-resource/internal/image"
	"github.com/gitops-resource/gitops-resource/internal/testenv/agenttest"
	"github.com/gitops-resource/gitops-resource/internal/testenv/kubetest"
)

// stack is a Concourse started by stack.sh up.
type stack struct {
	script, work string
	env          map[string]string
}

// run runs args inside the stack's network namespace and returns stdout
// and stderr together.
func (s *stack) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.script, append([]string{"exec", s.work}, args...)...)
	cmd.Dir = s.work
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// fly runs fly against the stack's web, logged in as test.
func (s *stack) fly(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	out, err := s.run(ctx, append([]string{s.env["FLY"], "-t", "e2e"}, args...)...)
	if err != nil {
		t.Fatalf("fly %s: %v\n%s\n%s", strings.Join(args, " "), err, out, s.network(t))
	}
	return out
}

// network describes the namespace's network (addresses, routes, neighbours,
// listeners, firewall), for a failure that looks like a network one.
func (s *stack) network(t *testing.T) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var b strings.Builder
	for _, cmd := range [][]string{{"ip", "-br", "addr"}, {"ip", "route"}, {"ip", "neigh"}, {"ss", "-ltn"}, {"iptables-save"}} {
		out, err := s.run(ctx, cmd...)
		fmt.Fprintf(&b, "── %s (in the stack's namespace; err %v):\n%s\n", strings.Join(cmd, " "), err, out)
	}
	return b.String()
}

// needRuntime fails (CI) or skips the test when the machine cannot run the
// stack: root, Debian packages, the concourse build.
func needRuntime(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a Concourse stack: not under -short")
	}
	if os.Geteuid() != 0 {
		missing(t, "the Concourse end-to-end test needs root (network namespace, containerd, mounts)")
	}
	var lack []string
	for _, c := range []string{"containerd", "runc", "iptables", "nsenter", "setpriv", "curl", "git"} {
		if _, err := exec.LookPath(c); err != nil {
			lack = append(lack, c)
		}
	}
	for _, f := range []string{"/usr/lib/cni/bridge", "/bin/busybox"} {
		if _, err := os.Stat(f); err != nil {
			lack = append(lack, f)
		}
	}
	if pg, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres"); len(pg) == 0 {
		lack = append(lack, "postgres")
	}
	if len(lack) > 0 {
		missing(t, "the Concourse end-to-end test lacks %s: apt-get install containerd runc iptables containernetworking-plugins busybox-static postgresql curl git", strings.Join(lack, ", "))
	}
	if bin, why := concourseBin(false); bin == "" {
		missing(t, "concourse is not built: run `nice -n 10 hack/concourse-build.sh` (~11 min cold)\n%s", why)
	}
}

// startStack runs stack.sh up in a fresh work dir; the stack is torn down
// (processes, containers, mounts, namespace, work dir) when the test ends,
// passed or not.
func startStack(t *testing.T) *stack {
	t.Helper()
	// One stack per machine (Concourse fixes the containerd socket): test
	// processes take turns. The lock goes with the process, however it ends.
	lock, err := os.OpenFile("/run/gitops-concourse-e2e.lock", os.O_CREATE|os.O_RDWR, 0o600)
	require.NoError(t, err)
	t.Cleanup(func() { lock.Close() })
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Logf("another test process runs a Concourse stack; waiting for it")
		require.NoError(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_EX))
	}
	// Not t.TempDir: stack.sh down removes it after unmounting what the
	// worker mounted under it, and postgres (another user) must reach it.
	work, err := os.MkdirTemp("", "gitops-concourse-e2e-")
	require.NoError(t, err)
	s := &stack{script: filepath.Join(repoRoot(), "e2e", "concourse", "stack.sh"), work: work, env: map[string]string{}}
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range []string{"web", "worker"} {
				if b, err := os.ReadFile(filepath.Join(work, "logs", name+".log")); err == nil {
					t.Logf("── last of %s.log:\n%s", name, tail(string(b), 40))
				}
			}
		}
		out, err := exec.Command(s.script, "down", work).CombinedOutput()
		if err != nil {
			t.Errorf("stack.sh down: %v\n%s", err, out)
		}
	})
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), s.script, "up", work)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("stack.sh up: %v\n%s%s", err, stderr.String(), tail(readFile(filepath.Join(work, "logs", "web.log")), 30))
	}
	t.Logf("%s", strings.TrimSpace(stderr.String()))
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			s.env[k] = v
		}
	}
	for _, k := range []string{"NETNS", "REGISTRY", "GATEWAY", "FLY"} {
		if s.env[k] == "" {
			t.Fatalf("stack.sh up printed no %s:\n%s", k, stdout.String())
		}
	}
	return s
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// exposeIn makes target (host:port in this process's namespace) reachable
// from the stack's containers at GATEWAY:<port>, and returns that address.
func exposeIn(t *testing.T, s *stack, target string) string {
	t.Helper()
	ln, err := listenIn(s.env["NETNS"], net.JoinHostPort(s.env["GATEWAY"], "0"))
	require.NoError(t, err)
	t.Cleanup(forward(ln, func() (net.Conn, error) { return net.Dial("tcp", target) }))
	return ln.Addr().String()
}

// push writes img as a tarball and pushes it with crane inside the
// namespace, where the registry listens.
func push(t *testing.T, s *stack, img v1.Image, ref string) {
	t.Helper()
	tag, err := name.NewTag(ref, name.Insecure)
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "image.tar")
	require.NoError(t, tarball.WriteToFile(file, tag, img))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	crane := filepath.Join(filepath.Dir(s.env["FLY"]), "crane")
	if out, err := s.run(ctx, crane, "push", "--insecure", file, ref); err != nil {
		t.Fatalf("crane push %s: %v\n%s", ref, err, out)
	}
}

// busyboxImage is the task image: busybox-static as /bin/busybox and /bin/sh.
func busyboxImage(t *testing.T) v1.Image {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	require.NoError(t, err)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"bin/", "etc/", "tmp/"} {
		require.NoError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755}))
	}
	require.NoError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(bb))}))
	_, err = tw.Write(bb)
	require.NoError(t, err)
	require.NoError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/sh", Linkname: "busybox", Mode: 0o777}))
	require.NoError(t, tw.Close())
	layer, err := tarball.LayerFromReader(bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	img, err := mutate.AppendLayers(empty.Image, layer)
	require.NoError(t, err)
	cfg, err := img.ConfigFile()
	require.NoError(t, err)
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Env = []string{"PATH=/bin"}
	img, err = mutate.ConfigFile(img, cfg)
	require.NoError(t, err)
	return img
}

// pushImage builds this tree's image and pushes it to ref in the stack's
// registry, dialled inside the namespace: internal/image.Make, as `make image
// PUSH=ref` runs it, so Concourse runs what users build (both platforms; the
// worker pulls linux/amd64).
func pushImage(t *testing.T, s *stack, ref string) {
	t.Helper()
	var log strings.Builder
	dial := func(_ context.Context, _, addr string) (net.Conn, error) { return dialIn(s.env["NETNS"], addr) }
	_, err := image.Make(t.Context(), image.Options{Root: repoRoot(), Push: []string{ref}, Transport: &http.Transport{DialContext: dial}, Log: &log})
	require.NoError(t, err, "make the image:\n%s", log.String())
	t.Logf("make image PUSH=%s:\n%s", ref, log.String())
}

// controlPlane starts a Full control plane for the cluster part, or returns
// nil (outside CI) when its binaries are not built.
func controlPlane(t *testing.T) *kubetest.Env {
	t.Helper()
	env, err := kubetest.Start(t.Context(), kubetest.Full)
	if errors.Is(err, kubetest.ErrNoBinaries) && !inCI() {
		t.Logf("no control plane (%v): running without the cluster put; `make tools` builds it", err)
		return nil
	}
	require.NoError(t, err, "start control plane")
	t.Cleanup(func() { env.Stop() })
	return env
}

// kubeconfigVia rewrites the admin kubeconfig to reach the API server at
// addr (the forwarder in the namespace), still verifying its certificate,
// which is issued to 127.0.0.1.
func kubeconfigVia(t *testing.T, env *kubetest.Env, addr string) string {
	t.Helper()
	cfg, err := clientcmd.Load(env.Kubeconfig())
	require.NoError(t, err)
	for _, c := range cfg.Clusters {
		u, err := url.Parse(c.Server)
		require.NoError(t, err)
		c.TLSServerName = u.Hostname()
		u.Host = addr
		c.Server = u.String()
	}
	b, err := clientcmd.Write(*cfg)
	require.NoError(t, err)
	return string(b)
}

// deployment is the config repo's Deployment, running image.
func deployment(image string) string {
	return kubetest.Deployment("web", image+" # the tag the pipeline moves", 1)
}

// e2e is what every pipeline of TestConcourseEndToEnd shares: the stack, the
// git server (HTTP, exposed in the namespace) and, when built, the control
// plane (its admin kubeconfig reaching it through the namespace).
type e2e struct {
	stack      *stack
	git        *gittest.Server
	gitURL     string
	kube       *kubetest.Env
	kubeconfig string
	busybox    v1.Image
}

// TestConcourseEndToEnd runs pipelines-examples/push-direct, flux and argocd
// (without their image build: testdata/pipeline.yml) on a real Concourse:
// the gitops image from this tree, pulled from a local registry by the
// worker, bumps the version in a git repo, writes the new tag into the config
// repo and delivers it: applied and rolled out (direct), or handed to a real
// Flux or Argo CD and waited for. Without a control plane (outside CI) only
// the git part of push-direct runs; without the agents, their pipelines skip.
//
// GITOPS_DEMO=1 (make demo) runs push-direct only and keeps the stack up
// afterwards, printing where to look, until interrupted.
func TestConcourseEndToEnd(t *testing.T) {
	needRuntime(t)
	start := time.Now()
	s := startStack(t)
	upTook := time.Since(start)

	// Images: ours, built from this tree as `make image` builds it, and
	// busybox for the task (and as the app's image in the pull styles,
	// which pin it by digest).
	e := &e2e{stack: s, git: gittest.New(t), busybox: busyboxImage(t)}
	pushImage(t, s, s.env["REGISTRY"]+"/gitops-resource:e2e")
	push(t, s, e.busybox, s.env["REGISTRY"]+"/busybox:latest")
	e.gitURL = "http://" + exposeIn(t, s, e.git.HTTPAddr())
	if e.kube = controlPlane(t); e.kube != nil {
		u, err := url.Parse(e.kube.Host())
		require.NoError(t, err)
		e.kubeconfig = kubeconfigVia(t, e.kube, exposeIn(t, s, u.Host))
	}
	t.Logf("stack up in %s", upTook.Round(100*time.Millisecond))

	t.Run("push-direct", e.pushDirect)
	if os.Getenv("GITOPS_DEMO") != "" {
		return
	}
	t.Run("flux", e.flux)
	t.Run("argocd", e.argoCD)
	t.Logf("total %s", time.Since(start).Round(100*time.Millisecond))
}

// pushDirect: example (a), semver → manifest → cluster direct.
func (e *e2e) pushDirect(t *testing.T) {
	const webRepository = "registry.example.com/acme/web"
	cfg := e.repos(t, "direct", deployment(webRepository+":0.1.0"))
	vars := map[string]string{"image-repository": webRepository}
	var ns string
	if e.kube != nil {
		ns = e.kube.Namespace(t)
		vars["namespace"] = ns
	}
	e.deliver(t, "direct", vars)

	got := e.git.Git(t, cfg, "show", "main:deploy/deployment.yaml")
	require.Equal(t, deployment(webRepository+":0.1.1"), got+"\n", "only the tag changes")
	trailers := e.git.Git(t, cfg, "log", "-1", "--format=%B", "main")
	require.Contains(t, trailers, "build-and-deploy", "the commit links back to the build:\n%s", trailers)
	if e.kube != nil {
		e.requireRunning(t, ns, webRepository+":0.1.1")
	}
	if os.Getenv("GITOPS_DEMO") != "" {
		e.hold(t, ns) // inside the subtest: its namespace stays while people look
	}
}

// flux: example (b), the config pinned by digest, then the flux put waits
// for a real Flux to apply that commit.
func (e *e2e) flux(t *testing.T) {
	e.needKube(t)
	agenttest.StartFlux(t, e.kube)
	repo, digest := e.appImage(t)
	cfg := e.repos(t, "flux", deployment(repo+":0.1.0"))
	ns := e.kube.Namespace(t)
	agenttest.Apply(t, e.kube, ns, agenttest.FluxKustomization("web", e.git.HTTPURL(cfg), "./deploy", ns, 30*time.Second))
	e.deliver(t, "flux", map[string]string{"image-repository": repo, "namespace": ns})
	e.requirePulled(t, cfg, ns, repo+":0.1.1@"+digest)
}

// argoCD: example (c), the same with a real Argo CD and sync: true.
func (e *e2e) argoCD(t *testing.T) {
	e.needKube(t)
	argo := agenttest.StartArgoCD(t, e.kube)
	repo, digest := e.appImage(t)
	cfg := e.repos(t, "argocd", deployment(repo+":0.1.0"))
	ns := e.kube.Namespace(t)
	agenttest.Apply(t, e.kube, argo.Namespace(), agenttest.ArgoCDApplication(ns, e.git.HTTPURL(cfg), "deploy", ns))
	e.deliver(t, "argocd", map[string]string{"image-repository": repo, "namespace": argo.Namespace(), "application": ns})
	e.requirePulled(t, cfg, ns, repo+":0.1.1@"+digest)
}

func (e *e2e) needKube(t *testing.T) {
	t.Helper()
	if e.kube == nil {
		t.Skip("no control plane: `make tools` builds it")
	}
}

// repos creates <mode>-app (the version line) and <mode>-config (deploy/
// holding doc) and returns the config repo's name.
func (e *e2e) repos(t *testing.T, mode, doc string) string {
	t.Helper()
	app, cfg := mode+"-app", mode+"-config"
	e.git.CreateRepo(t, app)
	e.git.Commit(t, app, "version", map[string]string{"version": "0.1.0"}, "start at 0.1.0")
	e.git.CreateRepo(t, cfg)
	e.git.Commit(t, cfg, "main", map[string]string{"deploy/deployment.yaml": doc}, "web at 0.1.0")
	return cfg
}

// appImage stands in for the image the build pushed: web:0.1.1 (the version
// the pipeline bumps to) in the stack's registry. It returns the repository
// and the digest the config must pin.
func (e *e2e) appImage(t *testing.T) (repo, digest string) {
	t.Helper()
	repo = e.stack.env["REGISTRY"] + "/web"
	push(t, e.stack, e.busybox, repo+":0.1.1")
	d, err := e.busybox.Digest()
	require.NoError(t, err)
	return repo, d.String()
}

// deliver renders the pipeline for mode, sets it with vars, checks each
// resource, then triggers the job and requires a green build; it also checks
// the version line moved to 0.1.1.
func (e *e2e) deliver(t *testing.T, mode string, vars map[string]string) {
	t.Helper()
	s := e.stack
	cluster := e.kube != nil
	vars["registry"] = s.env["REGISTRY"]
	vars["git"] = e.gitURL
	vars["app-repo"], vars["config-repo"] = mode+"-app", mode+"-config"
	if cluster {
		vars["kubeconfig"] = e.kubeconfig
	}
	dir := t.TempDir()
	pipelineFile := renderPipeline(t, dir, mode, cluster)
	varsFile := filepath.Join(dir, "vars.yml")
	b, err := yaml.Marshal(vars)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(varsFile, b, 0o600))

	p := mode
	s.fly(t, "validate-pipeline", "--strict", "-c", pipelineFile, "-l", varsFile)
	s.fly(t, "set-pipeline", "-n", "-p", p, "-c", pipelineFile, "-l", varsFile)
	s.fly(t, "unpause-pipeline", "-p", p)
	// A failing check leaves a triggered build pending forever: check each
	// resource first, so a broken image or source fails here, with its log.
	resources := []string{"version", "config"}
	if cluster {
		resources = append(resources, "cluster")
	}
	for _, r := range resources {
		s.fly(t, "check-resource", "-r", p+"/"+r)
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	out, err := s.run(ctx, s.env["FLY"], "-t", "e2e", "trigger-job", "-j", p+"/build-and-deploy", "-w")
	t.Logf("── fly trigger-job -j %s/build-and-deploy -w:\n%s", p, out)
	if err != nil {
		t.Fatalf("build failed: %v", err)
	}
	require.Contains(t, out, "succeeded")
	t.Logf("trigger → green build: %s", time.Since(began).Round(100*time.Millisecond))

	app := vars["app-repo"]
	require.Equal(t, "0.1.1", e.git.Git(t, app, "show", "version:version"))
	require.Contains(t, e.git.Git(t, app, "log", "-1", "--format=%B", "version"), "0.1.1")
}

// requireRunning: the Deployment in ns runs image, rolled out.
func (e *e2e) requireRunning(t *testing.T, ns, image string) {
	t.Helper()
	d, err := e.kube.Client().AppsV1().Deployments(ns).Get(t.Context(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, image, d.Spec.Template.Spec.Containers[0].Image)
	require.Equal(t, int32(1), d.Status.ReadyReplicas, "the put waited for the rollout")
}

// requirePulled: the config repo pins ref, and the agent applied it: the
// Deployment in ns runs it when the pipeline's build is green.
func (e *e2e) requirePulled(t *testing.T, cfg, ns, ref string) {
	t.Helper()
	got := e.git.Git(t, cfg, "show", "main:deploy/deployment.yaml")
	require.Equal(t, deployment(ref), got+"\n", "only the reference changes, pinned by digest")
	e.requireRunning(t, ns, ref)
}

// renderPipeline writes testdata/pipeline.yml for mode, with or without the
// cluster part, into dir.
func renderPipeline(t *testing.T, dir, mode string, cluster bool) string {
	t.Helper()
	tmpl, err := template.ParseFiles(filepath.Join(repoRoot(), "e2e", "concourse", "testdata", "pipeline.yml"))
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, tmpl.Execute(&buf, struct {
		Mode    string
		Cluster bool
	}{mode, cluster}))
	p := filepath.Join(dir, "pipeline.yml")
	require.NoError(t, os.WriteFile(p, buf.Bytes(), 0o644))
	return p
}
