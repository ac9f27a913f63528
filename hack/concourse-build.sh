#!/usr/bin/env bash
# Builds Concourse for the tests (e2e/concourse) once per machine, from Go
# modules, into a cache dir keyed by the tools module's go.mod/go.sum and the
# versions below (hack/lib.sh). Prints the bin dir as the last line of stdout.
#
#   <cache>/<key>/bin/fly             fly CLI            (tools/concourse)
#   <cache>/<key>/bin/concourse       web + worker       (tools/concourse)
#   <cache>/<key>/bin/init            the containers' init (cmd/init/init.c, gcc -static)
#   <cache>/<key>/bin/crane           go-containerregistry's crane (the stack's registry)
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
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONCOURSE_VERSION=7.14.2 # what the pseudo-version in tools/concourse/go.mod is
REGISTRY_IMAGE_VERSION=v1.18.0
CRANE_VERSION=v0.20.2

export GOWORK=off # tools/concourse is built on its own, never through a workspace
# concourse is required at a pseudo-version that the checksum database does
# not answer for; tools/concourse/go.sum (concourse's own, copied from the
# module cache, then tidied) pins every hash instead.
export GONOSUMDB=${GONOSUMDB:+$GONOSUMDB,}github.com/concourse/concourse
export GOFLAGS=-mod=mod

mod=$root/tools/concourse
cache_root=$(cache_root GITOPS_CONCOURSE_CACHE concourse)

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

concourse_mod=$(go_requirement "$mod" github.com/concourse/concourse)
key=$({
	cat "$mod/go.mod" "$mod/go.sum"
	echo "concourse $CONCOURSE_VERSION registry-image $REGISTRY_IMAGE_VERSION crane $CRANE_VERSION"
} | cache_key)
dir=$cache_root/$key
bin=$dir/bin
rt=$dir/resource-types/registry-image

complete() {
	local bin=$1/bin rt=$1/resource-types/registry-image b
	[[ -x $bin/fly ]] || return 1
	$only_fly && return 0
	for b in concourse init crane; do
		[[ -x $bin/$b ]] || return 1
	done
	[[ -s $rt/rootfs.tgz && -s $rt/resource_metadata.json ]]
}

# build DIR TMP: what is missing of fly (alone, with fly), or of the layout
# above. Each piece is placed on its own, so an interrupted build keeps what
# it finished and fly is usable as soon as it is there.
build() {
	local tmp=$2 ldflags src start
	ldflags="-s -w -X github.com/concourse/concourse.Version=$CONCOURSE_VERSION"
	start=$(date +%s)
	step() { log "$* ($(seconds_since "$start")s)"; }

	if [[ ! -x $bin/fly ]]; then
		step "building fly $CONCOURSE_VERSION ($concourse_mod) into $bin (cold: ~4 min on 2 cores)"
		(cd "$mod" && go build -trimpath -ldflags "$ldflags" -o "$tmp/fly" github.com/concourse/concourse/fly)
		place "$tmp/fly" "$bin/fly"
	fi
	if $only_fly; then
		return
	fi

	if [[ ! -x $bin/concourse ]]; then
		step "building concourse $CONCOURSE_VERSION (cold: ~6 min on 2 cores)"
		(cd "$mod" && go build -trimpath -ldflags "$ldflags" -o "$tmp/concourse" github.com/concourse/concourse/cmd/concourse)
		place "$tmp/concourse" "$bin/concourse"
	fi

	if [[ ! -x $bin/init ]]; then
		step "building init (gcc -static)"
		src=$(cd "$mod" && go list -m -f '{{.Dir}}' github.com/concourse/concourse)
		gcc -O2 -static -o "$tmp/init" "$src/cmd/init/init.c"
		strip "$tmp/init" 2>/dev/null || true
		place "$tmp/init" "$bin/init"
	fi

	if [[ ! -x $bin/crane ]]; then
		step "building crane $CRANE_VERSION"
		(cd "$tmp" && CGO_ENABLED=0 GOFLAGS='' GOBIN="$tmp/gobin" go install -trimpath -ldflags "-s -w" \
			"github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION")
		place "$tmp/gobin/crane" "$bin/crane"
	fi

	if [[ ! -s $rt/rootfs.tgz || ! -s $rt/resource_metadata.json ]]; then
		step "building registry-image resource type $REGISTRY_IMAGE_VERSION"
		build_registry_image "$tmp"
	fi
}

# build_registry_image TMP: the registry-image resource type, into $rt.
build_registry_image() {
	local tmp=$1 src v r
	# Built inside the module as its own Dockerfile does (its go.mod and
	# go.sum, no replace directives). Not `go install m/cmd/check@v`: that
	# also asks the proxy for the module's version list, which some proxies
	# refuse.
	src=$(cd "$tmp" && GOFLAGS='' go mod download -json "github.com/concourse/registry-image-resource@$REGISTRY_IMAGE_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	if [[ -z $src ]]; then
		log "could not download github.com/concourse/registry-image-resource@$REGISTRY_IMAGE_VERSION"
		return 1
	fi
	for v in check in out; do
		(cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -ldflags "-s -w" -o "$tmp/rootfs/opt/resource/$v" "./cmd/$v")
	done
	# The rest of a minimal root: CA bundle (registries over TLS), users, and
	# the /etc and /tmp the runtimes mount over or write to.
	r=$tmp/rootfs
	mkdir -p "$r/etc/ssl/certs" "$r/tmp" "$r/root"
	chmod 1777 "$r/tmp"
	if [[ -s /etc/ssl/certs/ca-certificates.crt ]]; then
		cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/"
	else
		log "warning: no /etc/ssl/certs/ca-certificates.crt; registry-image will not trust TLS registries (apt-get install ca-certificates)"
	fi
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
	: >"$r/etc/hosts"
	: >"$r/etc/resolv.conf"
	mkdir -p "$tmp/rt"
	tar -C "$r" --owner=0 --group=0 --numeric-owner -czf "$tmp/rt/rootfs.tgz" .
	printf '{"type":"registry-image","version":"%s","privileged":false}\n' "${REGISTRY_IMAGE_VERSION#v}" >"$tmp/rt/resource_metadata.json"
	place "$tmp/rt" "$rt"
}

if $only_fly; then
	hint="fly is not built in $bin; run hack/concourse-build.sh fly (cold build takes ~4 min)"
else
	hint="concourse is not built in $bin; run hack/concourse-build.sh (cold build takes ~11 min)"
fi
cache_main "$dir" "$check" "$hint" build
