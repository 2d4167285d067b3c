// The agent's first module. The controller sends it as a `data:` URL main
// module, so it cannot import anything: it sets up the channel and the
// loopback module server by itself, then imports the rest of the agent
// through that server. Deno.args: [input fifo, output fifo, working dir].
//
// @ts-check
// Frames: [u32 big-endian length][u8 kind][body]; see wire/PROTOCOL.md.

const MSG = 1, MOD_REQ = 2, MOD_RES = 3, HELLO = 4, FAIL = 5, DATA = 6;
const MAX_FRAME = 64 * 1024 * 1024;
const TYPES = [
  "text/plain",
  "application/typescript",
  "application/javascript",
  "application/json",
  "text/tsx",
  "text/jsx",
];

/** @typedef {{ port: number, secret: string, nonce: string, agent: string, context: object }} Hello */
/** @typedef {(kind: number, body: Uint8Array) => void} Handler */

const input = await Deno.open(Deno.args[0], { read: true });
const output = await Deno.open(Deno.args[1], { write: true });
const utf8 = new TextEncoder();

// Outgoing frames are queued and written together, one write per turn.
/** @type {Uint8Array[]} */
let queue = [];
let flushing = false;
/** @param {number} kind @param {Uint8Array} body */
function send(kind, body) {
  const head = new Uint8Array(5);
  new DataView(head.buffer).setUint32(0, body.length + 1);
  head[4] = kind;
  queue.push(head, body);
  if (!flushing) {
    flushing = true;
    queueMicrotask(flush);
  }
}
async function flush() {
  try {
    while (queue.length > 0) {
      const parts = queue;
      queue = [];
      let size = 0;
      for (const p of parts) size += p.length;
      const buf = new Uint8Array(size);
      let at = 0;
      for (const p of parts) {
        buf.set(p, at);
        at += p.length;
      }
      for (let done = 0; done < buf.length;) {
        done += await output.write(buf.subarray(done));
      }
    }
  } catch {
    Deno.exit(70); // the controller is gone
  }
  flushing = false;
}

// The end: the channel closed, or the agent script asked us to stop. Hooks
// remove what the agent made (half-written files), then the process exits.
let exiting = false;
/** @param {number} code */
async function exit(code) {
  if (!exiting) {
    exiting = true;
    await Promise.allSettled(closeHooks.map((hook) => hook()));
    Deno.exit(code);
  }
}
Deno.addSignalListener("SIGTERM", () => exit(143));

// Incoming frames: read loop with a growable buffer.
/** @type {Handler | undefined} */
let onFrame;
/** @type {[number, Uint8Array][]} */
const early = [];
/** @type {(() => void | Promise<void>)[]} */
const closeHooks = [];
/** @type {Map<number, (r: Response) => void>} */
const modules = new Map();
/** @type {(h: Hello) => void} */
let hello = () => {};
/** @type {Promise<Hello>} */
const gotHello = new Promise((resolve) => hello = resolve);

/** @param {number} kind @param {Uint8Array} body */
function dispatch(kind, body) {
  if (kind === MSG || kind === DATA) {
    // The read buffer is reused. Messages are copied (decoded values may be
    // views of them); file chunks are not, since they are written to disk
    // synchronously, before the buffer is reused.
    const mine = kind === MSG ? body.slice() : body;
    if (onFrame) onFrame(kind, mine);
    else early.push([kind, body.slice()]);
  } else if (kind === MOD_RES) {
    const view = new DataView(body.buffer, body.byteOffset, body.length);
    const id = view.getUint32(0);
    const status = view.getUint16(4);
    const type = TYPES[body[6]] ?? "text/plain";
    const done = modules.get(id);
    modules.delete(id);
    done?.(
      new Response(body.slice(7), {
        status,
        headers: { "content-type": type },
      }),
    );
  } else if (kind === HELLO) {
    hello(JSON.parse(new TextDecoder().decode(body)));
  }
}

(async () => {
  let buf = new Uint8Array(2 * 1024 * 1024);
  let end = 0;
  while (true) {
    if (end === buf.length) {
      const bigger = new Uint8Array(buf.length * 2);
      bigger.set(buf);
      buf = bigger;
    }
    const n = await input.read(buf.subarray(end));
    if (n === null) return await exit(0); // the controller closed the channel
    end += n;
    let at = 0;
    while (end - at >= 4) {
      const len = new DataView(buf.buffer, at, 4).getUint32(0);
      if (len === 0 || len > MAX_FRAME) Deno.exit(71);
      if (end - at - 4 < len) {
        if (len + 4 > buf.length) {
          const bigger = new Uint8Array(len + 4);
          bigger.set(buf.subarray(at, end));
          buf = bigger;
          end -= at;
          at = 0;
        }
        break;
      }
      dispatch(buf[at + 4], buf.subarray(at + 5, at + 4 + len));
      at += 4 + len;
    }
    if (at > 0) {
      buf.copyWithin(0, at, end);
      end -= at;
    }
  }
})();

const boot = await gotHello;
let nextModule = 1;
try {
  Deno.serve(
    { hostname: "127.0.0.1", port: boot.port, onListen() {} },
    (req) => {
      const id = nextModule++;
      const path = utf8.encode(new URL(req.url).pathname);
      const body = new Uint8Array(4 + path.length);
      new DataView(body.buffer).setUint32(0, id);
      body.set(path, 4);
      send(MOD_REQ, body);
      return new Promise((resolve) => modules.set(id, resolve));
    },
  );
} catch (e) {
  const code = e instanceof Deno.errors.AddrInUse ? "port" : "listen";
  await output.write(utf8.encode(`\u0000chopsticks-ready:${boot.nonce}\n`));
  send(FAIL, utf8.encode(JSON.stringify({ code, message: String(e) })));
  await new Promise((r) => setTimeout(r, 100));
  Deno.exit(1);
}
await output.write(utf8.encode(`\u0000chopsticks-ready:${boot.nonce}\n`));

const base = `http://127.0.0.1:${boot.port}/${boot.secret}/`;
const agent = await import(base + boot.agent);
agent.start({
  send,
  /** @param {Handler} handler */
  receive(handler) {
    onFrame = handler;
    for (const [kind, body] of early.splice(0)) handler(kind, body);
  },
  /** @param {() => void | Promise<void>} hook */
  onClose(hook) {
    closeHooks.push(hook);
  },
  base,
  cwd: Deno.args[2],
  context: boot.context,
});
