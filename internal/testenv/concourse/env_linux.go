package concourse

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/gitops-resource/gitops-resource/internal/gittest"
	"github.com/gitops-resource/gitops-resource/internal/image"
	"github.com/gitops-resource/gitops-resource/internal/testenv/kubetest"
)

// WebRepository is the app image the push-direct pipeline moves from 0.1.0
// to 0.1.1 in the config repo.
const WebRepository = "registry.example.com/acme/web"

// Env is what every pipeline shares: the stack, with this tree's image and
// busybox (the task image) in its registry; the git server, exposed in the
// namespace; and, when there is one, the control plane, its admin
// kubeconfig reaching it through the namespace.
type Env struct {
	Stack      *Stack
	Git        *gittest.Server
	GitURL     string // the git server's HTTP root, as the containers reach it
	Kube       *kubetest.Env
	Kubeconfig string // the admin kubeconfig, as the containers reach the API server
	Busybox    v1.Image
	// ResourceTag is the tag of <registry>/gitops-resource that the
	// pipelines use as their gitops resource type: e2e, this tree's image,
	// pushed by Up.
	ResourceTag string
}

// Up starts the stack and makes git and kube (nil: no cluster part)
// reachable from it. Close tears the stack down; git and kube stay the
// caller's.
func Up(ctx context.Context, log io.Writer, git *gittest.Server, kube *kubetest.Env) (_ *Env, err error) {
	busybox, err := busyboxImage()
	if err != nil {
		return nil, fmt.Errorf("busybox image: %w", err)
	}
	start := time.Now()
	s, err := Start(ctx, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Close())
		}
	}()
	upTook := time.Since(start)
	e := &Env{Stack: s, Git: git, Kube: kube, Busybox: busybox, ResourceTag: "e2e"}
	if err := s.PushImage(ctx, s.Registry()+"/gitops-resource:"+e.ResourceTag); err != nil {
		return nil, err
	}
	if err := s.Push(ctx, busybox, s.Registry()+"/busybox:latest"); err != nil {
		return nil, err
	}
	addr, err := s.Expose(git.HTTPAddr())
	if err != nil {
		return nil, err
	}
	e.GitURL = "http://" + addr
	if kube != nil {
		u, err := url.Parse(kube.Host())
		if err != nil {
			return nil, err
		}
		addr, err := s.Expose(u.Host)
		if err != nil {
			return nil, err
		}
		if e.Kubeconfig, err = kubeconfigVia(kube, addr); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(log, "stack up in %s\n", upTook.Round(100*time.Millisecond))
	return e, nil
}

// Close tears the stack down.
func (e *Env) Close() error { return e.Stack.Close() }

// Repos creates <mode>-app (the version line, at 0.1.0) and <mode>-config
// (deploy/ holding doc) and returns the config repo's name.
func (e *Env) Repos(mode, doc string) (string, error) {
	app, cfg := mode+"-app", mode+"-config"
	for _, err := range []error{
		e.Git.CreateRepoErr(app),
		commit(e.Git, app, "version", map[string]string{"version": "0.1.0"}, "start at 0.1.0"),
		e.Git.CreateRepoErr(cfg),
		commit(e.Git, cfg, "main", map[string]string{"deploy/deployment.yaml": doc}, "web at 0.1.0"),
	} {
		if err != nil {
			return "", err
		}
	}
	return cfg, nil
}

func commit(git *gittest.Server, repo, branch string, files map[string]string, message string) error {
	_, err := git.CommitErr(repo, branch, files, message)
	return err
}

// PushDirect sets up example (a), semver → manifest → cluster direct into
// namespace ns (none without a control plane), and runs it to a green
// build; it returns the config repo and the build's output.
func (e *Env) PushDirect(ctx context.Context, dir, ns string) (cfg, out string, err error) {
	if cfg, err = e.Repos("direct", Deployment(WebRepository+":0.1.0")); err != nil {
		return "", "", err
	}
	vars := map[string]string{"image-repository": WebRepository}
	if e.Kube != nil {
		vars["namespace"] = ns
	}
	out, err = e.Deliver(ctx, dir, "direct", vars)
	return cfg, out, err
}

// Deliver renders the pipeline for mode into dir, sets it with vars (the
// stack's registry, the gitops resource tag, git and kubeconfig added),
// checks each resource, then triggers the job and waits, at most five
// minutes, for a green build. It returns the build's output.
func (e *Env) Deliver(ctx context.Context, dir, mode string, vars map[string]string) (string, error) {
	s := e.Stack
	cluster := e.Kube != nil
	vars["registry"] = s.Registry()
	vars["gitops-tag"] = e.ResourceTag
	vars["git"] = e.GitURL
	vars["app-repo"], vars["config-repo"] = mode+"-app", mode+"-config"
	if cluster {
		vars["kubeconfig"] = e.Kubeconfig
	}
	pipelineFile, err := renderPipeline(dir, mode, cluster)
	if err != nil {
		return "", err
	}
	varsFile := filepath.Join(dir, "vars.yml")
	b, err := yaml.Marshal(vars)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(varsFile, b, 0o600); err != nil {
		return "", err
	}
	p := mode
	resources := []string{"version", "config"}
	if cluster {
		resources = append(resources, "cluster")
	}
	if err := s.SetPipeline(ctx, p, pipelineFile, varsFile, resources); err != nil {
		return "", err
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	out, err := s.Run(ctx, s.Fly(), "-t", "e2e", "trigger-job", "-j", p+"/build-and-deploy", "-w")
	fmt.Fprintf(s.log, "── fly trigger-job -j %s/build-and-deploy -w:\n%s\n", p, out)
	if err != nil {
		return out, fmt.Errorf("build of %s/build-and-deploy failed: %w", p, err)
	}
	fmt.Fprintf(s.log, "trigger → green build: %s\n", time.Since(began).Round(100*time.Millisecond))
	return out, nil
}

// Deployment is the config repo's Deployment, running image.
func Deployment(image string) string {
	return kubetest.Deployment("web", image+" # the tag the pipeline moves", 1)
}

// renderPipeline writes e2e/concourse/testdata/pipeline.yml for mode, with
// or without the cluster part, into dir.
func renderPipeline(dir, mode string, cluster bool) (string, error) {
	tmpl, err := template.ParseFiles(filepath.Join(Root(), "e2e", "concourse", "testdata", "pipeline.yml"))
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, struct {
		Mode    string
		Cluster bool
	}{mode, cluster}); err != nil {
		return "", fmt.Errorf("render the %s pipeline: %w", mode, err)
	}
	p := filepath.Join(dir, "pipeline.yml")
	return p, os.WriteFile(p, buf.Bytes(), 0o644)
}

// kubeconfigVia rewrites the admin kubeconfig to reach the API server at
// addr (the forwarder in the namespace), still verifying its certificate,
// which is issued to 127.0.0.1.
func kubeconfigVia(env *kubetest.Env, addr string) (string, error) {
	cfg, err := clientcmd.Load(env.Kubeconfig())
	if err != nil {
		return "", err
	}
	for _, c := range cfg.Clusters {
		u, err := url.Parse(c.Server)
		if err != nil {
			return "", err
		}
		c.TLSServerName = u.Hostname()
		u.Host = addr
		c.Server = u.String()
	}
	b, err := clientcmd.Write(*cfg)
	return string(b), err
}

// busyboxImage is the task image: busybox-static, and sh beside it linking
// to it.
func busyboxImage() (v1.Image, error) {
	r := newRootfs()
	bb, err := filepath.EvalSymlinks("/bin/busybox") // /usr/bin/busybox where /bin links to usr/bin
	if err != nil {
		return nil, err
	}
	if err := r.add("/bin/busybox"); err != nil {
		return nil, err
	}
	r.symlink(strings.TrimPrefix(filepath.Join(filepath.Dir(bb), "sh"), "/"), "busybox")
	r.dir("etc/", 0o755)
	r.dir("tmp/", 0o1777)
	layer, err := r.tar()
	if err != nil {
		return nil, err
	}
	img, _, err := image.Image(layer, v1.Platform{OS: "linux", Architecture: "amd64"}, []string{"PATH=/bin"}, nil, gzip.BestSpeed)
	return img, err
}
