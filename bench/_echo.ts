/**
 * A baseline for one call: a Deno child that echoes what it reads, behind
 * the same plumbing as an agent with every permission (input through a FIFO
 * relayed by `dd`, output straight to the script's stdout, opened as
 * `/proc/<the script's pid>/fd/1`, reads and writes on Deno files), with
 * the controller on Web Streams pipes. A call cannot be faster than this
 * round trip; what it costs on top is the RPC.
 *
 * @module
 */

const ECHO = `const buf = new Uint8Array(65536);
const input = await Deno.open(Deno.args[0]);
const output = await Deno.open(Deno.args[1], { write: true });
while (true) {
  const n = await input.read(buf);
  if (n === null) break;
  output.writeSync(buf.subarray(0, n));
}`;

/** Median round trip of a 32-byte message, in microseconds. */
export async function echoRoundTripUs(rounds: number): Promise<number> {
  const url = "data:application/javascript;base64," + btoa(ECHO);
  const script = `d=$(mktemp -d) && mkfifo "$d/i" || exit 1
exec 5<&0 </dev/null
{ dd bs=128k of="$d/i" conv=notrunc <&5 2>/dev/null; } &
"${Deno.execPath()}" run -q -A '${url}' "$d/i" /proc/$$/fd/1 >&2 5<&- &
wait $!
rm -rf "$d"`;
  const child = new Deno.Command("sh", {
    args: ["-c", script],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  const reader = child.stdout.getReader();
  const message = new Uint8Array(32);
  const samples: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      const start = performance.now();
      await writer.write(message);
      for (let got = 0; got < message.length;) {
        const { value, done } = await reader.read();
        if (done) throw new Error("the echo child ended");
        got += value.length;
      }
      samples.push(performance.now() - start);
    }
  } finally {
    await writer.close();
    reader.releaseLock();
    await child.stdout.cancel();
    await child.status;
  }
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1] * 1000;
}
