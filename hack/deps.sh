#!/usr/bin/env bash
# Installs the system packages the tests use, on a fresh Debian machine with
# Go. Idempotent: does nothing when everything is present.
set -euo pipefail
need=()
command -v git >/dev/null || need+=(git)
[ -x "$(git --exec-path 2>/dev/null)/git-http-backend" ] || need+=(git)
command -v openssl >/dev/null || need+=(openssl)
command -v file >/dev/null || need+=(file)
# Signed writes are verified by git with gpg, and with ssh-keygen for SSH
# signatures (pkg/semver/sign_e2e_test.go).
command -v gpg >/dev/null || need+=(gnupg)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
[ -x /usr/bin/time ] || need+=(time)
# The image's arm64 binary answers a check under emulation (internal/image).
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
# The real-Concourse end-to-end suite (e2e/concourse): container runtime,
# network tools, a task image, and Concourse's database.
for c in containerd runc iptables busybox curl ip nsenter; do
  command -v "$c" >/dev/null || case $c in
    busybox) need+=(busybox-static) ;;
    ip) need+=(iproute2) ;;
    nsenter) need+=(util-linux) ;;
    *) need+=("$c") ;;
  esac
done
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
