package resource

import (
	"context"
	"fmt"
	"io"
)

// Input is everything a verb of a kind gets: the request, the build dir
// (in and out only), the build environment, a log writer (stderr, redacted)
// and the redactor to register the request's secrets with.
type Input struct {
	Request Request
	Dir     string
	Env     Env
	Log     io.Writer
	Secrets *Redactor
}

// Kind is the three verbs of one kind.
type Kind struct {
	Check func(context.Context, Input) (any, error)
	In    func(context.Context, Input) (Response, error)
	Out   func(context.Context, Input) (Response, error)
}

// Logf writes one line to the log.
func (in Input) Logf(format string, args ...any) {
	fmt.Fprintf(in.Log, format+"\n", args...)
}

// NewKind assembles a kind from its typed verbs; check's versions are
// returned as the JSON array Concourse reads (never null).
func NewKind[V any](check func(context.Context, Input) ([]V, error), in, out func(context.Context, Input) (Response, error)) Kind {
	return Kind{
		Check: func(ctx context.Context, i Input) (any, error) {
			versions, err := check(ctx, i)
			if versions == nil && err == nil {
				versions = []V{}
			}
			return versions, err
		},
		In:  in,
		Out: out,
	}
}
