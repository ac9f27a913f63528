#!/usr/bin/env bash
# Builds the Kubernetes control plane used by the tests (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kubectl from tools/k8s, plus kwok) once per
# machine, into a cache dir keyed by the tools module's go.mod/go.sum and the
# kwok version (hack/lib.sh). Prints the bin dir as the last line of stdout.
#
#   hack/k8s-build.sh          build when missing, print the bin dir
#   hack/k8s-build.sh --check  print the bin dir; exit 1 when it is not built
#
# GITOPS_K8S_CACHE overrides the cache root
# (default ${XDG_CACHE_HOME:-$HOME/.cache}/gitops-resource/k8s).
# Build log and timing go to stderr.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KWOK_VERSION=v0.8.0
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)

export GOWORK=off # tools/k8s is built on its own, never through a workspace

mod=$root/tools/k8s
cache_root=$(cache_root GITOPS_K8S_CACHE k8s)

k8s_version=$(go_requirement "$mod" k8s.io/kubernetes)
key=$({ cat "$mod/go.mod" "$mod/go.sum"; echo "kwok $KWOK_VERSION"; } | cache_key)
dir=$cache_root/$key

complete() {
	local b
	for b in "${BINARIES[@]}"; do
		[[ -x $1/bin/$b ]] || return 1
	done
}

# build DIR TMP: the binaries, stamped with the Kubernetes version as its
# release builds are, into DIR/bin.
build() {
	local dir=$1 tmp=$2 major minor ldflags
	minor=${k8s_version#v*.}
	minor=${minor%%.*}
	major=${k8s_version#v}
	major=${major%%.*}
	ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
	log "building $k8s_version control plane, kubectl and kwok $KWOK_VERSION into $dir/bin (cold: ~12 min on 2 cores)"
	(cd "$mod" && go build -trimpath -ldflags "$ldflags" -o "$tmp/bin/" tool)
	mv "$tmp/bin/server" "$tmp/bin/etcd"
	(cd "$tmp" && GOBIN="$tmp/bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION")
	place "$tmp/bin" "$dir/bin"
}

check=false
if [[ ${1:-} == --check ]]; then
	check=true
fi
cache_main "$dir" "$check" "control plane binaries are not built in $dir/bin; run 'make tools' or hack/k8s-build.sh (cold build takes ~12 min)" build
