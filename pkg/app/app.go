package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"

	"github.com/gitops-resource/gitops-resource/pkg/cluster"
	"github.com/gitops-resource/gitops-resource/pkg/manifest"
	"github.com/gitops-resource/gitops-resource/pkg/resource"
	"github.com/gitops-resource/gitops-resource/pkg/semver"
)

// Verb is check, in or out.
type Verb string

// The verbs of the Concourse resource protocol.
const (
	Check Verb = "check"
	In    Verb = "in"
	Out   Verb = "out"
)

// kinds lists every kind by its source.kind name.
func kinds() map[string]resource.Kind {
	return map[string]resource.Kind{
		"semver":   semver.Kind(),
		"cluster":  cluster.Kind(),
		"manifest": manifest.Kind(),
	}
}

// Main runs the verb named by the program's name (argv[0]: check, in or
// out), or def when the name is none of those, and returns the exit code.
func Main(def Verb) int {
	// client-go reports through klog straight to stderr, past the redactor
	// ("Unhandled Error ... couldn't get current server API group list").
	// Every failure that matters comes back as an error; the rest is noise.
	klog.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, VerbFromName(os.Args[0], def), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
}

// VerbFromName picks the verb from the name the binary was started by.
func VerbFromName(argv0 string, def Verb) Verb {
	switch v := Verb(filepath.Base(argv0)); v {
	case Check, In, Out:
		return v
	}
	return def
}

// Run executes one verb with explicit streams, for tests.
func Run(ctx context.Context, verb Verb, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	secrets := &resource.Redactor{}
	log := secrets.Writer(stderr)
	defer log.Close()
	out, err := run(ctx, verb, args, stdin, log, secrets, getenv)
	if err != nil {
		log.Close()
		fmt.Fprintf(stderr, "error: %s\n", secrets.String(strings.TrimSpace(err.Error())))
		return 1
	}
	fmt.Fprintln(stdout, secrets.String(string(out)))
	return 0
}

func run(ctx context.Context, verb Verb, args []string, stdin io.Reader, log io.Writer, secrets *resource.Redactor, getenv func(string) string) ([]byte, error) {
	data, err := io.ReadAll(stdin)
	if err != nil {
		return nil, fmt.Errorf("read the request from stdin: %w", err)
	}
	req, err := resource.ParseRequest(data)
	if err != nil {
		return nil, err
	}
	name, err := req.Kind()
	if err != nil {
		return nil, err
	}
	all := kinds()
	kind, ok := all[name]
	if !ok {
		names := make([]string, 0, len(all))
		for n := range all {
			names = append(names, n)
		}
		sort.Strings(names)
		if name == "" {
			return nil, resource.ConfigErrorf("source.kind is required: one of %s", strings.Join(names, ", "))
		}
		return nil, resource.ConfigErrorf("source.kind %q is not a kind: use one of %s", name, strings.Join(names, ", "))
	}
	in := resource.Input{Request: req, Env: resource.EnvFrom(getenv), Log: log, Secrets: secrets}
	var result any
	switch verb {
	case Check:
		result, err = kind.Check(ctx, in)
	case In, Out:
		if len(args) < 1 || args[0] == "" {
			return nil, fmt.Errorf("usage: %s <build dir>: Concourse passes the directory as the only argument", verb)
		}
		in.Dir = args[0]
		if verb == In {
			if err := os.MkdirAll(in.Dir, 0o755); err != nil {
				return nil, fmt.Errorf("create %s: %w", in.Dir, err)
			}
			result, err = kind.In(ctx, in)
		} else {
			result, err = kind.Out(ctx, in)
		}
	default:
		return nil, fmt.Errorf("unknown verb %q: run as check, in or out", verb)
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(result)
}
