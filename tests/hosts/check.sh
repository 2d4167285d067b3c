#!/usr/bin/env bash
# Quick self-test of what up.sh brought up: every part must answer. Exits
# non-zero at the first failure, saying which part and showing its log.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/_common.sh"

[ -s "$DIR/env.json" ] || fail env "" "no $DIR/env.json: run up.sh first"
t0=$(ms)
SSH=(ssh -n -F "$DIR/ssh_config")
# What an agent does: serve HTTP on its own loopback and fetch from it.
# shellcheck disable=SC2016
JS='const s = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response(Deno.hostname()));
const r = await fetch(`http://127.0.0.1:${s.addr.port}/`);
console.log(await r.text());
await s.shutdown();'
QJS=$(printf '%q' "$JS")

# expect PART LOG WANT CMD...: CMD's stdout must be WANT ("*" for any).
expect() {
  local part=$1 log=$2 want=$3 out
  shift 3
  out=$("$@" 2>"$DIR/check.err") || fail "$part" "$log" "'$*' failed: $(tail -n 5 "$DIR/check.err")"
  [ "$want" = "*" ] || [ "$out" = "$want" ] || fail "$part" "$log" "'$*' printed '$out', not '$want'"
}
ok() { echo "$1: ok${2:+; $2}"; }

"$TARGET_DENO" eval "JSON.parse(Deno.readTextFileSync('$DIR/env.json'))" || fail env "" "env.json is not JSON"
ok env

t=$(ms)
expect sshd "$DIR/sshd/sshd.log" "$(hostname)" "${SSH[@]}" local-ssh "deno eval $QJS"
ok sshd "agent-like deno eval over ssh in $(($(ms) - t)) ms"

out=$("${SSH[@]}" noisy 'echo REAL' 2>"$DIR/check.err" | tr -d '\000') || fail noisy "$DIR/sshd/sshd.log" "ssh noisy failed"
case $out in *NOISY*REAL*) ;; *) fail noisy "" "no banner before the output: $out" ;; esac
grep -q NOISY "$DIR/check.err" || fail noisy "" "no banner on stderr"
ok noisy

for h in "${NS_HOSTS[@]}"; do
  expect "$h" "$DIR/$h/sshd.log" "$h" "${SSH[@]}" "$h" "deno eval $QJS"
done
expect h1 "$DIR/h2/sshd.log" h2 "${SSH[@]}" h1 "ssh -n h2 hostname"
ok hosts "${NS_HOSTS[*]} answer with their hostnames; h1 reaches h2"

t=$(ms)
expect docker "$DIR/docker/dockerd.log" "*" "${DOCKER[@]}" run --rm "${DOCKER_RUN_FLAGS[@]}" "${NETWORK_FLAGS[@]}" \
  -v "$TARGET_DENO:$TARGET_DENO:ro" "$IMAGE" deno eval "$JS"
ok docker "$(($(ms) - t)) ms"

t=$(ms)
expect podman "$DIR/podman/podman.log" "*" "${PODMAN[@]}" run --rm "${PODMAN_RUN_FLAGS[@]}" "${NETWORK_FLAGS[@]}" \
  -v "$TARGET_DENO:$TARGET_DENO:ro" "$IMAGE" deno eval "$JS"
ok podman "$(($(ms) - t)) ms"

pw=$(cat "$DIR/pw_password")
expect sudo "" "$(hostname)" sudo -n -u "$USER_SUDO" "$TARGET_DENO" eval "$JS"
expect sudo "" root "${SSH[@]}" local-ssh sudo -n whoami
expect sudo "" "$USER_SUDO" "${SSH[@]}" local-ssh sudo -n -u "$USER_SUDO" whoami
! "${SSH[@]}" pw sudo -n true 2>/dev/null || fail sudo "" "$USER_PW can sudo without a password"
expect sudo "" root "${SSH[@]}" pw "echo $pw | sudo -S -p '' whoami"
ok sudo

echo "check: all parts answer ($(($(ms) - t0)) ms)"
