#!/usr/bin/env bash
# Brings up the real test hosts (see README.md): run as root after install.sh.
# Idempotent: parts already up are checked and left alone. Prints one line per
# part and writes $DIR/env.json for the tests.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/_common.sh"

[ "$(id -u)" = 0 ] || fail up "" "must run as root"
t0=$(ms)
NOTE=
# part NAME FUNCTION: run one part and print its line.
part() {
  local t
  t=$(ms)
  NOTE=
  "$2"
  echo "$1: ok ($(($(ms) - t)) ms)${NOTE:+; $NOTE}"
}
mkdir -p "$DIR"
chmod 0755 "$DIR"

# a. A deno binary every user can run, at /usr/local/bin/deno.
up_deno() {
  local src=${DENO_BIN:-} d
  if [ -z "$src" ]; then
    if d=$(command -v deno); then
      src=$("$d" eval 'console.log(Deno.execPath())') || fail deno "" "$d eval failed; set DENO_BIN"
    elif command -v npx >/dev/null; then
      src=$(npx -y deno@2.9.6 eval 'console.log(Deno.execPath())') || fail deno "" "npx deno failed; set DENO_BIN"
    else
      fail deno "" "no deno on PATH; set DENO_BIN to the deno binary"
    fi
  fi
  [ -x "$src" ] || fail deno "" "DENO_BIN '$src' is not an executable file"
  if [ "$(readlink -f "$src")" != "$TARGET_DENO" ] &&
    { [ -L "$TARGET_DENO" ] || ! cmp -s "$src" "$TARGET_DENO"; }; then
    install -m 0755 "$src" "$TARGET_DENO.new.$$"
    mv -f "$TARGET_DENO.new.$$" "$TARGET_DENO"
    NOTE="copied $src"
  fi
  DENO_VERSION=$("$TARGET_DENO" --version | head -n 1 | cut -d' ' -f2)
  NOTE="${NOTE:+$NOTE, }$TARGET_DENO is $DENO_VERSION"
}

# b. Users, the key pair, and what each user's home holds.
ensure_user() {
  local home
  id -u "$1" >/dev/null 2>&1 || useradd -m -s /bin/bash "$1"
  usermod -p '*' "$1" # key only: UsePAM no refuses a locked ('!') account
  home=$(getent passwd "$1" | cut -d: -f6)
  install -d -o "$1" -g "$1" -m 0755 "$home"
  install -d -o "$1" -g "$1" -m 0700 "$home/.ssh"
  : >"$home/.bashrc"
  : >"$home/.profile"
  rm -f "$home/.bash_logout"
  chown "$1:" "$home/.bashrc" "$home/.profile"
}
authorize() {
  local home
  home=$(getent passwd "$1" | cut -d: -f6)
  install -o "$1" -g "$1" -m 0600 "$DIR/id_ed25519.pub" "$home/.ssh/authorized_keys"
}
up_users() {
  local u home f
  for u in "$USER_SSH" "$USER_NOISY" "$USER_SUDO" "$USER_PW"; do ensure_user "$u"; done
  [ -s "$DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C chopsticks-tests -f "$DIR/id_ed25519"
  for u in "$USER_SSH" "$USER_NOISY" "$USER_PW"; do authorize "$u"; done
  # The same key for chopsticks itself, so h1 can open a tunnel to h2.
  home=$(getent passwd "$USER_SSH" | cut -d: -f6)
  install -o "$USER_SSH" -g "$USER_SSH" -m 0600 "$DIR/id_ed25519" "$home/.ssh/id_ed25519"
  # The noisy login shell: banners and invalid UTF-8 on stdout and stderr.
  home=$(getent passwd "$USER_NOISY" | cut -d: -f6)
  for f in .bashrc .profile; do
    cat >"$home/$f" <<EOF
echo "NOISY $f: welcome to a chatty host"
printf 'NOISY $f junk: \\000\\001\\377\\376\\033[31m red \\033[0m\\r\\n'
echo "NOISY $f on stderr" >&2
printf 'NOISY $f stderr junk: \\377\\300\\n' >&2
EOF
  done
  # A password for chopsticks-pw, kept across runs.
  [ -s "$DIR/pw_password" ] || { head -c 12 /dev/urandom | base64 | tr -d '/+=' >"$DIR/pw_password"; }
  chmod 0600 "$DIR/pw_password"
  echo "$USER_PW:$(cat "$DIR/pw_password")" | chpasswd
}

# sshd_config LISTEN_ADDRESS PORT SUBDIR: print a private sshd config.
sshd_config() {
  cat <<EOF
ListenAddress $1
Port $2
HostKey $DIR/$3/host_ed25519
PidFile $DIR/$3/sshd.pid
AuthorizedKeysFile .ssh/authorized_keys
AllowUsers $USER_SSH $USER_NOISY $USER_PW
UsePAM no
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UseDNS no
PrintMotd no
PrintLastLog no
MaxStartups 200
MaxSessions 200
Subsystem sftp internal-sftp
EOF
}

# start_sshd SUBDIR ADDRESS PORT [LAUNCHER...]: (re)start an sshd unless the
# one running already has this config.
start_sshd() {
  local sub=$1 addr=$2 port=$3 d=$DIR/$1
  shift 3
  mkdir -p "$d" /run/sshd
  [ -s "$d/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C "$sub" -f "$d/host_ed25519"
  sshd_config "$addr" "$port" "$sub" >"$d/sshd_config.new"
  if pid_alive "$d/sshd.pid" && cmp -s "$d/sshd_config.new" "$d/sshd_config"; then
    rm -f "$d/sshd_config.new"
    return 0
  fi
  stop_pid "$d/sshd.pid" 5
  mv -f "$d/sshd_config.new" "$d/sshd_config"
  /usr/sbin/sshd -t -f "$d/sshd_config" >"$d/sshd.log" 2>&1 || fail "$sub" "$d/sshd.log" "bad sshd config"
  "$@" /usr/sbin/sshd -f "$d/sshd_config" -E "$d/sshd.log" ||
    fail "$sub" "$d/sshd.log" "sshd did not start"
  wait_for 5 pid_alive "$d/sshd.pid" || fail "$sub" "$d/sshd.log" "sshd exited"
}

# ssh_config IDENTITY: the Host aliases every test uses.
ssh_config() {
  local h
  cat <<EOF
# Written by tests/hosts/up.sh
Host local-ssh
  HostName 127.0.0.1
  Port $SSH_PORT
  User $USER_SSH
Host noisy
  HostName 127.0.0.1
  Port $SSH_PORT
  User $USER_NOISY
Host pw
  HostName 127.0.0.1
  Port $SSH_PORT
  User $USER_PW
EOF
  for h in "${NS_HOSTS[@]}"; do
    printf 'Host %s\n  HostName %s\n  Port 22\n  User %s\n' "$h" "$(ns_addr "$h")" "$USER_SSH"
  done
  cat <<EOF
Host *
  IdentityFile $1
  IdentitiesOnly yes
  UserKnownHostsFile $DIR/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 5
EOF
}

write_ssh_files() {
  local h key home
  {
    key=$(cut -d' ' -f1,2 "$DIR/sshd/host_ed25519.pub")
    echo "[127.0.0.1]:$SSH_PORT,[localhost]:$SSH_PORT $key"
    for h in "${NS_HOSTS[@]}"; do
      [ -s "$DIR/$h/host_ed25519.pub" ] || continue
      echo "$h,$(ns_addr "$h") $(cut -d' ' -f1,2 "$DIR/$h/host_ed25519.pub")"
    done
  } >"$DIR/known_hosts"
  chmod 0644 "$DIR/known_hosts"
  ssh_config "$DIR/id_ed25519" >"$DIR/ssh_config"
  home=$(getent passwd "$USER_SSH" | cut -d: -f6)
  ssh_config "$home/.ssh/id_ed25519" >"$home/.ssh/config"
  chown "$USER_SSH:" "$home/.ssh/config"
}

# c. sshd on 127.0.0.1:2222.
up_sshd() {
  local t
  start_sshd sshd 127.0.0.1 "$SSH_PORT"
  write_ssh_files
  t=$(ms)
  ssh -n -F "$DIR/ssh_config" local-ssh true 2>"$DIR/sshd/client.log" ||
    fail sshd "$DIR/sshd/sshd.log" "ssh local-ssh true: $(cat "$DIR/sshd/client.log")"
  NOTE="ssh local-ssh true took $(($(ms) - t)) ms"
}

# d. h1..h3 in network namespaces on bridge chopbr0, each with its sshd and
# its own hostname and /etc/hosts; and the noisy user on the loopback sshd.
up_hosts() {
  local h ns addr t
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  ip addr replace "$NET.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  for h in "${NS_HOSTS[@]}"; do
    ns=chop-$h addr=$(ns_addr "$h")
    [ -e "/run/netns/$ns" ] || ip netns add "$ns"
    ip link show "$ns" >/dev/null 2>&1 || ip link add "$ns" type veth peer name eth0 netns "$ns"
    ip link set "$ns" master "$BRIDGE" up
    ip -n "$ns" addr replace "$addr/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    mkdir -p "$DIR/$h"
    {
      printf '127.0.0.1 localhost\n::1 localhost\n127.0.1.1 %s\n' "$h"
      for x in "${NS_HOSTS[@]}"; do echo "$(ns_addr "$x") $x"; done
    } >"$DIR/$h/hosts"
    # shellcheck disable=SC2016
    start_sshd "$h" "$addr" 22 ip netns exec "$ns" unshare --uts --mount --propagation private \
      sh -c 'hostname "$0" && mount --bind "$1" /etc/hosts && shift && exec "$@"' "$h" "$DIR/$h/hosts"
  done
  write_ssh_files
  t=$(ms)
  for h in "${NS_HOSTS[@]}"; do
    [ "$(ssh -n -F "$DIR/ssh_config" "$h" hostname 2>"$DIR/$h/client.log")" = "$h" ] ||
      fail "$h" "$DIR/$h/sshd.log" "ssh $h hostname did not say $h: $(cat "$DIR/$h/client.log")"
  done
  ssh -n -F "$DIR/ssh_config" noisy true >/dev/null 2>&1 || fail noisy "$DIR/sshd/sshd.log" "ssh noisy true failed"
  NOTE="${NS_HOSTS[*]} at $NET.1x:22, noisy on 127.0.0.1:$SSH_PORT; $((${#NS_HOSTS[@]} + 1)) ssh checks in $(($(ms) - t)) ms"
}

# The image: busybox-static and deno's glibc libraries, no deno itself.
build_image_tar() {
  local r=$DIR/image/rootfs lib a
  [ -s "$DIR/image/rootfs.tar" ] && return 0
  rm -rf "$r"
  mkdir -p "$r"/{bin,sbin,usr/bin,usr/local/bin,etc,root,home,tmp,var/tmp,proc,sys,dev,run}
  chmod 1777 "$r/tmp" "$r/var/tmp"
  cp /bin/busybox "$r/bin/busybox"
  for a in $(/bin/busybox --list); do
    [ -e "$r/bin/$a" ] || ln -s busybox "$r/bin/$a"
  done
  ln -s /bin/env "$r/usr/bin/env"
  for lib in $(ldd "$TARGET_DENO" | grep -o '/[^ ]*'); do
    install -D -m 0755 "$(readlink -f "$lib")" "$r$lib"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
  printf '127.0.0.1 localhost\n::1 localhost\n' >"$r/etc/hosts"
  printf 'passwd: files\ngroup: files\nhosts: files\n' >"$r/etc/nsswitch.conf"
  tar -C "$r" --numeric-owner --owner=0 --group=0 -cf "$DIR/image/rootfs.tar.new" .
  mv "$DIR/image/rootfs.tar.new" "$DIR/image/rootfs.tar"
}
IMPORT_CHANGES=(-c 'ENV PATH=/usr/local/bin:/usr/bin:/bin' -c 'ENV HOME=/root' -c 'CMD ["/bin/sh"]')

# verify_engine PART LOG ENGINE... : deno runs with the mount, mkfifo works.
verify_engine() {
  local part=$1 log=$2 out
  shift 2
  out=$("$@" -v "$TARGET_DENO:$TARGET_DENO:ro" "$IMAGE" deno --version 2>&1) ||
    fail "$part" "$log" "deno --version in the container failed: $out"
  case $out in "deno $DENO_VERSION"*) ;; *) fail "$part" "$log" "unexpected deno --version: $out" ;; esac
  out=$("$@" "$IMAGE" sh -c 'mkfifo /tmp/x && echo ok' 2>&1) ||
    fail "$part" "$log" "mkfifo in the container failed: $out"
  [ "$out" = ok ] || fail "$part" "$log" "mkfifo in the container said: $out"
}

# e. A private dockerd and the image.
up_docker() {
  local d=$DIR/docker t
  mkdir -p "$d"
  echo '{}' >"$d/daemon.json"
  if ! "${DOCKER[@]}" version >/dev/null 2>&1; then
    stop_pid "$d/dockerd.pid" 10
    setsid dockerd --config-file "$d/daemon.json" --data-root "$d/data" --exec-root "$d/exec" \
      --pidfile "$d/dockerd.pid" -H "unix://$DOCKER_SOCK" --bridge none --iptables=false \
      --ip6tables=false --ip-masq=false --userland-proxy=false >>"$d/dockerd.log" 2>&1 </dev/null &
    wait_for 30 "${DOCKER[@]}" version || fail docker "$d/dockerd.log" "dockerd not ready after 30 s"
  fi
  build_image_tar
  if ! "${DOCKER[@]}" image inspect "$IMAGE" >/dev/null 2>&1; then
    "${DOCKER[@]}" import "${IMPORT_CHANGES[@]}" "$DIR/image/rootfs.tar" "$IMAGE" >>"$d/dockerd.log" 2>&1 ||
      fail docker "$d/dockerd.log" "docker import failed"
  fi
  t=$(ms)
  verify_engine docker "$d/dockerd.log" "${DOCKER[@]}" run --rm "${DOCKER_RUN_FLAGS[@]}" "${NETWORK_FLAGS[@]}"
  NOTE="DOCKER_HOST=unix://$DOCKER_SOCK, $IMAGE, 2 runs in $(($(ms) - t)) ms"
}

# f. Rootful podman with private storage and the same image.
up_podman() {
  local d=$DIR/podman t
  mkdir -p "$d/root" "$d/runroot" "$d/tmp"
  printf '[containers]\nnetns = "none"\n' >"$PODMAN_CONF"
  if ! "${PODMAN[@]}" image exists "$IMAGE" >>"$d/podman.log" 2>&1; then
    "${PODMAN[@]}" import "${IMPORT_CHANGES[@]}" "$DIR/image/rootfs.tar" "$IMAGE" >>"$d/podman.log" 2>&1 ||
      fail podman "$d/podman.log" "podman import failed"
  fi
  t=$(ms)
  verify_engine podman "$d/podman.log" "${PODMAN[@]}" run --rm "${PODMAN_RUN_FLAGS[@]}" "${NETWORK_FLAGS[@]}"
  NOTE="$IMAGE, 2 runs in $(($(ms) - t)) ms"
}

# g. sudo: root -> chopsticks-sudo; chopsticks -> root and chopsticks-sudo
# without a password; chopsticks-pw -> anyone with its password.
up_sudo() {
  local log=$DIR/sudo.log pw
  cat >"$DIR/sudoers" <<EOF
# Written by chopsticks tests/hosts/up.sh; removed by down.sh
Defaults:$USER_SSH !lecture
$USER_SSH ALL=(root,$USER_SUDO) NOPASSWD: ALL
Defaults:$USER_PW lecture=never, timestamp_timeout=0, passwd_tries=1
$USER_PW ALL=(ALL) ALL
EOF
  visudo -cf "$DIR/sudoers" >"$log" 2>&1 || fail sudo "$log" "visudo rejected the drop-in"
  install -m 0440 "$DIR/sudoers" "$SUDOERS"
  pw=$(cat "$DIR/pw_password")
  [ "$(sudo -n -u "$USER_SUDO" whoami 2>>"$log")" = "$USER_SUDO" ] || fail sudo "$log" "sudo -n -u $USER_SUDO failed"
  [ "$(sudo -n -u "$USER_SSH" sudo -n whoami 2>>"$log")" = root ] || fail sudo "$log" "$USER_SSH cannot sudo to root"
  [ "$(sudo -n -u "$USER_SSH" sudo -n -u "$USER_SUDO" whoami 2>>"$log")" = "$USER_SUDO" ] ||
    fail sudo "$log" "$USER_SSH cannot sudo to $USER_SUDO"
  ! sudo -n -u "$USER_PW" sudo -n true 2>>"$log" || fail sudo "$log" "$USER_PW can sudo without a password"
  [ "$(echo "$pw" | sudo -n -u "$USER_PW" sudo -S -p '' whoami 2>>"$log")" = root ] ||
    fail sudo "$log" "$USER_PW cannot sudo with its password"
  NOTE="drop-in $SUDOERS"
}

json_array() {
  local sep='' a
  printf '['
  for a in "$@"; do
    printf '%s"%s"' "$sep" "$a"
    sep=', '
  done
  printf ']'
}

write_env() {
  local h sep='' hosts=''
  for h in "${NS_HOSTS[@]}"; do
    hosts+="$sep"$'\n      '"\"$h\": { \"address\": \"$(ns_addr "$h")\", \"port\": 22, \"user\": \"$USER_SSH\", \"hostname\": \"$h\", \"netns\": \"chop-$h\" }"
    sep=,
  done
  cat >"$DIR/env.json.new" <<EOF
{
  "dir": "$DIR",
  "deno": "$TARGET_DENO",
  "denoVersion": "$DENO_VERSION",
  "ssh": {
    "config": "$DIR/ssh_config",
    "knownHosts": "$DIR/known_hosts",
    "identityFile": "$DIR/id_ed25519",
    "hosts": {
      "local-ssh": { "address": "127.0.0.1", "port": $SSH_PORT, "user": "$USER_SSH", "hostname": "$(hostname)" },
      "noisy": { "address": "127.0.0.1", "port": $SSH_PORT, "user": "$USER_NOISY", "hostname": "$(hostname)" },
      "pw": { "address": "127.0.0.1", "port": $SSH_PORT, "user": "$USER_PW", "hostname": "$(hostname)" },$hosts
    },
    "multiHosts": $(json_array "${NS_HOSTS[@]}"),
    "bridgeAddress": "$NET.1"
  },
  "noisy": { "user": "$USER_NOISY", "stdoutMarker": "NOISY", "stderrMarker": "NOISY" },
  "docker": {
    "host": "unix://$DOCKER_SOCK",
    "env": { "DOCKER_HOST": "unix://$DOCKER_SOCK" },
    "globalFlags": $(json_array -H "unix://$DOCKER_SOCK"),
    "runFlags": $(json_array "${DOCKER_RUN_FLAGS[@]}"),
    "networkFlags": $(json_array "${NETWORK_FLAGS[@]}"),
    "image": "$IMAGE"
  },
  "podman": {
    "globalFlags": $(json_array "${PODMAN_FLAGS[@]}"),
    "runFlags": $(json_array "${PODMAN_RUN_FLAGS[@]}"),
    "networkFlags": $(json_array "${NETWORK_FLAGS[@]}"),
    "env": { "CONTAINERS_CONF": "$PODMAN_CONF" },
    "image": "$IMAGE"
  },
  "sudo": {
    "user": "$USER_SUDO",
    "sshUser": "$USER_SSH",
    "passwordUser": "$USER_PW",
    "password": "$(cat "$DIR/pw_password")"
  }
}
EOF
  chmod 0600 "$DIR/env.json.new" # it holds chopsticks-pw's password
  mv -f "$DIR/env.json.new" "$DIR/env.json"
  NOTE="$DIR/env.json"
}

part deno up_deno
part users up_users
part sshd up_sshd
part hosts up_hosts
part docker up_docker
part podman up_podman
part sudo up_sudo
part env write_env
echo "up: all parts up in $(($(ms) - t0)) ms"
