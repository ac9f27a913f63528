#!/usr/bin/env bash
# Builds Gitea for the tests (internal/testenv/giteatest) once per machine,
# from its Go module, into a cache dir keyed by tools/gitea/VERSION and the
# build flags below (hack/lib.sh). Prints the bin dir as the last line of
# stdout.
#
#   <cache>/<key>/bin/gitea   the gitea binary (CGO_ENABLED=0; sqlite is modernc)
#   <cache>/<key>/options/    its translations and other options, which Gitea
#                             reads from STATIC_ROOT_PATH/options (the tests
#                             set STATIC_ROOT_PATH=<cache>/<key>)
#   <cache>/<key>/templates/  its templates (mail, the web pages); the API needs
#                             no frontend assets, so public/ is left out
#
# code.gitea.io/gitea's go.mod names the module gitea.dev and carries replace
# lines, so it cannot be required by a tools module: its source is downloaded
# (go mod download), copied out of the module cache and built as the main
# module, against its own go.sum.
#
#   hack/gitea-build.sh          build when missing, print the bin dir
#   hack/gitea-build.sh --check  print the bin dir; exit 1 when it is not built
#
# GITOPS_GITEA_CACHE overrides the cache root
# (default ${XDG_CACHE_HOME:-$HOME/.cache}/gitops-resource/gitea).
# Build log and timing go to stderr. Cold build: ~5 min on 2 cores.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export GOWORK=off # built on its own, never through a workspace

version=$(tr -d '[:space:]' <"$root/tools/gitea/VERSION")
ldflags="-s -w -X main.Version=${version#v}"
cache_root=$(cache_root GITOPS_GITEA_CACHE gitea)
key=$(echo "gitea $version CGO_ENABLED=0 $ldflags" | cache_key)
dir=$cache_root/$key

complete() {
	[[ -x $1/bin/gitea && -d $1/options/locale && -d $1/templates ]]
}

# build DIR TMP: gitea, its options and templates, into DIR.
build() {
	local dir=$1 tmp=$2 src
	log "building gitea $version into $dir/bin (cold: ~5 min on 2 cores)"
	src=$(cd "$tmp" && GOFLAGS='' go mod download -json "code.gitea.io/gitea@$version" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	if [[ -z $src ]]; then
		log "could not download code.gitea.io/gitea@$version"
		return 1
	fi
	cp -r "$src" "$tmp/src"
	chmod -R u+w "$tmp/src"
	(cd "$tmp/src" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -ldflags "$ldflags" -o "$tmp/bin/gitea" .)
	place "$tmp/src/options" "$dir/options"
	place "$tmp/src/templates" "$dir/templates"
	place "$tmp/src/LICENSE" "$dir/LICENSE"
	place "$tmp/bin" "$dir/bin"
}

check=false
if [[ ${1:-} == --check ]]; then
	check=true
fi
cache_main "$dir" "$check" "gitea is not built in $dir/bin; run 'make tools-gitea' or hack/gitea-build.sh (cold build takes ~5 min)" build
