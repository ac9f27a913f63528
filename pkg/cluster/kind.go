package cluster

import (
	"context"
	"time"

	"github.com/gitops-resource/gitops-resource/pkg/kube"
	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

// Kind is the cluster kind's verbs.
func Kind() resource.Kind { return resource.NewKind(Check, In, Out) }

// mode is one way of delivering: direct applies itself; flux and argocd
// ask an in-cluster agent (agent.go). Each gets its verb's request, decoded
// and validated (request.go), and a connected client.
type mode interface {
	check(ctx context.Context, in resource.Input, req checkRequest, c *kube.Client) ([]Version, error)
	in(ctx context.Context, in resource.Input, req inRequest, c *kube.Client) (resource.Response, error)
	out(ctx context.Context, in resource.Input, req outRequest, c *kube.Client) (resource.Response, error)
}

// modeOf is the implementation of a valid source's mode.
func modeOf(src *Source) mode {
	switch {
	case src.Mode == ModeDirect:
		return direct{}
	case src.Mode == ModeArgoCD:
		return agent{argocd{}}
	case src.Kustomization == "":
		return helmAgent{} // mode flux with source.helmrelease alone
	}
	return agent{flux{}}
}

// Check reports the live state as a version: the images of
// source.resources (mode direct), the revision the agent applied (modes
// flux and argocd).
func Check(ctx context.Context, in resource.Input) ([]Version, error) {
	return serve(ctx, in, parseCheckRequest, mode.check)
}

// In waits for source.resources (or the agent's object) to be ready and
// writes their state.
func In(ctx context.Context, in resource.Input) (resource.Response, error) {
	return serve(ctx, in, parseInRequest, mode.in)
}

// Out delivers the manifests of params.path and waits for them (mode
// direct), or waits for the agent to apply params.revision.
func Out(ctx context.Context, in resource.Input) (resource.Response, error) {
	return serve(ctx, in, parseOutRequest, mode.out)
}

// request is what serve needs of a verb's request.
type request interface {
	source() *Source
	timeout() time.Duration
}

// serve runs a verb: decode and validate its request (every config problem
// at once, before any network I/O), connect as the source says for at most
// the request's timeout, and hand both to the source's mode.
func serve[R request, T any](ctx context.Context, in resource.Input, parse func(resource.Input) (R, error), verb func(mode, context.Context, resource.Input, R, *kube.Client) (T, error)) (T, error) {
	var none T
	req, err := parse(in)
	if err != nil {
		return none, err
	}
	c, err := req.source().client(in.Log)
	if err != nil {
		return none, err
	}
	ctx, cancel := context.WithTimeout(ctx, req.timeout())
	defer cancel()
	return verb(modeOf(req.source()), ctx, in, req, c)
}
