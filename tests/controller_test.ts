import assert from "node:assert/strict";

const here = new URL(".", import.meta.url).pathname;

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/\) Z /.test(stat);
  } catch {
    return false;
  }
}

Deno.test("a function exported by the main script runs remotely, called from top-level code", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${here}fixtures/main_script.ts`],
    stderr: "inherit",
  }).output();
  assert.equal(out.code, 0);
  const result = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.equal(result.doubled, 42);
  assert.notEqual(result.pid, result.controller);
  assert.match(result.refused, /not exported; export it/);
});

Deno.test("when the controller is SIGKILLed, the agent and its children are gone within 2 s", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${here}fixtures/kill_controller.ts`],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const { agent, sleeper } = JSON.parse(text);
  assert.ok(alive(agent) && alive(sleeper), "both run before the kill");
  child.kill("SIGKILL");
  await child.status;
  const deadline = Date.now() + 2000;
  while ((alive(agent) || alive(sleeper)) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(alive(agent), false, "the agent outlived its controller");
  assert.equal(
    alive(sleeper),
    false,
    "the agent's child outlived the controller",
  );
  await reader.cancel();
});
