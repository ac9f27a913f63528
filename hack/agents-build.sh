#!/usr/bin/env bash
# Builds the GitOps agents used by the tests (internal/testenv/agenttest) once per
# machine, into cache dirs keyed by the wrapper modules' go.mod/go.sum:
#
#   flux    source-controller and kustomize-controller (tools/flux/source-controller,
#           tools/flux/kustomize-controller), plus the CRDs from the
#           controllers' module zips (config/crd/bases)
#   helm    Flux's helm-controller (tools/flux/helm-controller) and its CRDs;
#           a separate agent with its own key, so changing it never rebuilds
#           the flux agent (it runs next to flux's source-controller)
#   argocd  Argo CD's multi-call binary (tools/argocd), linked as
#           argocd-application-controller and argocd-repo-server, plus the CRDs
#           (manifests/crds) and argocd-* ConfigMaps (manifests/base/config);
#           redis-server is installed from Debian (apt-get) when missing; built
#           with tools/argocd/*.patch applied (its metrics server on 127.0.0.1)
#
# Each agent lives in <cache>/<agent>-<key>/{bin,manifests}; the key hashes
# the wrapper modules' go.mod, go.sum and *.patch (hack/lib.sh). The agents
# are built independently: one failing does not stop the other.
#
#   hack/agents-build.sh                  build what is missing, print the bin dirs
#   hack/agents-build.sh flux             only Flux (or: helm, argocd)
#   hack/agents-build.sh --check [agent]  print the bin dirs; exit 1 when one is not built
#
# stdout: one bin dir per requested agent, in the order asked (flux, helm,
# then argocd by default), as the last lines. Exit status 1 when any agent is
# missing (--check) or failed to build; the summary on stderr says which.
# GITOPS_AGENTS_CACHE overrides the cache root
# (default ${XDG_CACHE_HOME:-$HOME/.cache}/gitops-resource/agents).
# Build logs and timings go to stderr.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cache_root=$(cache_root GITOPS_AGENTS_CACHE agents)

check=false
agents=()
for arg in "$@"; do
	case $arg in
	--check) check=true ;;
	flux | helm | argocd) agents+=("$arg") ;;
	*)
		echo "usage: hack/agents-build.sh [--check] [flux] [helm] [argocd]" >&2
		exit 2
		;;
	esac
done
((${#agents[@]})) || agents=(flux helm argocd)

# modules_of AGENT: the wrapper module dirs an agent is built from.
modules_of() {
	case $1 in
	flux) echo "$root/tools/flux/source-controller $root/tools/flux/kustomize-controller" ;;
	helm) echo "$root/tools/flux/helm-controller" ;;
	argocd) echo "$root/tools/argocd" ;;
	esac
}

binaries_of() {
	case $1 in
	flux) echo "source-controller kustomize-controller" ;;
	helm) echo "helm-controller" ;;
	argocd) echo "argocd argocd-application-controller argocd-repo-server" ;;
	esac
}

dir_of() {
	local m key
	key=$(for m in $(modules_of "$1"); do
		cat "$m/go.mod" "$m/go.sum"
		for p in "$m"/*.patch; do
			if [[ -f $p ]]; then cat "$p"; fi
		done
	done | cache_key)
	echo "$cache_root/$1-$key"
}

complete() {
	local dir=$1 agent=$2 b
	for b in $(binaries_of "$agent"); do
		[[ -x $dir/bin/$b ]] || return 1
	done
	[[ -f $dir/manifests/.complete ]]
}

# build_module MODDIR OUTDIR [PATCHED]: builds the module's tools from a copy
# of its go.mod/go.sum, so the repo's files never change under a build. With
# PATCHED (a module path), MODDIR/*.patch are applied to a copy of that
# requirement, which the build uses through a replace.
build_module() {
	local mod=$1 out=$2 patched=${3:-} work start p
	work=$(mktemp -d "$out/../src.XXXXXX")
	cp "$mod/go.mod" "$mod/go.sum" "$work/"
	if [[ -n $patched ]]; then
		cp -r "$(module_dir "$mod" "$patched")" "$work/patched"
		chmod -R u+w "$work/patched"
		for p in "$mod"/*.patch; do
			# Never a repo above the copy: git apply then patches the copy.
			(cd "$work/patched" && GIT_CEILING_DIRECTORIES=$work git apply "$p")
		done
		(cd "$work" && go mod edit -replace "$patched=./patched")
	fi
	start=$(date +%s)
	(cd "$work" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/" tool)
	log "built ${mod#"$root"/} in $(seconds_since "$start")s"
	rm -rf "$work"
}

# module_dir MODDIR PATH: the module cache dir of a requirement of MODDIR.
module_dir() {
	(cd "$1" && GOFLAGS=-mod=mod go mod download -json "$2") | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p'
}

# build_flux_controllers TMP NAME...: each Flux controller from
# tools/flux/NAME, with the CRDs of its module (config/crd/bases).
build_flux_controllers() {
	local tmp=$1 name dir
	shift
	mkdir -p "$tmp/manifests/crds"
	for name in "$@"; do
		build_module "$root/tools/flux/$name" "$tmp/bin"
		dir=$(module_dir "$root/tools/flux/$name" "github.com/fluxcd/$name")
		cp "$dir"/config/crd/bases/*.yaml "$tmp/manifests/crds/"
		cp "$dir/LICENSE" "$tmp/manifests/LICENSE"
	done
}

build_flux() { build_flux_controllers "$1" source-controller kustomize-controller; }

build_helm() { build_flux_controllers "$1" helm-controller; }

build_argocd() {
	local tmp=$1 argo
	build_module "$root/tools/argocd" "$tmp/bin" github.com/argoproj/argo-cd/v3
	mv "$tmp/bin/cmd" "$tmp/bin/argocd"
	ln -s argocd "$tmp/bin/argocd-application-controller"
	ln -s argocd "$tmp/bin/argocd-repo-server"
	argo=$(module_dir "$root/tools/argocd" github.com/argoproj/argo-cd/v3)
	mkdir -p "$tmp/manifests/crds" "$tmp/manifests/config"
	cp "$argo"/manifests/crds/{application,appproject,applicationset}-crd.yaml "$tmp/manifests/crds/"
	cp "$argo"/manifests/base/config/argocd-*.yaml "$tmp/manifests/config/"
	cp "$argo/LICENSE" "$tmp/manifests/LICENSE"
}

# build_agent DIR TMP AGENT: the agent's bin/ and manifests/ into DIR.
build_agent() {
	local dir=$1 tmp=$2 agent=$3
	log "building $agent into $dir (cold: ~7 min per agent on 2 cores)"
	mkdir -p "$tmp/bin"
	"build_$agent" "$tmp"
	touch "$tmp/manifests/.complete"
	place "$tmp/bin" "$dir/bin"
	place "$tmp/manifests" "$dir/manifests"
}

ensure_redis() {
	command -v redis-server >/dev/null && return 0
	log "installing redis-server (apt-get)"
	local sudo=()
	((EUID == 0)) || sudo=(sudo)
	"${sudo[@]}" apt-get install -y redis-server >&2 ||
		{ "${sudo[@]}" apt-get update >&2 && "${sudo[@]}" apt-get install -y redis-server >&2; }
	command -v redis-server >/dev/null
}

failed=()
built=()
out=()
for agent in "${agents[@]}"; do
	dir=$(dir_of "$agent")
	out+=("$dir/bin")
	if [[ $agent == argocd ]] && ! $check && ! ensure_redis; then
		log "argocd: redis-server is missing and could not be installed (apt-get install redis-server)"
		failed+=("$agent")
		continue
	fi
	if [[ $agent == argocd ]] && $check && ! command -v redis-server >/dev/null; then
		log "argocd: redis-server is not installed; run hack/agents-build.sh argocd (or apt-get install redis-server)"
		failed+=("$agent")
		continue
	fi
	if cache_ready "$dir" "$agent"; then
		built+=("$agent")
		continue
	fi
	if $check; then
		log "$agent is not built in $dir; run 'hack/agents-build.sh $agent' (cold: ~7 min per agent on 2 cores)"
		failed+=("$agent")
		continue
	fi
	# One agent failing does not stop the next (see cache_build).
	set +e
	cache_build "$dir" build_agent "$agent"
	rc=$?
	set -e
	if ((rc == 0)); then
		built+=("$agent")
	else
		log "$agent FAILED to build (log above)"
		failed+=("$agent")
	fi
done

log "ready: ${built[*]:-none}; missing or failed: ${failed[*]:-none}"
printf '%s\n' "${out[@]}"
((${#failed[@]} == 0))
