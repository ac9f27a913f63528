package kubetest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/gitops-resource/gitops-resource/internal/proc"
)

// Environment variables read by this package.
const (
	// EnvKubeconfig names a kubeconfig file of a running control plane to use
	// instead of starting one (hack/cluster.sh prints it).
	EnvKubeconfig = "GITOPS_TEST_KUBECONFIG"
	// EnvBinDir names the dir holding the control-plane binaries.
	EnvBinDir = "GITOPS_K8S_BIN"
)

// ErrNoBinaries is wrapped by errors of Start when the control-plane binaries
// are not built. New and Suite skip the test outside CI and fail it in CI.
var ErrNoBinaries = errors.New("binaries are missing")

// Mode selects the components Start runs. A Mode is an Option.
type Mode int

const (
	// APIOnly runs etcd and kube-apiserver: CRDs, status subresources, RBAC.
	// Nothing reconciles: no pods, no garbage collection, no namespace deletion.
	APIOnly Mode = iota
	// Full also runs kube-controller-manager, kube-scheduler and kwok managing
	// one fake Node, so workloads are scheduled and their pods become ready.
	Full
)

func (m Mode) String() string {
	switch m {
	case APIOnly:
		return "api-only"
	case Full:
		return "full"
	default:
		return "Mode(" + strconv.Itoa(int(m)) + ")"
	}
}

func (m Mode) apply(o *options) { o.mode = m }

// Option configures Start, New and Suite.Main.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	mode         Mode
	binDir       string
	reuse        bool
	log          io.Writer
	startTimeout time.Duration
}

// defaults: APIOnly, binaries from GITOPS_K8S_BIN or the build cache, reuse of
// GITOPS_TEST_KUBECONFIG, no progress output, two minutes to start.
func defaults() options {
	return options{mode: APIOnly, reuse: true, log: io.Discard, startTimeout: 2 * time.Minute}
}

// WithBinDir takes the binaries from dir, overriding GITOPS_K8S_BIN.
func WithBinDir(dir string) Option { return optionFunc(func(o *options) { o.binDir = dir }) }

// WithLog writes one line per started component (address, time to ready) to w.
// Component output itself goes to log files in Env.Dir.
func WithLog(w io.Writer) Option { return optionFunc(func(o *options) { o.log = w }) }

// WithStartTimeout bounds the bring-up (default 2m).
func WithStartTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.startTimeout = d })
}

// NoReuse always starts a control plane, ignoring GITOPS_TEST_KUBECONFIG.
func NoReuse() Option { return optionFunc(func(o *options) { o.reuse = false }) }

// Env is a running control plane, started by this package or reused.
type Env struct {
	mode           Mode
	config         *rest.Config
	client         kubernetes.Interface
	kubeconfig     []byte
	kubeconfigPath string
	node           string
	dir            string // removed by Stop; "" when reused
	tiers          [][]*proc.Process
	log            io.Writer

	stopOnce sync.Once
	stopped  atomic.Bool
	stopErr  error
}

// Start starts a control plane in the given Mode (default APIOnly) and returns
// once it is ready. ctx bounds the start only; Stop ends the processes. When
// GITOPS_TEST_KUBECONFIG is set (and NoReuse not given), Start connects to that
// control plane instead and Stop leaves it running.
func Start(ctx context.Context, opts ...Option) (*Env, error) {
	o := defaults()
	for _, opt := range opts {
		opt.apply(&o)
	}
	if o.mode != APIOnly && o.mode != Full {
		return nil, fmt.Errorf("start control plane: unknown mode %v", o.mode)
	}
	ctx, cancel := context.WithTimeout(ctx, o.startTimeout)
	defer cancel()
	if path := os.Getenv(EnvKubeconfig); o.reuse && path != "" {
		env, err := attach(ctx, path, o)
		if err != nil {
			return nil, fmt.Errorf("use control plane from %s=%s: %w", EnvKubeconfig, path, err)
		}
		return env, nil
	}
	for attempt := 1; ; attempt++ {
		env, err := start(ctx, o)
		if errors.Is(err, errAddrInUse) && attempt < 3 {
			fmt.Fprintf(o.log, "kubetest: %v; starting again on other ports\n", err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("start %v control plane: %w", o.mode, err)
		}
		return env, nil
	}
}

// Mode is the mode the control plane runs in.
func (e *Env) Mode() Mode { return e.mode }

// Config returns a copy of the admin (system:masters) client config.
func (e *Env) Config() *rest.Config { return rest.CopyConfig(e.config) }

// Client is an admin clientset.
func (e *Env) Client() kubernetes.Interface { return e.client }

// Kubeconfig is the admin kubeconfig as inline YAML (certificates embedded),
// the way a pipeline passes source.kubeconfig.
func (e *Env) Kubeconfig() []byte { return e.kubeconfig }

// KubeconfigPath is a file holding Kubeconfig.
func (e *Env) KubeconfigPath() string { return e.kubeconfigPath }

// Host is the API server URL, https://127.0.0.1:<port>.
func (e *Env) Host() string { return e.config.Host }

// CAData is the PEM CA bundle that verifies the API server.
func (e *Env) CAData() []byte { return e.config.CAData }

// NodeName is the fake Node that kwok keeps Ready in Full mode ("" in APIOnly).
func (e *Env) NodeName() string { return e.node }

// Dir holds the key material, etcd data and one <component>.log per process;
// "" for a reused control plane. Stop removes it.
func (e *Env) Dir() string { return e.dir }

// Reused reports whether the Env is a control plane from GITOPS_TEST_KUBECONFIG.
func (e *Env) Reused() bool { return e.dir == "" }

// Stop stops every process Start started, dependents first, each by its
// process group (SIGTERM, then SIGKILL after a grace period), and removes Dir.
// It is safe to call more than once; a reused control plane is left running.
func (e *Env) Stop() error {
	e.stopOnce.Do(func() {
		e.stopped.Store(true)
		var errs []error
		for i := len(e.tiers) - 1; i >= 0; i-- {
			tier := e.tiers[i]
			tierErrs := make([]error, len(tier))
			var wg sync.WaitGroup
			for j, p := range tier {
				wg.Go(func() { tierErrs[j] = p.Stop(5 * time.Second) })
			}
			wg.Wait()
			errs = append(errs, tierErrs...)
		}
		if e.dir != "" {
			if err := os.RemoveAll(e.dir); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", e.dir, err))
			}
		}
		if err := errors.Join(errs...); err != nil {
			e.stopErr = fmt.Errorf("stop control plane: %w", err)
		}
	})
	return e.stopErr
}

// attach connects to the control plane of the kubeconfig file at path.
func attach(ctx context.Context, path string, o options) (*Env, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read kubeconfig: %w", err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(data)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	env := &Env{mode: o.mode, config: cfg, kubeconfig: data, kubeconfigPath: path, log: o.log}
	if env.client, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("create client: %w", err)
	}
	if err := env.waitAPIServer(ctx, nil); err != nil {
		return nil, err
	}
	if o.mode == Full {
		if env.node, err = env.findFakeNode(ctx); err != nil {
			return nil, err
		}
	}
	return env, nil
}

// start runs the components of o.mode and waits until they are ready.
func start(ctx context.Context, o options) (_ *Env, err error) {
	bins, err := findBinaries(ctx, o.binDir)
	if err != nil {
		return nil, err
	}
	removeStaleDirs()
	dir, err := os.MkdirTemp("", workDirPrefix)
	if err != nil {
		return nil, fmt.Errorf("create work dir: %w", err)
	}
	env := &Env{mode: o.mode, dir: dir, log: o.log}
	// Whatever goes wrong below, a panic included, nothing started stays running.
	defer func() {
		if err != nil {
			_ = env.Stop()
		}
	}()
	began := time.Now()

	if err := writeFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid()))); err != nil {
		return nil, err
	}
	pki, err := newPKI(dir)
	if err != nil {
		return nil, err
	}
	ports, err := proc.FreePorts(5)
	if err != nil {
		return nil, err
	}
	etcdPort, peerPort, apiPort, kcmPort, schedPort := ports[0], ports[1], ports[2], ports[3], ports[4]

	env.config = &rest.Config{
		Host: "https://127.0.0.1:" + strconv.Itoa(apiPort),
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   pki.caPEM,
			CertData: pki.adminCertPEM,
			KeyData:  pki.adminKeyPEM,
		},
		QPS:   100,
		Burst: 200,
	}
	env.kubeconfig, err = kubeconfig(env.config.Host, pki.caPEM, "kubetest-admin", clientcmdapi.AuthInfo{
		ClientCertificateData: pki.adminCertPEM,
		ClientKeyData:         pki.adminKeyPEM,
	}, "")
	if err != nil {
		return nil, err
	}
	env.kubeconfigPath = filepath.Join(dir, "kubeconfig")
	if err := writeFile(env.kubeconfigPath, env.kubeconfig); err != nil {
		return nil, err
	}
	if env.client, err = kubernetes.NewForConfig(env.config); err != nil {
		return nil, fmt.Errorf("create client: %w", err)
	}

	// etcd
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	etcd, err := env.launch(0, "etcd", bins, dir,
		"--name=kubetest",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubetest="+peerURL,
		"--initial-cluster-state=new",
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err != nil {
		return nil, err
	}
	if err := env.waitHTTP(ctx, etcd, http.DefaultClient, etcdURL+"/health"); err != nil {
		return nil, err
	}

	// kube-apiserver
	api, err := env.launch(1, "kube-apiserver", bins, dir,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		"--tls-cert-file="+pki.serverCert,
		"--tls-private-key-file="+pki.serverKey,
		"--client-ca-file="+pki.caCert,
		"--authorization-mode=Node,RBAC",
		"--endpoint-reconciler-type=none",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+pki.saPub,
		"--service-account-signing-key-file="+pki.saKey,
		"--allow-privileged=true",
		"--profiling=false",
	)
	if err != nil {
		return nil, err
	}
	if err := env.waitAPIServer(ctx, api); err != nil {
		return nil, err
	}
	if o.mode == APIOnly {
		fmt.Fprintf(o.log, "kubetest: %v control plane ready at %s in %s\n", o.mode, env.config.Host, time.Since(began).Round(time.Millisecond))
		return env, nil
	}

	// The rest only talks to the API server, so it starts at once.
	stages := filepath.Join(dir, "kwok-stages.yaml")
	if err := writeFile(stages, kwokStages); err != nil {
		return nil, err
	}
	kcm, err := env.launch(2, "kube-controller-manager", bins, dir,
		"--kubeconfig="+env.kubeconfigPath,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(kcmPort),
		"--cert-dir="+filepath.Join(dir, "kube-controller-manager"),
		"--leader-elect=false",
		"--controllers=*,-nodeipam,-service-lb-controller,-cloud-node-lifecycle",
		"--service-account-private-key-file="+pki.saKey,
		"--root-ca-file="+pki.caCert,
		"--cluster-signing-cert-file="+pki.caCert,
		"--cluster-signing-key-file="+pki.caKey,
		"--kube-api-qps=100",
		"--kube-api-burst=200",
		"--profiling=false",
	)
	if err != nil {
		return nil, err
	}
	sched, err := env.launch(2, "kube-scheduler", bins, dir,
		"--kubeconfig="+env.kubeconfigPath,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(schedPort),
		"--cert-dir="+filepath.Join(dir, "kube-scheduler"),
		"--leader-elect=false",
		"--profiling=false",
	)
	if err != nil {
		return nil, err
	}
	kwok, err := env.launch(2, "kwok", bins, dir,
		"--kubeconfig="+env.kubeconfigPath,
		"--config="+stages,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector="+fakeNodeAnnotation+"=fake",
		"--node-lease-duration-seconds=40",
		"--node-ip=127.0.0.1",
	)
	if err != nil {
		return nil, err
	}
	insecure := &http.Client{Transport: &http.Transport{
		// kube-controller-manager and kube-scheduler serve /healthz with a
		// self-signed certificate they make at start; only liveness is read.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback health probe
	}}
	if err := env.waitHTTP(ctx, kcm, insecure, "https://127.0.0.1:"+strconv.Itoa(kcmPort)+"/healthz"); err != nil {
		return nil, err
	}
	if err := env.waitHTTP(ctx, sched, insecure, "https://127.0.0.1:"+strconv.Itoa(schedPort)+"/healthz"); err != nil {
		return nil, err
	}
	if env.node, err = env.createFakeNode(ctx, kwok); err != nil {
		return nil, err
	}
	if err := env.waitServiceAccount(ctx, kcm, "default"); err != nil {
		return nil, err
	}
	fmt.Fprintf(o.log, "kubetest: %v control plane ready at %s in %s\n", o.mode, env.config.Host, time.Since(began).Round(time.Millisecond))
	return env, nil
}

// launch starts a component and records it in tier for Stop: higher tiers
// are stopped first, the processes of one tier together.
func (e *Env) launch(tier int, name string, bins binaries, dir string, args ...string) (*proc.Process, error) {
	p, err := proc.Start(name, bins.path(name), dir, nil, args...)
	if err != nil {
		return nil, err
	}
	for len(e.tiers) <= tier {
		e.tiers = append(e.tiers, nil)
	}
	e.tiers[tier] = append(e.tiers[tier], p)
	return p, nil
}

// kubeconfig renders a one-context kubeconfig with inline credentials.
func kubeconfig(host string, ca []byte, user string, auth clientcmdapi.AuthInfo, namespace string) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: ca}
	cfg.AuthInfos[user] = &auth
	cfg.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: user, Namespace: namespace}
	cfg.CurrentContext = "kubetest"
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("render kubeconfig: %w", err)
	}
	return data, nil
}

// RestartAPIServer stops kube-apiserver and starts it again with the same
// flags and port, for tests of what clients do while it is gone. It returns
// when the new one is ready; down, if set, runs while it is stopped. A reused
// control plane cannot be restarted.
func (e *Env) RestartAPIServer(ctx context.Context, down func()) error {
	if e.Reused() {
		return errors.New("kubetest: a reused control plane cannot be restarted")
	}
	for tier, procs := range e.tiers {
		for i, p := range procs {
			if p.Name != "kube-apiserver" {
				continue
			}
			if err := p.Stop(5 * time.Second); err != nil {
				return err
			}
			if down != nil {
				down()
			}
			np, err := p.Relaunch()
			if err != nil {
				return err
			}
			e.tiers[tier][i] = np
			return e.waitAPIServer(ctx, np)
		}
	}
	return errors.New("kubetest: no kube-apiserver was started by this Env")
}
