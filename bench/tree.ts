/**
 * Tree benchmark: putTree and fetchTree of 5,000 small files (1 to 2,000
 * bytes, in 50 directories) into a fresh destination, over a Local tunnel
 * against `cp -a` and `tar | tar` in the same run; and, when the test hosts
 * are up (`sudo bash tests/hosts/up.sh`), over SSH to the loopback sshd
 * against `tar | ssh host tar` both ways. A second putTree, with nothing
 * changed, is measured too. Medians of several rounds.
 *
 *     deno run -A bench/tree.ts [rounds]
 *
 * @module
 */
import { Local } from "../mod.ts";
import { median, run, sshHost } from "./_measure.ts";

const FILES = 5000;
const ROUNDS = Number(Deno.args[0] ?? 3);
const dir = await Deno.makeTempDir({ prefix: "chopsticks-bench-tree-" });
const source = `${dir}/source`;
let bytes = 0;
for (let i = 0; i < FILES; i++) {
  const sub = `${source}/d${i % 50}`;
  if (i < 50) await Deno.mkdir(sub, { recursive: true });
  const data = new Uint8Array(1 + (i * 37) % 2000);
  crypto.getRandomValues(data);
  await Deno.writeFile(`${sub}/f${i}`, data);
  bytes += data.length;
}

/**
 * The median wall time in ms of `copy` into a fresh destination each
 * round; `clean` removes it afterwards, untimed.
 */
async function fresh(
  copy: (dest: string) => Promise<unknown>,
  clean: (dest: string) => Promise<unknown>,
  dest: (round: number) => string,
): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const start = performance.now();
    await copy(dest(i));
    samples.push(performance.now() - start);
    await clean(dest(i));
  }
  return median(samples);
}

const here = (name: string) => (i: number) => `${dir}/${name}-${i}`;
const removeHere = (path: string) => Deno.remove(path, { recursive: true });
const sh = (script: string) => run("sh", ["-c", script]);
const row = (name: string, ms: number, baseMs: number) =>
  `| ${name} | ${(ms / 1000).toFixed(2)} s | ${
    Math.round(FILES / (ms / 1000)).toLocaleString("en-US")
  } | ${(ms / baseMs).toFixed(1)}x |`;

try {
  const cp = await fresh(
    (d) => run("cp", ["-a", source, d]),
    removeHere,
    here("cp"),
  );
  const tar = await fresh(
    (d) =>
      sh(`mkdir "${d}" && tar -C "${source}" -cf - . | tar -C "${d}" -xf -`),
    removeHere,
    here("tar"),
  );
  {
    await using tun = new Local("bench");
    await tun.connect();
    const put = await fresh(
      (d) => tun.putTree(source, d),
      removeHere,
      here("put"),
    );
    await tun.putTree(source, `${dir}/again`);
    const again = await fresh(
      () => tun.putTree(source, `${dir}/again`),
      async () => {},
      () => "",
    );
    const fetched = await fresh(
      (d) => tun.fetchTree(source, d),
      removeHere,
      here("fetched"),
    );
    console.log(
      `| ${FILES} files, ${
        (bytes / 1e6).toFixed(1)
      } MB, over Local (median of ${ROUNDS}) | time | files/s | vs tar \\| tar |
|---|---|---|---|
${row("cp -a", cp, tar)}
${row("tar \\| tar", tar, tar)}
${row("putTree", put, tar)}
${row("fetchTree", fetched, tar)}
${row("putTree again, nothing changed", again, tar)}`,
    );
  }
  // The same over SSH, to the loopback sshd; the remote side writes to its
  // /tmp.
  const target = await sshHost("chopsticks-bench-tree");
  if (target) {
    const { remote } = target;
    await using tun = target.tun;
    const ssh = `ssh ${
      target.sshArgs.map((a) => `"${a}"`).join(" ")
    } ${target.host}`;
    const there = (name: string) => (i: number) => `${remote}/${name}-${i}`;
    const removeThere = (path: string) => sh(`${ssh} rm -rf "${path}"`);
    try {
      await sh(`${ssh} mkdir "${remote}"`);
      const tarPut = await fresh(
        (d) =>
          sh(
            `tar -C "${source}" -cf - . | ${ssh} 'mkdir "${d}" && tar -C "${d}" -xf -'`,
          ),
        removeThere,
        there("tar"),
      );
      const put = await fresh(
        (d) => tun.putTree(source, d),
        removeThere,
        there("put"),
      );
      // What is fetched back: the tree as putTree left it there.
      await tun.putTree(source, `${remote}/source`);
      const tarFetch = await fresh(
        (d) =>
          sh(
            `mkdir "${d}" && ${ssh} 'tar -C "${remote}/source" -cf - .' | tar -C "${d}" -xf -`,
          ),
        removeHere,
        here("tar-back"),
      );
      const fetched = await fresh(
        (d) => tun.fetchTree(`${remote}/source`, d),
        removeHere,
        here("fetched-ssh"),
      );
      console.log(
        `
| ${FILES} files over SSH (median of ${ROUNDS}) | time | files/s | vs tar \\| ssh tar |
|---|---|---|---|
${row("tar \\| ssh host tar", tarPut, tarPut)}
${row("putTree", put, tarPut)}
${row("ssh host tar \\| tar", tarFetch, tarFetch)}
${row("fetchTree", fetched, tarFetch)}`,
      );
    } finally {
      await removeThere(remote).catch(() => {});
    }
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
