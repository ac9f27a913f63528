package kube

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// FieldManager is the server-side apply field manager of every object this
// resource applies.
const FieldManager = "gitops-resource"

// Client talks to one cluster.
type Client struct {
	config       *rest.Config
	host         string
	namespace    string
	fieldManager string
	log          io.Writer
	secrets      secretsSeen // values of the Secrets applied or read (mask.go)

	dyn    dynamic.Interface
	typed  kubernetes.Interface
	disc   discovery.CachedDiscoveryInterface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

// Option configures New.
type Option func(*options)

type options struct {
	kubeconfig   []byte
	context      string
	server       string
	token        string
	ca           []byte
	insecure     bool
	namespace    string
	restConfig   *rest.Config
	log          io.Writer
	fieldManager string
	qps          float32
	burst        int
}

// Defaults, in one place: no log, field manager "gitops-resource", namespace
// from the kubeconfig context else "default", 200 requests/s with bursts of
// 400: an apply of a hundred objects makes about 300 requests (dry run,
// apply, watches), and client-go's 5/10 (or even 50/100) would spend
// seconds waiting on the client-side limiter; the API server's own priority
// and fairness protects it.
func defaults() options {
	return options{log: io.Discard, fieldManager: FieldManager, qps: 200, burst: 400}
}

// WithKubeconfig authenticates with an inline kubeconfig (YAML), using
// context (its current context when empty).
func WithKubeconfig(data []byte, context string) Option {
	return func(o *options) { o.kubeconfig, o.context = data, context }
}

// WithToken authenticates with a bearer token against server, verifying it
// with the PEM bundle ca (the system roots when empty).
func WithToken(server, token string, ca []byte) Option {
	return func(o *options) { o.server, o.token, o.ca = server, token, ca }
}

// WithInsecureSkipTLSVerify turns off verification of the server's
// certificate. It is refused together with a CA.
func WithInsecureSkipTLSVerify() Option { return func(o *options) { o.insecure = true } }

// WithNamespace is the namespace of objects that name none.
func WithNamespace(ns string) Option { return func(o *options) { o.namespace = ns } }

// WithRESTConfig uses cfg as it is (tests, programs that have one).
func WithRESTConfig(cfg *rest.Config) Option {
	return func(o *options) { o.restConfig = rest.CopyConfig(cfg) }
}

// WithLog writes progress lines to w.
func WithLog(w io.Writer) Option { return func(o *options) { o.log = w } }

// WithFieldManager overrides the server-side apply field manager.
func WithFieldManager(name string) Option { return func(o *options) { o.fieldManager = name } }

// New builds a client. It makes no request: the first call reports an
// unreachable server or rejected credentials.
func New(opts ...Option) (*Client, error) {
	o := defaults()
	for _, opt := range opts {
		opt(&o)
	}
	cfg, ns, err := o.restConfigAndNamespace()
	if err != nil {
		return nil, err
	}
	if o.namespace != "" {
		ns = o.namespace
	}
	if ns == "" {
		ns = "default"
	}
	cfg.QPS, cfg.Burst = o.qps, o.burst
	cfg.UserAgent = "gitops-resource"
	c := &Client{config: cfg, host: cfg.Host, namespace: ns, fieldManager: o.fieldManager, log: o.log}
	// Warnings (deprecations, admission policies that warn) go to the
	// (redacted) log, not straight to stderr, with Secret values hidden.
	cfg.WarningHandler = hidingWarnings{&c.secrets, rest.NewWarningWriter(o.log, rest.WarningWriterOptions{Deduplicate: true})}
	if c.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", cfg.Host, err)
	}
	if c.typed, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", cfg.Host, err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes discovery client for %s: %w", cfg.Host, err)
	}
	c.disc = memory.NewMemCacheClient(dc)
	c.mapper = restmapper.NewDeferredDiscoveryRESTMapper(c.disc)
	return c, nil
}

func (o options) restConfigAndNamespace() (*rest.Config, string, error) {
	var errs []error
	sources := 0
	for _, set := range []bool{len(o.kubeconfig) > 0, o.server != "" || o.token != "", o.restConfig != nil} {
		if set {
			sources++
		}
	}
	if sources > 1 {
		errs = append(errs, ConfigError{"use either kubeconfig or server with token, not both"})
	}
	if sources == 0 {
		errs = append(errs, ConfigError{"no credentials: set kubeconfig, or server and token"})
	}
	if o.insecure && len(o.ca) > 0 {
		errs = append(errs, ConfigError{"insecure_skip_tls_verify and certificate_authority contradict each other: keep one"})
	}
	if o.server != "" && o.token == "" {
		errs = append(errs, ConfigError{"server needs token"})
	}
	if o.token != "" && o.server == "" {
		errs = append(errs, ConfigError{"token needs server (the API server URL, https://host:6443)"})
	}
	if o.context != "" && len(o.kubeconfig) == 0 {
		errs = append(errs, ConfigError{"context selects a kubeconfig context: it needs kubeconfig"})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, "", err
	}
	switch {
	case o.restConfig != nil:
		if o.insecure {
			tls := &o.restConfig.TLSClientConfig
			tls.Insecure, tls.CAData, tls.CAFile = true, nil, ""
		}
		return o.restConfig, "", nil
	case len(o.kubeconfig) > 0:
		return o.fromKubeconfig()
	}
	if !strings.HasPrefix(o.server, "https://") && !strings.HasPrefix(o.server, "http://") {
		return nil, "", ConfigError{fmt.Sprintf("server %q must be a URL such as https://host:6443", o.server)}
	}
	cfg := &rest.Config{Host: o.server, BearerToken: o.token}
	cfg.TLSClientConfig = rest.TLSClientConfig{CAData: o.ca, Insecure: o.insecure}
	return cfg, "", nil
}

// yamlLine finds "line N" in a YAML error without echoing any content.
var yamlLine = regexp.MustCompile(`line \d+`)

func (o options) fromKubeconfig() (*rest.Config, string, error) {
	raw, err := clientcmd.Load(o.kubeconfig)
	if err != nil {
		where := ""
		if l := yamlLine.FindString(err.Error()); l != "" {
			where = " (at " + l + ")"
		}
		// The loader's message can quote the document: never pass it on.
		return nil, "", ConfigError{"kubeconfig is not a valid kubeconfig" + where + ": paste the whole file as YAML, e.g. ((kubeconfig)) from your credential manager"}
	}
	if len(raw.Contexts) == 0 && len(raw.Clusters) == 0 {
		return nil, "", ConfigError{"kubeconfig has no clusters or contexts: paste the whole file as YAML"}
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: o.context}
	if o.insecure {
		overrides.ClusterInfo.InsecureSkipTLSVerify = true
	}
	if o.context != "" {
		if _, ok := raw.Contexts[o.context]; !ok {
			return nil, "", ConfigError{fmt.Sprintf("context %q is not in the kubeconfig: it has %s", o.context, contextNames(raw))}
		}
	}
	if err := noPlugins(raw, o.context); err != nil {
		return nil, "", err
	}
	cc := clientcmd.NewDefaultClientConfig(*raw, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", ConfigError{"kubeconfig: " + sanitizeKubeconfigError(err) + ": check its current-context, clusters and users"}
	}
	if o.insecure {
		cfg.TLSClientConfig.CAData, cfg.TLSClientConfig.CAFile = nil, ""
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		ns = ""
	}
	return cfg, ns, nil
}

// noPlugins refuses a kubeconfig whose user (of context, else of the
// current context) gets its credentials from a program or an auth
// provider: the image holds nothing but this binary, and client-go would
// only fail at the first request, trying to run it.
func noPlugins(raw *clientcmdapi.Config, context string) error {
	if context == "" {
		context = raw.CurrentContext
	}
	ctx, ok := raw.Contexts[context]
	if !ok {
		return nil // client-go's loader says what is missing
	}
	user, ok := raw.AuthInfos[ctx.AuthInfo]
	var plugin string
	switch {
	case !ok:
		return nil
	case user.Exec != nil:
		plugin = fmt.Sprintf("the exec credential plugin %q", user.Exec.Command)
	case user.AuthProvider != nil:
		plugin = fmt.Sprintf("the auth provider %q", user.AuthProvider.Name)
	default:
		return nil
	}
	return ConfigError{fmt.Sprintf("kubeconfig user %q gets its credentials from %s, and the image has no credential plugins "+
		"(no aws, gke-gcloud-auth-plugin, kubelogin): use a ServiceAccount token instead, in the kubeconfig's user (token:) "+
		"or as source.server with source.token (a put may read it from params.token_file)", ctx.AuthInfo, plugin)}
}

func contextNames(c *clientcmdapi.Config) string {
	var names []string
	for n := range c.Contexts {
		names = append(names, fmt.Sprintf("%q", n))
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// sanitizeKubeconfigError keeps the loader's reasoning but drops anything
// that looks like data (long tokens).
var longToken = regexp.MustCompile(`[A-Za-z0-9+/=_\-.]{40,}`)

func sanitizeKubeconfigError(err error) string {
	return longToken.ReplaceAllString(err.Error(), "[…]")
}

// KubeconfigSecrets returns the credential values inside a kubeconfig (tokens,
// passwords, keys), to register for redaction. It never fails: an unparsable
// kubeconfig is redacted as a whole by the caller.
func KubeconfigSecrets(data []byte) []string {
	raw, err := clientcmd.Load(data)
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range raw.AuthInfos {
		out = append(out, a.Token, a.Password, string(a.ClientKeyData), string(a.ClientCertificateData))
		if a.AuthProvider != nil {
			for _, v := range a.AuthProvider.Config {
				out = append(out, v)
			}
		}
		if a.Exec != nil {
			for _, e := range a.Exec.Env {
				out = append(out, e.Value)
			}
		}
	}
	return out
}

// Host is the API server URL.
func (c *Client) Host() string { return c.host }

// Namespace is the namespace of objects that name none.
func (c *Client) Namespace() string { return c.namespace }

// Typed is the typed clientset (pods, events, replica sets).
func (c *Client) Typed() kubernetes.Interface { return c.typed }

// Dynamic is the dynamic client.
func (c *Client) Dynamic() dynamic.Interface { return c.dyn }

// ConfigError is a mistake in the client configuration; callers turn it
// into the protocol's terminal config error.
type ConfigError struct{ Msg string }

func (e ConfigError) Error() string { return e.Msg }
