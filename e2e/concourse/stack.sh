#!/usr/bin/env bash
# A real Concourse for end-to-end tests: postgres, `concourse web`, a
# `concourse worker` on containerd, and a registry (`crane registry serve`),
# all inside a private network namespace this script makes, so nothing they
# bind (the TSA forwards worker ports on 0.0.0.0) is visible on the host.
#
#   stack.sh up WORKDIR          start everything; prints KEY=VALUE lines
#   stack.sh exec WORKDIR CMD..  run CMD inside the namespace (HOME=WORKDIR/home,
#                                where fly's target "e2e" is logged in)
#   stack.sh down WORKDIR        stop everything and remove WORKDIR; safe to
#                                repeat, and after a failed or partial up
#
# Inside the namespace: lo, and the bridge concourse0 at 10.80.0.1/16 (the
# one the worker's CNI config uses, made before the worker starts). Web,
# TSA, postgres and the worker listen on 127.0.0.1; containers cannot reach
# the namespace's 127.0.0.1, so what they use (the registry, and the test's
# git and API servers) listens on 10.80.0.1.
#
# Needs root, `hack/concourse-build.sh` (or CONCOURSE_BIN=<its bin dir>), and
# from Debian: containerd runc iptables containernetworking-plugins
# busybox-static postgresql. One stack per machine at a time: the worker's
# containerd socket is /run/containerd/containerd.sock, fixed by Concourse.
# Logs: WORKDIR/logs/*.log.
set -euo pipefail

GATEWAY=10.80.0.1
REGISTRY_PORT=5000
WEB_PORT=8080
TSA_PORT=2222
RUNC_ROOT=/run/containerd/runc/concourse
TASKS=/run/containerd/io.containerd.runtime.v2.task/concourse
MARKER=/run/gitops-concourse-e2e.stack # the work dir of the stack that is up

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

usage() {
	echo "usage: stack.sh up|exec|down WORKDIR [CMD...]" >&2
	exit 2
}
(($# >= 2)) || usage
verb=$1
W=$(realpath -m "$2")
shift 2

ns_name() { echo "gitopscc-$(printf %s "$W" | sha256sum | cut -c1-8)"; }
NS=$(ns_name)
NSPATH=/var/run/netns/$NS
log() { echo "stack: $*" >&2; }
in_ns() { nsenter --net="$NSPATH" "$@"; }

# start NAME CMD...: run CMD in the namespace, in its own session, output to
# WORKDIR/logs/NAME.log; records the PID (nsenter execs, so it is CMD's).
start() {
	local name=$1
	shift
	setsid nsenter --net="$NSPATH" "$@" </dev/null >>"$W/logs/$name.log" 2>&1 &
	echo "$! $name" >>"$W/pids"
}

# wait_for WHAT SECONDS CMD...: poll CMD until it succeeds.
wait_for() {
	local what=$1 secs=$2 i
	shift 2
	for ((i = 0; i < secs * 10; i++)); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	log "timed out after ${secs}s waiting for $what; logs in $W/logs"
	return 1
}

alive() { kill -0 "$1" 2>/dev/null; }

# stop PID NAME: TERM, then KILL after 10 s.
stop() {
	local pid=$1 name=$2 i
	alive "$pid" || return 0
	local sig=TERM
	[[ $name == postgres ]] && sig=INT # fast shutdown: no waiting for clients
	kill -$sig "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		alive "$pid" || return 0
		sleep 0.1
	done
	log "$name ($pid) did not stop on $sig; killing it"
	kill -KILL "$pid" 2>/dev/null || true
}

down() {
	local t0=$SECONDS
	if [[ ! -f $W/.stack ]]; then
		# Not (or no longer) a stack's work dir: never delete anything in it.
		ip netns del "$NS" 2>/dev/null || true
		[[ -d $W ]] && log "$W is not a stack work dir (no .stack file): left alone"
		return 0
	fi
	# Recorded processes, newest first: the worker before web, postgres last.
	if [[ -f $W/pids ]]; then
		tac "$W/pids" | while read -r pid name; do stop "$pid" "$name"; done
	fi
	# The worker's containerd dies with it (Pdeathsig); its runc containers
	# and shims do not.
	if [[ -d $RUNC_ROOT ]] && command -v runc >/dev/null; then
		local id
		for id in $(runc --root "$RUNC_ROOT" list -q 2>/dev/null); do
			runc --root "$RUNC_ROOT" delete --force "$id" 2>/dev/null || log "runc delete $id failed"
		done
	fi
	# A shim runs in its container's bundle dir: that names ours exactly.
	local proc cwd
	for proc in /proc/[0-9]*; do
		cwd=$(readlink "$proc/cwd" 2>/dev/null) || continue
		if [[ $cwd == "$TASKS"/* ]]; then
			kill -KILL "${proc#/proc/}" 2>/dev/null || true
		fi
	done
	# Everything mounted under the work dir (rootfs, baggageclaim overlays),
	# deepest first.
	local m
	for _ in 1 2 3; do
		m=$(awk -v w="$W/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | awk '{print length, $0}' | sort -rn | cut -d' ' -f2-)
		[[ -n $m ]] || break
		while read -r p; do umount -l "$p" 2>/dev/null || true; done <<<"$m"
	done
	# Concourse's containerd state lives in /run/containerd; remove it when
	# this stack made it.
	if [[ -f $W/made-run-containerd ]]; then
		rm -rf /run/containerd
	fi
	if [[ -f $W/made-cni-networks ]]; then
		rm -rf /var/lib/cni/networks/concourse
	fi
	ip netns del "$NS" 2>/dev/null || true
	if [[ -f $MARKER && $(<"$MARKER") == "$W" ]]; then
		rm -f "$MARKER"
	fi
	log "down in $((SECONDS - t0))s"
	if [[ -n ${KEEP_WORKDIR:-} ]]; then
		log "kept $W (KEEP_WORKDIR is set)"
	else
		rm -rf "$W" 2>/dev/null || log "could not remove all of $W"
	fi
}

need() {
	local missing=() c
	for c in containerd runc iptables nsenter setpriv ip curl; do
		command -v "$c" >/dev/null || missing+=("$c")
	done
	[[ -x /usr/lib/cni/bridge ]] || missing+=("containernetworking-plugins")
	pgbin=$(printf "%s\n" /usr/lib/postgresql/*/bin | sort -V | tail -1)
	[[ -n $pgbin && -x $pgbin/postgres ]] || missing+=("postgresql")
	if ((${#missing[@]})); then
		log "missing: ${missing[*]}; install: apt-get install containerd runc iptables containernetworking-plugins busybox-static postgresql curl"
		exit 1
	fi
	if ((EUID != 0)); then
		log "must run as root (network namespace, containerd, mounts)"
		exit 1
	fi
	if [[ -z ${CONCOURSE_BIN:-} ]]; then
		CONCOURSE_BIN=$("$root/hack/concourse-build.sh" --check | tail -1) || {
			log "concourse is not built: run nice -n 10 hack/concourse-build.sh"
			exit 1
		}
	fi
	if [[ -f $MARKER ]]; then
		local prev
		prev=$(<"$MARKER")
		if [[ -d $prev ]]; then
			log "a stack is up in $prev (or was not torn down, e.g. after go test -timeout): e2e/concourse/stack.sh down $prev"
			exit 1
		fi
		rm -f "$MARKER"
	fi
	if [[ -S /run/containerd/containerd.sock ]]; then
		log "/run/containerd/containerd.sock exists: another containerd (another Concourse stack?) is running; stop it first"
		exit 1
	fi
}

up() {
	need
	local t0=$SECONDS
	if [[ -e $W && -n $(ls -A "$W") ]]; then
		log "$W is not empty: use a new or empty dir (down deletes it)"
		exit 1
	fi
	mkdir -p "$W"
	touch "$W/.stack"
	echo "$W" >"$MARKER"
	# Whatever fails from here on, nothing stays up.
	up_ok=false
	trap 'if [[ $up_ok != true ]]; then log "up failed; tearing down"; down; fi' EXIT
	# Postgres runs as user postgres and must reach its data dir.
	chmod 755 "$W"
	if ! setpriv --reuid=postgres --regid=postgres --clear-groups test -x "$W"; then
		log "user postgres cannot reach $W: use a work dir whose parents are world-searchable (e.g. under /tmp)"
		exit 1
	fi
	mkdir -p "$W/logs" "$W/keys" "$W/home" "$W/worker" "$W/registry"
	: >"$W/pids"
	[[ -e /run/containerd ]] || touch "$W/made-run-containerd"
	[[ -e /var/lib/cni/networks/concourse ]] || touch "$W/made-cni-networks"

	ip netns add "$NS"
	in_ns ip link set lo up
	# A fixed MAC: a bridge without one takes the lowest MAC of its ports,
	# so it changes as containers come and go, and a container that has
	# just learned the old one sends into the void until its ARP entry
	# expires (a dial to the gateway then times out: seen in 2 of 5 runs).
	in_ns ip link add concourse0 address 02:80:00:00:00:01 type bridge
	in_ns ip addr add "$GATEWAY/16" dev concourse0
	in_ns ip link set concourse0 up

	local c=$CONCOURSE_BIN/concourse run=${RANDOM}${RANDOM}
	"$c" generate-key -t rsa -f "$W/keys/session_signing_key" >/dev/null
	"$c" generate-key -t ssh -f "$W/keys/tsa_host_key" >/dev/null
	"$c" generate-key -t ssh -f "$W/keys/worker_key" >/dev/null

	# postgres, trusting local connections, on the namespace's 127.0.0.1.
	mkdir -p "$W/pg/sock"
	chown -R postgres:postgres "$W/pg"
	setpriv --reuid=postgres --regid=postgres --clear-groups \
		"$pgbin/initdb" -D "$W/pg/data" -U postgres --auth=trust >"$W/logs/initdb.log" 2>&1
	start postgres setpriv --reuid=postgres --regid=postgres --clear-groups \
		"$pgbin/postgres" -D "$W/pg/data" -h 127.0.0.1 -p 5432 -k "$W/pg/sock" -c fsync=off
	wait_for postgres 30 in_ns "$pgbin/pg_isready" -q -h 127.0.0.1 -p 5432
	in_ns "$pgbin/createdb" -h 127.0.0.1 -U postgres "concourse_$run"

	start registry "$CONCOURSE_BIN/crane" registry serve --address "$GATEWAY:$REGISTRY_PORT" --disk "$W/registry"

	start web env \
		CONCOURSE_BIND_IP=127.0.0.1 \
		CONCOURSE_BIND_PORT=$WEB_PORT \
		CONCOURSE_EXTERNAL_URL=http://127.0.0.1:$WEB_PORT \
		CONCOURSE_PEER_ADDRESS=127.0.0.1 \
		CONCOURSE_TSA_BIND_IP=127.0.0.1 \
		CONCOURSE_TSA_BIND_PORT=$TSA_PORT \
		CONCOURSE_TSA_PEER_ADDRESS=127.0.0.1 \
		CONCOURSE_POSTGRES_HOST=127.0.0.1 \
		CONCOURSE_POSTGRES_PORT=5432 \
		CONCOURSE_POSTGRES_USER=postgres \
		CONCOURSE_POSTGRES_DATABASE="concourse_$run" \
		CONCOURSE_ADD_LOCAL_USER=test:test \
		CONCOURSE_MAIN_TEAM_LOCAL_USER=test \
		CONCOURSE_SESSION_SIGNING_KEY="$W/keys/session_signing_key" \
		CONCOURSE_TSA_HOST_KEY="$W/keys/tsa_host_key" \
		CONCOURSE_TSA_AUTHORIZED_KEYS="$W/keys/worker_key.pub" \
		CONCOURSE_LIDAR_SCANNER_INTERVAL=5s \
		CONCOURSE_CLUSTER_NAME=gitops-e2e \
		"$c" web
	wait_for "web on 127.0.0.1:$WEB_PORT" 60 in_ns curl -fsS "http://127.0.0.1:$WEB_PORT/api/v1/info"
	local t_web=$((SECONDS - t0))

	start worker "$c" worker \
		--name "worker-$run" \
		--work-dir "$W/worker" \
		--ephemeral \
		--tsa-host "127.0.0.1:$TSA_PORT" \
		--tsa-public-key "$W/keys/tsa_host_key.pub" \
		--tsa-worker-private-key "$W/keys/worker_key" \
		--bind-ip 127.0.0.1 \
		--debug-bind-ip 127.0.0.1 \
		--healthcheck-bind-ip 127.0.0.1 \
		--baggageclaim-bind-ip 127.0.0.1 \
		--baggageclaim-debug-bind-ip 127.0.0.1 \
		--baggageclaim-driver overlay \
		--runtime containerd \
		--containerd-init-bin "$CONCOURSE_BIN/init" \
		--containerd-cni-plugins-dir /usr/lib/cni \
		--containerd-external-ip 127.0.0.1 \
		--containerd-mtu 1500 \
		--containerd-allow-host-access

	export HOME=$W/home
	local fly=$CONCOURSE_BIN/fly
	in_ns "$fly" -t e2e login -c "http://127.0.0.1:$WEB_PORT" -u test -p test >"$W/logs/fly-login.log" 2>&1
	worker_running() { in_ns "$fly" -t e2e workers | grep -q "worker-$run .*running"; }
	wait_for "worker worker-$run to register" 60 worker_running
	up_ok=true
	log "up in $((SECONDS - t0))s (web ${t_web}s)"
	cat <<EOF
NETNS=$NSPATH
ATC_URL=http://127.0.0.1:$WEB_PORT
REGISTRY=$GATEWAY:$REGISTRY_PORT
GATEWAY=$GATEWAY
FLY=$fly
FLY_HOME=$W/home
WORKER=worker-$run
EOF
}

case $verb in
up) up ;;
down) down ;;
exec)
	(($#)) || usage
	HOME=$W/home exec nsenter --net="$NSPATH" "$@"
	;;
*) usage ;;
esac
