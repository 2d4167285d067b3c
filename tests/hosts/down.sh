#!/usr/bin/env bash
# Tears down what up.sh brought up: sshds and their sessions, the namespaces,
# veths and bridge, dockerd and its containers, podman containers, the sudoers
# drop-in and the state dir. Leaves the users, the packages and
# /usr/local/bin/deno. Fine to run when nothing is up.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/_common.sh"

[ "$(id -u)" = 0 ] || fail down "" "must run as root"
t0=$(ms)
t=$t0
# done_part NAME: print NAME's line with the time since the previous line.
done_part() {
  echo "$1: down ($(($(ms) - t)) ms)"
  t=$(ms)
}

# descendants PID: every process below PID.
descendants() {
  local c
  for c in $(pgrep -P "$1"); do
    echo "$c"
    descendants "$c"
  done
}

# Loopback sshd: every process of its sessions first, then the daemon.
if pid_alive "$DIR/sshd/sshd.pid"; then
  # shellcheck disable=SC2046
  kill $(descendants "$(cat "$DIR/sshd/sshd.pid")") 2>/dev/null || true
  stop_pid "$DIR/sshd/sshd.pid" 5
fi
done_part sshd

ns_empty() { [ -z "$(ip netns pids "$1" 2>/dev/null)" ]; }

# h1..h3: every process in our namespaces, then the namespaces and links.
for h in "${NS_HOSTS[@]}"; do
  ns=chop-$h
  if [ -e "/run/netns/$ns" ]; then
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    if [ -n "$pids" ]; then
      # shellcheck disable=SC2086
      kill $pids 2>/dev/null || true
      # shellcheck disable=SC2046
      wait_for 3 ns_empty "$ns" || kill -9 $(ip netns pids "$ns") 2>/dev/null || true
    fi
    ip netns del "$ns"
  fi
  ip link del "$ns" 2>/dev/null || true
done
ip link del "$BRIDGE" 2>/dev/null || true
if mountpoint -q /run/netns && [ -z "$(ls -A /run/netns)" ]; then umount /run/netns; fi
done_part hosts

# dockerd: remove its containers, then stop it (it stops its containerd).
if pid_alive "$DIR/docker/dockerd.pid"; then
  ids=$("${DOCKER[@]}" ps -aq 2>/dev/null || true)
  # shellcheck disable=SC2086
  [ -z "$ids" ] || "${DOCKER[@]}" rm -f $ids >/dev/null 2>&1 || true
  stop_pid "$DIR/docker/dockerd.pid" 20
fi
done_part docker

if [ -d "$DIR/podman/root" ]; then
  "${PODMAN[@]}" rm --all --force --time 0 >/dev/null 2>&1 || true
fi
done_part podman

rm -f "$SUDOERS"
done_part sudo

# Whatever is still mounted under the state dir (overlays, netns, shm), then
# the dir itself, never crossing into another filesystem.
if [ -d "$DIR" ]; then
  awk -v d="$DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf --one-file-system "$DIR"
fi
echo "down: all parts down in $(($(ms) - t0)) ms"
