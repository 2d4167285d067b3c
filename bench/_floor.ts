/**
 * A baseline for connect plus first call: the least an agent of this design
 * can do. The controller starts `deno run` directly (no agent script, no
 * process group, no private directory, no relays), with the permissions an
 * agent needs for its loopback listener and imports; the agent listens on
 * loopback, says hello on stdout, and imports the called module from its
 * listener, whose requests it relays to the controller over stdin/stdout
 * (JSON lines, no secret, no cache, no checks: only the file is read and
 * sent back); it calls the function, writes the result and exits. What the
 * real agent does on top of this (the script's guarantees, msgpack, its own
 * code, the module server's checks) is what the core benchmark's connect
 * costs more than this floor.
 *
 * @module
 */

const AGENT = `const port = Number(Deno.args[0]);
const utf8 = new TextEncoder();
const answers = new Map();
let next = 0;
const say = (m) => Deno.stdout.writeSync(utf8.encode(JSON.stringify(m) + "\\n"));
async function serve(conn) {
  const head = new Uint8Array(8192);
  const n = await conn.read(head);
  const path = new TextDecoder().decode(head.subarray(0, n ?? 0)).split(" ")[1];
  const id = ++next;
  const body = utf8.encode(await new Promise((r) => {
    answers.set(id, r);
    say({ ask: id, path });
  }));
  await conn.write(utf8.encode("HTTP/1.1 200 OK\\r\\ncontent-type: application/typescript\\r\\ncontent-length: " + body.length + "\\r\\nconnection: close\\r\\n\\r\\n"));
  await conn.write(body);
  conn.close();
}
(async () => {
  for await (const conn of Deno.listen({ hostname: "127.0.0.1", port })) serve(conn);
})();
(async () => {
  const utf8In = new TextDecoder();
  let text = "";
  for await (const chunk of Deno.stdin.readable) {
    text += utf8In.decode(chunk, { stream: true });
    for (let i; (i = text.indexOf("\\n")) >= 0; text = text.slice(i + 1)) {
      const m = JSON.parse(text.slice(0, i));
      if (m.answer) answers.get(m.answer)(m.body);
      else import(m.module).then((mod) => {
        say({ result: mod[m.fn](...m.args) });
        Deno.exit(0);
      });
    }
  }
})();
say({ hello: true });`;

/**
 * Runs the floor agent once: calls `fn` of the module `file` with `args`
 * and waits for the agent to end. Returns the result. (A port found taken
 * makes the agent fail; another is tried, up to three in all.)
 */
export async function floorCall(
  file: URL,
  fn: string,
  args: unknown[],
): Promise<unknown> {
  for (let tries = 1;; tries++) {
    try {
      return await floorOnce(file, fn, args);
    } catch (e) {
      if (tries === 3) throw e;
    }
  }
}

async function floorOnce(
  file: URL,
  fn: string,
  args: unknown[],
): Promise<unknown> {
  const port = 20_000 + Math.floor(Math.random() * 40_000);
  const loopback = `127.0.0.1:${port}`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-q",
      "--no-config",
      "--no-lock",
      `--allow-net=${loopback}`,
      `--allow-import=${loopback}`,
      "data:application/javascript;base64," + btoa(AGENT),
      String(port),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  const tell = (m: unknown) =>
    writer.write(new TextEncoder().encode(JSON.stringify(m) + "\n"));
  const decoder = new TextDecoder();
  let result: unknown;
  let text = "";
  for await (const chunk of child.stdout) {
    text += decoder.decode(chunk, { stream: true });
    for (let i; (i = text.indexOf("\n")) >= 0; text = text.slice(i + 1)) {
      const m = JSON.parse(text.slice(0, i));
      if (m.hello) {
        await tell({ module: `http://${loopback}${file.pathname}`, fn, args });
      } else if (m.ask) {
        await tell({ answer: m.ask, body: await Deno.readTextFile(file) });
      } else result = m.result;
    }
  }
  const [status] = await Promise.all([
    child.status,
    writer.close().catch(() => {}),
  ]);
  if (!status.success || result === undefined) {
    throw new Error(`the floor agent failed (${status.code}): see above`);
  }
  return result;
}
