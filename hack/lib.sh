# shellcheck shell=bash
# Sourced by hack/*-build.sh, which build the tools the tests drive from Go
# modules once per machine. Each build lives in a cache dir named by a key,
# the hash of what it is built from, so a change to that rebuilds it and
# nothing else does:
#
#   <cache root>/<key>/...   cache root: $GITOPS_<TOOL>_CACHE, else
#                            ${XDG_CACHE_HOME:-$HOME/.cache}/gitops-resource/<tool>
#
# The sourcing script defines `complete DIR [ARG...]`, true when DIR holds a
# whole build (ARG: what to build, as the script passes it to cache_build),
# and a build function (see cache_build); it ends with cache_main, or runs
# cache_ready and cache_build itself for several builds.
#
# Logs and timings go to stderr; stdout is left for the dirs the script prints.

# shellcheck disable=SC2034 # the sourcing scripts use it
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prog=$(basename "$0" .sh)

# log MESSAGE: one line on stderr, "k8s-build: MESSAGE".
log() { echo "$prog: $*" >&2; }

# seconds_since EPOCH: whole seconds from EPOCH (date +%s) to now.
seconds_since() { echo $(($(date +%s) - $1)); }

# go_requirement MODDIR MODULE: the version MODDIR/go.mod requires of MODULE.
go_requirement() {
	local v
	v=$(awk -v m="$2" '$1 == "require" {$1 = ""; $0 = $0} $1 == m && $2 ~ /^v/ {print $2; exit}' "$1/go.mod")
	if [[ -z $v ]]; then
		log "no $2 requirement found in $1/go.mod"
		return 1
	fi
	echo "$v"
}

# cache_root OVERRIDE TOOL: the value of the variable named OVERRIDE, else
# the tool's dir in the user's cache.
cache_root() { echo "${!1:-${XDG_CACHE_HOME:-$HOME/.cache}/gitops-resource/$2}"; }

# cache_key < INPUTS: the key of a build, from all it is built from.
cache_key() { sha256sum | cut -c1-20; }

# cache_ready DIR [ARG...]: true when DIR holds a whole build; DIR's mtime
# then records this last use, for cache_prune.
cache_ready() {
	complete "$@" || return 1
	touch "$1"
}

# cache_build DIR BUILD [ARG...]: builds into DIR unless it is complete,
# one builder at a time per DIR: a second caller waits on DIR/.lock, then
# finds the build complete. BUILD DIR TMP ARG... runs with set -e and its
# stdout on stderr; it builds in TMP, a fresh dir inside DIR that is removed
# afterwards, and moves each finished piece into DIR with `place`, so no
# reader ever sees a half-written one. Fails when BUILD fails or leaves DIR
# incomplete.
#
# Call it as a plain command, never after if, while, && or ||: bash ignores
# set -e inside a function called there, and a failed step would go on. A
# caller that must carry on after a failure brackets the call with set +e
# and set -e and reads $?.
cache_build() {
	local dir=$1 build=$2
	shift 2
	mkdir -p "$dir"
	(
		set -e
		exec 9>"$dir/.lock"
		flock 9
		if complete "$dir" "$@"; then
			exit 0
		fi
		tmp=$(mktemp -d "$dir/build.XXXXXX")
		trap 'rm -rf "$tmp"' EXIT
		start=$(date +%s)
		"$build" "$dir" "$tmp" "$@"
		if ! complete "$dir" "$@"; then
			log "the build left $dir incomplete"
			exit 1
		fi
		log "built $dir in $(seconds_since "$start")s"
	) >&2
}

# place SRC DEST: replaces DEST with SRC (a file or a dir) by a rename.
place() {
	rm -rf "$2"
	mkdir -p "$(dirname "$2")"
	mv "$1" "$2"
}

# cache_prune DIR: removes the builds beside DIR (other keys: other
# go.mod/go.sum states) unused for two weeks.
cache_prune() {
	find "$(dirname "$1")" -mindepth 1 -maxdepth 1 -type d ! -name "$(basename "$1")" -mtime +14 -exec rm -rf {} + 2>/dev/null || true
}

# cache_main DIR CHECK HINT BUILD: a script's one build. Prints DIR/bin, as
# the last line of stdout, once DIR holds a complete build. With CHECK true
# nothing is built: when DIR is not complete, HINT (what is missing, how to
# build it) goes to stderr and the script exits 1. Otherwise what is missing
# is built (cache_build DIR BUILD) and stale builds are pruned.
cache_main() {
	local dir=$1 check=$2 hint=$3 build=$4
	if ! cache_ready "$dir"; then
		if $check; then
			echo "$dir/bin"
			log "$hint"
			exit 1
		fi
		cache_build "$dir" "$build"
		cache_prune "$dir"
	fi
	echo "$dir/bin"
}
