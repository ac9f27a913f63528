#!/usr/bin/env bash
# Builds Concourse for the tests (e2e/concourse) once per machine, from Go
# modules, into a cache dir keyed by the tools module's go.mod/go.sum and the
# versions below. Prints the bin dir as the last line of stdout.
#
#   <cache>/<key>/bin/fly             fly CLI            (tools/concourse)
#   <cache>/<key>/bin/concourse       web + worker       (tools/concourse)
#   <cache>/<key>/bin/init            the containers' init (cmd/init/init.c, gcc -static)
#   <cache>/<key>/bin/crane           go-containerregistry's crane (local registry, pushes)
#   <cache>/<key>/resource-types/registry-image/{rootfs.tgz,resource_metadata.json}
#
# The concourse binary finds bin/init and resource-types/ next to its own
# bin dir, so the layout above is a complete install.
#
#   hack/concourse-build.sh              build what is missing, print the bin dir
#   hack/concourse-build.sh fly          only fly (first, ~4 min cold): enough for
#                                        `fly validate-pipeline` in the tests
#   hack/concourse-build.sh --check      print the bin dir; exit 1 when not built
#   hack/concourse-build.sh --check fly  the same, for fly alone
#
# GITOPS_CONCOURSE_CACHE overrides the cache root
# (default ${XDG_CACHE_HOME:-$HOME/.cache}/gitops-resource/concourse).
# Build log and timing go to stderr. Cold build of everything: ~11 min on 2
# idle cores; run it under `nice -n 10` on a shared machine.
set -euo pipefail

CONCOURSE_VERSION=7.14.2 # what the pseudo-version in tools/concourse/go.mod is
REGISTRY_IMAGE_VERSION=v1.18.0
CRANE_VERSION=v0.20.2

export GOWORK=off # tools/concourse is built on its own, never through a workspace
# concourse is required at a pseudo-version that the checksum database does
# not answer for; tools/concourse/go.sum (concourse's own, copied from the
# module cache, then tidied) pins every hash instead.
export GONOSUMDB=${GONOSUMDB:+$GONOSUMDB,}github.com/concourse/concourse
export GOFLAGS=-mod=mod

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mod=$root/tools/concourse
cache_root=${GITOPS_CONCOURSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gitops-resource/concourse}

check=false
only_fly=false
for arg in "$@"; do
	case $arg in
	--check) check=true ;;
	fly) only_fly=true ;;
	*)
		echo "usage: hack/concourse-build.sh [--check] [fly]" >&2
		exit 2
		;;
	esac
done

concourse_mod=$(awk '$1 == "require" {$1 = ""; $0 = $0} $1 == "github.com/concourse/concourse" && $2 ~ /^v/ {print $2; exit}' "$mod/go.mod")
if [[ -z $concourse_mod ]]; then
	echo "concourse-build: no github.com/concourse/concourse requirement found in $mod/go.mod" >&2
	exit 1
fi
key=$({
	cat "$mod/go.mod" "$mod/go.sum"
	echo "concourse $CONCOURSE_VERSION registry-image $REGISTRY_IMAGE_VERSION crane $CRANE_VERSION"
} | sha256sum | cut -c1-20)
dir=$cache_root/$key
bin=$dir/bin
rt=$dir/resource-types/registry-image

complete() {
	[[ -x $bin/fly ]] || return 1
	$only_fly && return 0
	local b
	for b in concourse init crane; do
		[[ -x $bin/$b ]] || return 1
	done
	[[ -s $rt/rootfs.tgz && -s $rt/resource_metadata.json ]]
}

if complete; then
	touch "$dir" # last use, for pruning
	echo "$bin"
	exit 0
fi
if $check; then
	echo "$bin"
	if $only_fly; then
		echo "concourse-build: fly is not built in $bin; run hack/concourse-build.sh fly (cold build takes ~4 min)" >&2
	else
		echo "concourse-build: concourse is not built in $bin; run hack/concourse-build.sh (cold build takes ~11 min)" >&2
	fi
	exit 1
fi

mkdir -p "$bin"
# One builder at a time per key: a second caller waits, then finds the binaries.
exec 9>"$dir/.lock"
flock 9
if complete; then
	echo "$bin"
	exit 0
fi

tmp=$(mktemp -d "$dir/build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

ldflags="-s -w -X github.com/concourse/concourse.Version=$CONCOURSE_VERSION"
start=$(date +%s)
step() { echo "concourse-build: $* ($(($(date +%s) - start))s)" >&2; }

# Each piece lands in $bin on its own (mv is atomic), so an interrupted build
# keeps what it finished and fly is usable as soon as it is there.
if [[ ! -x $bin/fly ]]; then
	step "building fly $CONCOURSE_VERSION ($concourse_mod) into $bin (cold: ~4 min on 2 cores)"
	(cd "$mod" && go build -trimpath -ldflags "$ldflags" -o "$tmp/fly" github.com/concourse/concourse/fly) >&2
	mv "$tmp/fly" "$bin/fly"
fi
if $only_fly; then
	step "done"
	echo "$bin"
	exit 0
fi

if [[ ! -x $bin/concourse ]]; then
	step "building concourse $CONCOURSE_VERSION (cold: ~6 min on 2 cores)"
	(cd "$mod" && go build -trimpath -ldflags "$ldflags" -o "$tmp/concourse" github.com/concourse/concourse/cmd/concourse) >&2
	mv "$tmp/concourse" "$bin/concourse"
fi

if [[ ! -x $bin/init ]]; then
	step "building init (gcc -static)"
	src=$(cd "$mod" && go list -m -f '{{.Dir}}' github.com/concourse/concourse)
	gcc -O2 -static -o "$tmp/init" "$src/cmd/init/init.c" >&2
	strip "$tmp/init" 2>/dev/null || true
	mv "$tmp/init" "$bin/init"
fi

if [[ ! -x $bin/crane ]]; then
	step "building crane $CRANE_VERSION"
	(cd "$tmp" && CGO_ENABLED=0 GOFLAGS='' GOBIN="$tmp/gobin" go install -trimpath -ldflags "-s -w" \
		"github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION") >&2
	mv "$tmp/gobin/crane" "$bin/crane"
fi

if [[ ! -s $rt/rootfs.tgz || ! -s $rt/resource_metadata.json ]]; then
	step "building registry-image resource type $REGISTRY_IMAGE_VERSION"
	# Built inside the module as its own Dockerfile does (its go.mod and
	# go.sum, no replace directives). Not `go install m/cmd/check@v`: that
	# also asks the proxy for the module's version list, which some proxies
	# refuse.
	src=$(cd "$tmp" && GOFLAGS='' go mod download -json "github.com/concourse/registry-image-resource@$REGISTRY_IMAGE_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	if [[ -z $src ]]; then
		echo "concourse-build: could not download github.com/concourse/registry-image-resource@$REGISTRY_IMAGE_VERSION" >&2
		exit 1
	fi
	for v in check in out; do
		(cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -ldflags "-s -w" -o "$tmp/rootfs/opt/resource/$v" "./cmd/$v") >&2
	done
	# The rest of a minimal root: CA bundle (registries over TLS), users, and
	# the /etc and /tmp the runtimes mount over or write to.
	r=$tmp/rootfs
	mkdir -p "$r/etc/ssl/certs" "$r/tmp" "$r/root"
	chmod 1777 "$r/tmp"
	if [[ -s /etc/ssl/certs/ca-certificates.crt ]]; then
		cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/"
	else
		echo "concourse-build: warning: no /etc/ssl/certs/ca-certificates.crt; registry-image will not trust TLS registries (apt-get install ca-certificates)" >&2
	fi
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
	: >"$r/etc/hosts"
	: >"$r/etc/resolv.conf"
	mkdir -p "$tmp/rt"
	tar -C "$r" --owner=0 --group=0 --numeric-owner -czf "$tmp/rt/rootfs.tgz" .
	printf '{"type":"registry-image","version":"%s","privileged":false}\n' "${REGISTRY_IMAGE_VERSION#v}" >"$tmp/rt/resource_metadata.json"
	rm -rf "$rt"
	mkdir -p "$(dirname "$rt")"
	mv "$tmp/rt" "$rt"
fi

step "done: $dir"
# Builds for other go.mod/go.sum states, unused for two weeks, go.
find "$cache_root" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -mtime +14 -exec rm -rf {} + 2>/dev/null || true
echo "$bin"
