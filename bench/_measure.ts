/**
 * Small helpers for the benchmarks: medians of repeated timings, running a
 * baseline command, and the SSH host they measure against.
 *
 * @module
 */
import { Tunnel } from "../mod.ts";
import { hosts, skipReason } from "../tests/_hosts.ts";

/** The median of `values`. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Runs `fn` `times` times and returns the median wall time in ms. */
export async function medianMs(
  times: number,
  fn: () => Promise<unknown>,
): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < times; i++) {
    const start = performance.now();
    await fn();
    samples.push(performance.now() - start);
  }
  return median(samples);
}

/** Runs `command` quietly; throws with its stderr when it fails. */
export async function run(command: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `${command} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

/** The loopback sshd's host of `tests/hosts`, for a benchmark's SSH part. */
export interface SshHost {
  /** Its name in the ssh config. */
  host: string;
  /** The arguments that make `ssh` and `scp` reach it. */
  sshArgs: string[];
  /** A fresh path under its /tmp, named after `prefix`. */
  remote: string;
  /** A tunnel to it, connected. */
  tun: Tunnel;
}

/**
 * The SSH host to measure against, with a connected tunnel; or undefined,
 * saying why, when the test hosts are not up.
 */
export async function sshHost(prefix: string): Promise<SshHost | undefined> {
  const skip = skipReason();
  if (skip) {
    console.log(`\nSSH: skipped: ${skip}`);
    return undefined;
  }
  const host = "local-ssh";
  const sshArgs = ["-F", hosts().ssh.config];
  const tun = new Tunnel(host, { sshArgs, output: () => {} });
  await tun.connect();
  const remote = `/tmp/${prefix}-${crypto.randomUUID().slice(0, 8)}`;
  return { host, sshArgs, remote, tun };
}
