/**
 * Transport benchmark (issue: real transports), against the test hosts
 * (`sudo bash tests/hosts/up.sh`). Each figure is a median measured in
 * this run, beside a baseline of the same transport doing nothing useful:
 *
 * - SSH connect plus first call, against a bare `ssh host true`;
 * - the same with a shared connection (controlPersist), against
 *   `ssh host true` through that connection;
 * - one call over SSH, against a 1-line echo round trip through one raw
 *   `ssh host cat`;
 * - Docker (and Podman) connect plus first call, against
 *   `docker run --rm image true`.
 *
 *     deno run -A bench/transports.ts
 *
 * @module
 */
import { controlDir } from "../transports/_control_dir.ts";
import { Docker, Podman, Tunnel } from "../mod.ts";
import { add } from "./_target.ts";
import { hosts } from "../tests/_hosts.ts";
import { median, medianMs, run } from "./_measure.ts";

const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 15);
const CALLS = 2000;

const env = (() => {
  try {
    return hosts();
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(1);
  }
})();
const host = "local-ssh";
const sshArgs = ["-F", env.ssh.config];
const quiet = { output: () => {} };

const rows: string[] = [];
function report(name: string, ms: number, base: string, baseMs: number) {
  const fmt = (v: number) =>
    v >= 10 ? `${v.toFixed(0)} ms` : `${v.toFixed(2)} ms`;
  rows.push(
    `| ${name} | ${fmt(ms)} | ${base} ${fmt(baseMs)} | ${
      (ms / baseMs).toFixed(2)
    }x |`,
  );
}

// SSH: connect plus first call, each time a new ssh connection.
{
  const bare = await medianMs(
    ROUNDS,
    () => run("ssh", [...sshArgs, host, "true"]),
  );
  const connect = await medianMs(ROUNDS, async () => {
    await using tun = new Tunnel(host, { sshArgs, ...quiet });
    await tun.call(add, 1, 2);
  });
  report("SSH connect + first call", connect, "`ssh host true`", bare);
}

// SSH with controlPersist: both sides reuse one master connection.
{
  const persist = { sshArgs, controlPersist: 60, ...quiet };
  const warm = new Tunnel(host, persist);
  await warm.call(add, 1, 2);
  await warm.close();
  // The master the tunnel left: its socket is named after the tunnel's
  // ssh options too, so the baseline takes it from the directory.
  const dir = controlDir();
  const [path] = [...Deno.readDirSync(dir)]
    .map((e) => `${dir}/${e.name}`)
    .sort((a, b) =>
      Deno.statSync(b).mtime!.getTime() - Deno.statSync(a).mtime!.getTime()
    );
  const mux = [
    ...sshArgs,
    "-o",
    "ControlMaster=auto",
    "-o",
    `ControlPath=${path}`,
  ];
  const bare = await medianMs(ROUNDS, () => run("ssh", [...mux, host, "true"]));
  const connect = await medianMs(ROUNDS, async () => {
    await using tun = new Tunnel(host, persist);
    await tun.call(add, 1, 2);
  });
  report(
    "SSH connect + first call, controlPersist",
    connect,
    "`ssh host true` (same master)",
    bare,
  );
  await run("ssh", [...mux, "-O", "exit", host]).catch(() => {});
}

// One call over SSH against a raw echo round trip through `ssh host cat`.
{
  const cat = new Deno.Command("ssh", {
    args: [...sshArgs, host, "cat"],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const writer = cat.stdin.getWriter();
  const reader = cat.stdout.getReader();
  const line = new TextEncoder().encode("0123456789abcdef0123456789abcdef\n");
  const roundTrip = async () => {
    await writer.write(line);
    let got = 0;
    while (got < line.length) {
      const { value, done } = await reader.read();
      if (done) throw new Error("ssh cat ended");
      got += value.length;
    }
  };
  for (let i = 0; i < 200; i++) await roundTrip();
  const raw: number[] = [];
  for (let r = 0; r < 9; r++) {
    const start = performance.now();
    for (let i = 0; i < CALLS; i++) await roundTrip();
    raw.push((performance.now() - start) / CALLS);
  }
  await writer.close();
  await reader.cancel();
  await cat.status;

  await using tun = new Tunnel(host, { sshArgs, ...quiet });
  for (let i = 0; i < 200; i++) await tun.call(add, i, 1);
  const calls: number[] = [];
  for (let r = 0; r < 9; r++) {
    const start = performance.now();
    for (let i = 0; i < CALLS; i++) await tun.call(add, i, 1);
    calls.push((performance.now() - start) / CALLS);
  }
  report(
    "one call over SSH",
    median(calls),
    "`ssh host cat` 1-line echo",
    median(raw),
  );
}

// Containers: connect plus first call against `run --rm image true`.
for (const engine of ["docker", "podman"] as const) {
  const e = env[engine];
  const runFlags = [...e.runFlags, ...e.networkFlags];
  const bare = await medianMs(
    ROUNDS,
    () =>
      run(engine, [
        ...e.globalFlags,
        "run",
        "--rm",
        ...runFlags,
        e.image,
        "true",
      ]),
  );
  let n = 0;
  const Engine = engine === "docker" ? Docker : Podman;
  const connect = await medianMs(ROUNDS, async () => {
    await using box = new Engine(`chop-bench-${Deno.pid}-${n++}`, {
      image: e.image,
      engineFlags: e.globalFlags,
      runFlags,
      pull: "never",
      ...quiet,
    });
    await box.call(add, 1, 2);
  });
  const name = engine === "docker" ? "Docker" : "Podman";
  report(
    `${name} connect + first call`,
    connect,
    `\`${engine} run --rm image true\``,
    bare,
  );
}

console.log(
  `Transports, medians of ${ROUNDS} connects and ${
    9 * CALLS
  } calls (deno ${Deno.version.deno}, ${Deno.build.os} ${Deno.build.arch}):

| measure (median) | chopsticks | baseline | ratio |
|---|---|---|---|
${rows.join("\n")}`,
);
