#!/usr/bin/env bash
# Installs the Debian packages the real test hosts need (see README.md).
# Idempotent: returns at once when everything is already installed.
set -euo pipefail

PKGS=(
  openssh-server openssh-client # sshd on loopback and in namespaces, ssh client
  docker.io runc                # dockerd and the runtime podman uses too
  podman                        # rootful podman with --runtime runc
  sudo                          # Sudo transport, ssh+sudo
  iproute2 util-linux           # ip netns / veth / bridge, unshare, nsenter
  busybox-static                # the userland of the test image
  passwd                        # useradd, usermod, chpasswd
  procps                        # pgrep in down.sh
)

ms() { echo $(( $(date +%s%N) / 1000000 )); }
start=$(ms)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install: all ${#PKGS[@]} packages present"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# Keep postinst scripts from starting the system sshd (port 22) or dockerd
# (which would add a bridge and iptables rules): up.sh runs private instances.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
log=$(mktemp /tmp/chopsticks-install.XXXXXX.log)
apt_install() {
  apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >>"$log" 2>&1
}
echo "install: installing ${missing[*]}"
# Try with the lists we have first; update them only if that fails.
if ! apt_install; then
  if ! { apt-get update -q >>"$log" 2>&1 && apt_install; }; then
    echo "install: FAILED: apt-get install ${missing[*]}; tail of $log:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
fi
echo "install: done in $(( $(ms) - start )) ms (log $log)"
