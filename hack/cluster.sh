#!/usr/bin/env bash
# Runs the full test control plane on 127.0.0.1 until Ctrl-C (make cluster):
# builds the binaries if needed (hack/k8s-build.sh), starts etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler and kwok with one
# fake Node through hack/cluster, and prints the
#   export KUBECONFIG=... GITOPS_TEST_KUBECONFIG=...
# line to paste into another shell (go test then reuses this control plane).
# Arguments go to the cluster command (--api-only).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bin=$("$root/hack/k8s-build.sh" | tail -n 1)

tmp=$(mktemp -d)
pid=
cleanup() {
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

(cd "$root" && go build -o "$tmp/cluster" ./hack/cluster)
# In the background so the traps run as soon as a signal arrives; the
# command itself stops every component by PID when it gets SIGINT/SIGTERM.
GITOPS_K8S_BIN=$bin "$tmp/cluster" "$@" &
pid=$!
wait "$pid"
