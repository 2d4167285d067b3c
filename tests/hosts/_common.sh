# shellcheck shell=bash disable=SC2034
# Names, paths and helpers shared by up.sh, down.sh and check.sh.
# Sourced, not run. Everything lives in the state dir $DIR except the users,
# /usr/local/bin/deno and the sudoers drop-in.

DIR=${CHOPSTICKS_HOSTS_DIR:-/tmp/chopsticks-hosts}
IMAGE=chopsticks-test:latest
TARGET_DENO=/usr/local/bin/deno

SSH_PORT=2222            # loopback sshd, 127.0.0.1 only
USER_SSH=chopsticks      # plain ssh user (empty .bashrc/.profile)
USER_NOISY=chopsticks-noisy # ssh user whose login shell prints junk
USER_SUDO=chopsticks-sudo   # target of Sudo(...) from root and chopsticks
USER_PW=chopsticks-pw       # needs a password for sudo
SUDOERS=/etc/sudoers.d/chopsticks-tests

# Hosts h1..h3: network namespace chop-hN, veth chop-hN on bridge chopbr0.
BRIDGE=chopbr0
NET=10.231.0          # /24; the bridge (root namespace side) is .1
NS_HOSTS=(h1 h2 h3)   # hN is at $NET.1N, port 22, hostname hN
ns_addr() { echo "$NET.1${1#h}"; }

DOCKER_SOCK=$DIR/docker.sock
DOCKER=(docker -H "unix://$DOCKER_SOCK")
PODMAN_FLAGS=(--root "$DIR/podman/root" --runroot "$DIR/podman/runroot"
  --tmpdir "$DIR/podman/tmp" --runtime runc --cgroup-manager cgroupfs
  --events-backend file --storage-driver overlay)
# CONTAINERS_CONF only makes podman's default network "none", so that a run
# without --network cannot add a bridge and iptables rules to this machine.
PODMAN_CONF=$DIR/podman/containers.conf
PODMAN=(env "CONTAINERS_CONF=$PODMAN_CONF" podman "${PODMAN_FLAGS[@]}")
# runc fails on this machine's default rlimits without these (crun is absent).
PODMAN_RUN_FLAGS=(--ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
DOCKER_RUN_FLAGS=()
# Both engines refuse a second --network: pass this exactly once.
NETWORK_FLAGS=(--network none)

ms() { echo $(($(date +%s%N) / 1000000)); }

# fail PART LOG MESSAGE...: say which part failed, show the tail of its log.
fail() {
  local part=$1 log=$2
  shift 2
  echo "$part: FAILED: $*" >&2
  if [ -n "$log" ] && [ -s "$log" ]; then
    echo "--- last lines of $log:" >&2
    tail -n 25 "$log" >&2
  fi
  exit 1
}

# alive PID: running and not a zombie (pid 1 here is slow to reap them).
alive() {
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  case $st in Z* | X* | "") return 1 ;; esac
}

# pid_alive PIDFILE: the process it names is running.
pid_alive() { [ -s "$1" ] && alive "$(cat "$1")"; }

# stop_pid PIDFILE [SECONDS]: SIGTERM, wait, then SIGKILL.
stop_pid() {
  local pid i
  pid_alive "$1" || return 0
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < ${2:-10} * 10; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

# wait_for SECONDS CMD...: retry CMD every 0.1 s until it succeeds.
wait_for() {
  local i n=$(($1 * 10))
  shift
  for ((i = 0; i < n; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}
