/**
 * File transfer benchmark: put and fetch of 256 MiB over a Local tunnel,
 * against `cat file | cat > dest` in the same run; and, when the test hosts
 * are up (`sudo bash tests/hosts/up.sh`), over SSH to the loopback sshd,
 * against `scp` of the same file in the same run. Medians of several runs.
 * Each series starts after a `sync`: `cat` and `scp` leave hundreds of MiB
 * for the disk to write, and a transfer that syncs what it received (as
 * put and fetch do) would wait for them too.
 *
 *     deno run -A bench/files.ts [rounds]
 *
 * @module
 */
import { Local } from "../mod.ts";
import { medianMs, run, sshHost } from "./_measure.ts";

const SIZE = 256 * 1024 * 1024;
const ROUNDS = Number(Deno.args[0] ?? 5);
const dir = await Deno.makeTempDir({ prefix: "chopsticks-bench-" });
const source = `${dir}/source.bin`;
{
  const file = await Deno.open(source, { write: true, create: true });
  const block = new Uint8Array(1024 * 1024);
  for (let i = 0; i < SIZE / block.length; i++) {
    crypto.getRandomValues(block.subarray(0, 65536));
    await file.write(block);
  }
  file.close();
}

/** The median of ROUNDS runs of `fn`, once the disk has caught up. */
async function series(fn: () => Promise<unknown>): Promise<number> {
  await run("sync", []);
  return await medianMs(ROUNDS, fn);
}

const mbps = (ms: number) => SIZE / 1e6 / (ms / 1000);
const row = (name: string, ms: number, baseMs: number, python?: number) =>
  `| ${name} | ${mbps(ms).toFixed(0)} | ${(baseMs / ms).toFixed(2)}x |${
    python === undefined
      ? ""
      : ` ${(mbps(ms) / python).toFixed(2)}x (${python} MB/s) |`
  }`;
try {
  const cat = await series(() =>
    new Deno.Command("sh", {
      args: ["-c", `cat "${source}" | cat > "${dir}/cat.bin"`],
    }).output()
  );
  {
    await using tun = new Local("bench");
    await tun.connect();
    const put = await series(() => tun.put(source, `${dir}/put.bin`));
    const fetch = await series(
      () => tun.fetch(`${dir}/put.bin`, `${dir}/fetched.bin`),
    );
    console.log(
      `| 256 MiB over Local (median of ${ROUNDS}) | MB/s | vs cat \\| cat | vs Python chopsticks |
|---|---|---|---|
| cat file \\| cat > dest | ${mbps(cat).toFixed(0)} | 1.00x | - |
${row("put", put, cat, 259)}
${row("fetch", fetch, cat, 142)}`,
    );
  }
  // The same over SSH, to the loopback sshd; the remote side writes to its
  // /tmp.
  const ssh = await sshHost("chopsticks-bench");
  if (ssh) {
    const { host, sshArgs, remote } = ssh;
    await using tun = ssh.tun;
    try {
      const scpPut = await series(
        () => run("scp", ["-q", ...sshArgs, source, `${host}:${remote}.scp`]),
      );
      const scpFetch = await series(
        () =>
          run("scp", [
            "-q",
            ...sshArgs,
            `${host}:${remote}.scp`,
            `${dir}/scp.bin`,
          ]),
      );
      const put = await series(
        () => tun.put(source, `${remote}.put`),
      );
      const fetch = await series(
        () => tun.fetch(`${remote}.put`, `${dir}/fetched-ssh.bin`),
      );
      console.log(
        `
| 256 MiB over SSH (median of ${ROUNDS}) | MB/s | vs scp |
|---|---|---|
| scp (to the host) | ${mbps(scpPut).toFixed(0)} | 1.00x |
${row("put", put, scpPut)}
| scp (from the host) | ${mbps(scpFetch).toFixed(0)} | 1.00x |
${row("fetch", fetch, scpFetch)}`,
      );
    } finally {
      await run("ssh", [
        ...sshArgs,
        host,
        "rm",
        "-f",
        `${remote}.scp`,
        `${remote}.put`,
      ])
        .catch(() => {});
    }
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
