import assert from "node:assert/strict";
import { ConnectError } from "../errors.ts";
import { add } from "../tests/fixtures/funcs.ts";
import { BaseTunnel, type TunnelOptions } from "../tunnel/base_tunnel.ts";
import type { SpawnSpec } from "../tunnel/_connection.ts";
import { PasswordSource, SudoStep } from "./_sudo.ts";
import type { SudoPassword } from "./sudo_password.ts";

/**
 * A stand-in for sudo with `passwd_tries=3`, in another language: prints
 * some text without a newline, then the `-p` prompt, reads a line, and
 * runs the command when it is "right"; else says so and asks again.
 */
const STUB = `#!/bin/sh
while [ $# -gt 0 ]; do
  case $1 in
    -p) prompt=$2; shift 2 ;;
    --) shift; break ;;
    *) shift ;;
  esac
done
n=0
while [ $n -lt 3 ]; do
  printf 'Vorsicht: ' >&2
  printf '%s' "$prompt" >&2
  IFS= read -r line || exit 1
  [ "$line" = right ] && exec "$@"
  echo "Entschuldigung, versuchen Sie es noch einmal." >&2
  n=$((n + 1))
done
echo "sudo: 3 inkorrekte Passworteingaben" >&2
exit 1
`;

/** A local tunnel through the stub, as the Sudo transport builds it. */
class StubSudo extends BaseTunnel {
  #stub: string;
  #source: PasswordSource;
  constructor(stub: string, password: SudoPassword, options: TunnelOptions) {
    super("stub-sudo", options);
    this.#stub = stub;
    this.#source = new PasswordSource(password);
  }
  protected spawnSpec(script: string): SpawnSpec {
    const step = new SudoStep(this.host, this.#source);
    const [, ...args] = step.command(true, script);
    return { command: this.#stub, args, preamble: step.preamble() };
  }
}

async function withStub(fn: (stub: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/sudo`, STUB, { mode: 0o755 });
    await fn(`${dir}/sudo`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("SudoStep answers the prompt marker whatever text surrounds it, and hides its markers", async () => {
  await withStub(async (stub) => {
    const lines: string[] = [];
    await using tun = new StubSudo(stub, () => Promise.resolve("right"), {
      output: (line) => lines.push(line),
    });
    assert.equal(await tun.call(add, 1, 2), 3);
    assert.deepEqual(lines, ["Vorsicht: "]);
  });
});

Deno.test("SudoStep fails at once on a second prompt (a wrong password), not at the timeout", async () => {
  await withStub(async (stub) => {
    let asked = 0;
    const tun = new StubSudo(stub, () => (asked++, "wrong"), {
      output: () => {},
      connectTimeout: 20_000,
    });
    const started = performance.now();
    const error = await tun.connect().catch((e) => e);
    const took = performance.now() - started;
    await tun.close();
    assert.ok(error instanceof ConnectError, String(error));
    assert.equal(error.stage, "sudo");
    assert.match(
      error.message,
      /sudo refused the password: Entschuldigung, versuchen Sie es noch einmal; check the password/,
    );
    assert.ok(took < 5_000, `took ${took} ms`);
    assert.equal(asked, 1);
  });
});
