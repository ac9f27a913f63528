package cluster

import (
	"context"
	"errors"

	"github.com/gitops-resource/gitops-resource/pkg/kube"
	"github.com/gitops-resource/gitops-resource/pkg/resource"
)

// Kind is the cluster kind's verbs.
func Kind() resource.Kind { return resource.NewKind(Check, In, Out) }

// mode is one way of delivering: direct applies itself; flux and argocd
// ask an in-cluster agent (agent.go). Each gets a validated source
// and a connected client.
type mode interface {
	check(ctx context.Context, in resource.Input, src *Source, c *kube.Client) ([]Version, error)
	in(ctx context.Context, in resource.Input, src *Source, c *kube.Client) (resource.Response, error)
	out(ctx context.Context, in resource.Input, src *Source, c *kube.Client) (resource.Response, error)
}

// modes maps source.mode to its implementation.
var modes = map[string]mode{
	ModeDirect: direct{},
	ModeFlux:   agent{flux{}},
	ModeArgoCD: agent{argocd{}},
}

// open validates the source (and, through validate, the params) and
// connects. Every config problem is reported at once, before any network I/O.
func open(in resource.Input, validate func(mode string) error) (*Source, mode, *kube.Client, error) {
	src, err := parseSource(in)
	var perr error
	if validate != nil {
		m := ModeDirect
		if src != nil {
			m = src.Mode
		}
		perr = validate(m)
	}
	if err := errors.Join(err, perr); err != nil {
		return nil, nil, nil, err
	}
	m, ok := modes[src.Mode]
	if src.Mode == ModeFlux && src.Kustomization == "" {
		m = helmAgent{} // source.helmrelease alone
	}
	if !ok {
		return nil, nil, nil, resource.ConfigErrorf("source.mode %q is not a mode: use direct, flux or argocd", src.Mode)
	}
	c, err := src.client(in.Log)
	if err != nil {
		return nil, nil, nil, err
	}
	return src, m, c, nil
}

// Check reports the live state as a version: the images of
// source.resources (mode direct).
func Check(ctx context.Context, in resource.Input) ([]Version, error) {
	src, m, c, err := open(in, nil)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, src.Timeout.Or(DefaultTimeout))
	defer cancel()
	return m.check(ctx, in, src, c)
}

// In waits for source.resources to be ready and writes their state.
func In(ctx context.Context, in resource.Input) (resource.Response, error) {
	var params *InParams
	src, m, c, err := open(in, func(string) (err error) { params, err = parseInParams(in); return err })
	if err != nil {
		return resource.Response{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, params.Timeout.Or(src.Timeout.Or(DefaultTimeout)))
	defer cancel()
	return m.in(ctx, in, src, c)
}

// Out delivers the manifests of params.path and waits for them.
func Out(ctx context.Context, in resource.Input) (resource.Response, error) {
	src, m, c, err := open(in, func(mode string) error {
		if mode == ModeFlux || mode == ModeArgoCD {
			_, err := parseAgentParams(in, mode)
			return err
		}
		_, err := parseOutParams(in)
		return err
	})
	if err != nil {
		return resource.Response{}, err
	}
	return m.out(ctx, in, src, c)
}
