import assert from "node:assert/strict";
import {
  DENO_MOUNT,
  type DockerOptions,
  Podman,
  type TunnelOptions,
} from "../mod.ts";
import { add } from "./fixtures/funcs.ts";
import { conformance } from "./_conformance.ts";
import { filesConformance } from "./_files_conformance.ts";
import { hosts, hostTest, sh, skipReason, startContainer } from "./_hosts.ts";

let count = 0;

/** A new-container tunnel on the test podman, with a fresh name. */
function podman(options: Omit<DockerOptions, "engine"> = {}): Podman {
  const env = hosts().podman;
  return new Podman(`chop-test-${Deno.pid}-${count++}`, {
    image: env.image,
    engineFlags: env.globalFlags,
    runFlags: [...env.runFlags, ...env.networkFlags],
    pull: "never",
    ...options,
  });
}

conformance("Podman", podman, { ignore: skipReason() });

// As for Docker: the files suite runs in exec mode, in one container.
const keep = startContainer("podman", DENO_MOUNT);
if (keep) {
  filesConformance(
    "Podman exec",
    (options?: TunnelOptions) =>
      new Podman(keep, {
        exec: true,
        deno: DENO_MOUNT,
        engineFlags: hosts().podman.globalFlags,
        ...options,
      }),
  );
}

hostTest("Podman: a closed tunnel leaves no container", async (env) => {
  const box = podman();
  assert.equal(await box.call(add, 1, 2), 3);
  assert.equal(await box.call(Deno.execPath), "/opt/chopsticks/deno");
  await box.close();
  const ps = await sh("podman", [
    ...env.podman.globalFlags,
    "ps",
    "-a",
    "--format",
    "{{.Names}}",
  ], env.podman.env);
  assert.ok(!ps.stdout.split("\n").includes(box.host), ps.stdout);
});
