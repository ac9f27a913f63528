package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

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

// kinds lists the kinds check, in and out run themselves, by their
// source.kind name: the git kinds, so that this binary links neither
// client-go, whose package init alone took ~7 ms of every check, nor
// kustomize (~24 MB of code), which only cluster and artifact need.
func kinds() map[string]resource.Kind {
	return map[string]resource.Kind{
		"semver":   semver.Kind(),
		"manifest": manifest.Kind(),
	}
}

// siblings lists the kinds check, in and out hand to another binary, by
// their source.kind name: the file name of that binary, in the directory of
// this one (/opt/resource/cluster, built from ./cluster: pkg/app/clusterapp).
// artifact runs there too: it links kustomize, as cluster does, and the
// image then carries kustomize's code once.
var siblings = map[string]string{"cluster": "cluster", "artifact": "cluster"}

// Binary is what one binary runs: the kinds it runs itself, and the kinds
// it hands to a sibling binary (source.kind → the sibling's file name).
type Binary struct {
	Kinds    map[string]resource.Kind
	Siblings map[string]string
}

// Main runs the verb named by the program's name (argv[0]: check, in or
// out), or def when the name is none of those, and returns the exit code.
// A request of another binary's kind is handed to it: that process replaces
// this one (handOff), and Main does not return.
func Main(def Verb) int {
	return Binary{Kinds: kinds(), Siblings: siblings}.Main(def)
}

// Main is the main of binary b: see the package's Main.
func (b Binary) Main(def Verb) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return b.run(ctx, VerbFromName(os.Args[0], def), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv, handOff)
}

// VerbFromName picks the verb from the name the binary was started by.
func VerbFromName(argv0 string, def Verb) Verb {
	switch v := Verb(filepath.Base(argv0)); v {
	case Check, In, Out:
		return v
	}
	return def
}

// Run executes one verb of check, in and out with explicit streams, in this
// process, for tests. A request of another binary's kind fails: that kind
// runs in a process of its own.
func Run(ctx context.Context, verb Verb, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	return Binary{Kinds: kinds(), Siblings: siblings}.run(ctx, verb, args, stdin, stdout, stderr, getenv, nil)
}

// handOffFunc replaces this process with the binary named sibling, giving
// it the verb, args and the request read from stdin; it returns only when
// that fails.
type handOffFunc func(verb Verb, sibling string, args []string, request []byte) error

func (b Binary) run(ctx context.Context, verb Verb, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string, handOff handOffFunc) int {
	secrets := &resource.Redactor{}
	log := secrets.Writer(stderr)
	defer log.Close()
	out, err := b.respond(ctx, verb, args, stdin, log, secrets, getenv, handOff)
	if err != nil {
		log.Close()
		fmt.Fprintf(stderr, "error: %s\n", secrets.String(strings.TrimSpace(err.Error())))
		return 1
	}
	fmt.Fprintln(stdout, secrets.String(string(out)))
	return 0
}

func (b Binary) respond(ctx context.Context, verb Verb, args []string, stdin io.Reader, log io.Writer, secrets *resource.Redactor, getenv func(string) string, handOff handOffFunc) ([]byte, error) {
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
	if sibling, ok := b.Siblings[name]; ok {
		if handOff == nil {
			return nil, fmt.Errorf("source.kind %q runs in the %s binary, not in this process", name, sibling)
		}
		return nil, handOff(verb, sibling, args, data)
	}
	kind, ok := b.Kinds[name]
	if !ok {
		names := slices.Concat(slices.Collect(maps.Keys(b.Kinds)), slices.Collect(maps.Keys(b.Siblings)))
		slices.Sort(names)
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
