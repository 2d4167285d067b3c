/**
 * File transfer benchmark: put and fetch of 256 MiB over a Local tunnel,
 * against `cat file | cat > dest` in the same run. Medians of several runs.
 *
 *     deno run -A bench/files.ts [rounds]
 *
 * @module
 */
import { Local } from "../mod.ts";
import { medianMs } from "./_measure.ts";

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

const mbps = (ms: number) => SIZE / 1e6 / (ms / 1000);
try {
  const cat = await medianMs(ROUNDS, () =>
    new Deno.Command("sh", {
      args: ["-c", `cat "${source}" | cat > "${dir}/cat.bin"`],
    }).output());
  await using tun = new Local("bench");
  await tun.connect();
  const put = await medianMs(ROUNDS, () => tun.put(source, `${dir}/put.bin`));
  const fetch = await medianMs(
    ROUNDS,
    () => tun.fetch(`${dir}/put.bin`, `${dir}/fetched.bin`),
  );
  console.log(
    `| 256 MiB over Local (median of ${ROUNDS}) | MB/s | vs cat \\| cat | vs Python chopsticks |
|---|---|---|---|
| cat file \\| cat > dest | ${mbps(cat).toFixed(0)} | 1.00x | - |
| put | ${mbps(put).toFixed(0)} | ${(mbps(put) / mbps(cat)).toFixed(2)}x | ${
      (mbps(put) / 259).toFixed(2)
    }x (259 MB/s) |
| fetch | ${mbps(fetch).toFixed(0)} | ${
      (mbps(fetch) / mbps(cat)).toFixed(2)
    }x | ${(mbps(fetch) / 142).toFixed(2)}x (142 MB/s) |`,
  );
} finally {
  await Deno.remove(dir, { recursive: true });
}
