/**
 * Runs the test suite with the real test hosts: as root, brings them up
 * with `tests/hosts/up.sh` (sshd, network-namespace hosts, dockerd, podman,
 * sudo users), runs `deno test`, and tears them down. Without root the
 * transport tests are skipped and the reason is printed; with `CI=true`
 * they fail instead. Extra arguments go to `deno test`.
 *
 *     deno task test                      # everything
 *     deno task test tests/local_test.ts  # some files
 *     KEEP_HOSTS=1 deno task test         # leave the hosts up afterwards
 *
 * @module
 */
const root = new URL("..", import.meta.url).pathname;
const deno = Deno.execPath();

async function run(cmd: string, args: string[], env = {}): Promise<boolean> {
  const { success } = await new Deno.Command(cmd, {
    args,
    cwd: root,
    env,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  return success;
}

const isRoot = Deno.uid() === 0;
let hostsUp = false;
if (isRoot) {
  console.error("test hosts: installing packages and bringing hosts up");
  hostsUp = await run("bash", ["tests/hosts/install.sh"]) &&
    await run("bash", ["tests/hosts/up.sh"], { DENO_BIN: deno });
  if (!hostsUp) {
    console.error("test hosts: could not be brought up (see above)");
  }
} else {
  console.error(
    "test hosts: SKIPPED: bringing up sshd, dockerd, podman and sudo users needs root; " +
      "the SSH, Sudo, Docker and Podman tests will be skipped",
  );
}

let ok = false;
try {
  const args = Deno.args.length ? Deno.args : [];
  ok = await run(deno, ["test", "-A", "--quiet", ...args]);
} finally {
  if (hostsUp && !Deno.env.get("KEEP_HOSTS")) {
    await run("bash", ["tests/hosts/down.sh"]);
  }
}
Deno.exit(ok ? 0 : 1);
