#!/usr/bin/env bash
# Builds the Kubernetes control plane used by the tests (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler from tools/k8s, plus kwok) once per
# machine, into a cache dir keyed by the tools module's go.mod/go.sum and the
# kwok version. Prints the bin dir as the last line of stdout.
#
#   hack/k8s-build.sh          build when missing, print the bin dir
#   hack/k8s-build.sh --check  print the bin dir; exit 1 when it is not built
#
# GITOPS_K8S_CACHE overrides the cache root
# (default ${XDG_CACHE_HOME:-$HOME/.cache}/gitops-resource/k8s).
# Build log and timing go to stderr.
set -euo pipefail

KWOK_VERSION=v0.8.0
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

export GOWORK=off # tools/k8s is built on its own, never through a workspace

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mod=$root/tools/k8s
cache_root=${GITOPS_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gitops-resource/k8s}

k8s_version=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$mod/go.mod")
if [[ -z $k8s_version ]]; then
	echo "k8s-build: no k8s.io/kubernetes requirement found in $mod/go.mod" >&2
	exit 1
fi
key=$({ cat "$mod/go.mod" "$mod/go.sum"; echo "kwok $KWOK_VERSION"; } | sha256sum | cut -c1-20)
dir=$cache_root/$key
bin=$dir/bin

complete() {
	local b
	for b in "${BINARIES[@]}"; do
		[[ -x $bin/$b ]] || return 1
	done
}

if complete; then
	touch "$dir" # last use, for pruning
	echo "$bin"
	exit 0
fi
if [[ ${1:-} == --check ]]; then
	echo "$bin"
	echo "k8s-build: control plane binaries are not built in $bin; run 'make tools' or hack/k8s-build.sh (cold build takes ~12 min)" >&2
	exit 1
fi

mkdir -p "$dir"
# One builder at a time per key: a second caller waits, then finds the binaries.
exec 9>"$dir/.lock"
flock 9
if complete; then
	echo "$bin"
	exit 0
fi

tmp=$(mktemp -d "$dir/build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

minor=${k8s_version#v*.}
minor=${minor%%.*}
major=${k8s_version#v}
major=${major%%.*}
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"

start=$(date +%s)
echo "k8s-build: building $k8s_version control plane and kwok $KWOK_VERSION into $bin (cold: ~12 min on 2 cores)" >&2
(cd "$mod" && go build -trimpath -ldflags "$ldflags" -o "$tmp/bin/" tool) >&2
mv "$tmp/bin/server" "$tmp/bin/etcd"
(cd "$tmp" && GOBIN="$tmp/bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION") >&2
rm -rf "$bin"
mv "$tmp/bin" "$bin"
echo "k8s-build: done in $(($(date +%s) - start))s" >&2
# Builds for other go.mod/go.sum states, unused for two weeks, go.
find "$cache_root" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -mtime +14 -exec rm -rf {} + 2>/dev/null || true
echo "$bin"
