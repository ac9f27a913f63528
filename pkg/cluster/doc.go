// Package cluster is the kind "cluster": deliver manifests to a Kubernetes
// cluster and wait until they run. Mode direct applies them itself
// (server-side apply) and waits for the rollout; modes flux and argocd
// (agent.go, siblings of direct behind the mode interface) hand over to the
// in-cluster agent and wait until it reports that exact commit applied and
// healthy.
//
// Source: kind, mode (direct | flux | argocd), kustomization and/or
// helmrelease (flux), application (argocd), kubeconfig (inline YAML) or server + token
// (+ certificate_authority), context, namespace, insecure_skip_tls_verify,
// resources (check/get: ["deployment/web", "sts/prod/db"]), timeout (5m).
//
// put params (mode direct): path (file, dir, kustomization dir, .tar/.tgz),
// prune, dry_run, wait (true), timeout, rollback_on_failure, restart (true
// or a list of workloads), verify_images, revision_file.
//
// put, in order: load and validate every object with a server-side dry run
// (nothing is applied when one fails); apply CRDs and Namespaces and wait
// for them; apply the rest (field manager gitops-resource, forced), each
// stamped with the set label and provenance annotations; record the set in
// an inventory ConfigMap; restart; wait (watches; fail fast on broken new
// pods and ProgressDeadlineExceeded; roll back on failure when asked);
// prune what the set applied before and no longer has.
//
// check emits the live images of source.resources ("web=nginx:1.27"); get
// waits for them and writes status.json and images.json.
//
// It owns the modes and the order of a put's steps; the Kubernetes mechanics
// (client, apply, readiness, waiting, pruning) are pkg/kube's.
//
// A kind imports the shared packages and pkg/resource, never another kind
// nor pkg/app: what two kinds share belongs in a shared package.
package cluster
