import assert from "node:assert/strict";
import { Sudo, type TunnelOptions } from "../mod.ts";
import { conformance } from "./_conformance.ts";
import { filesConformance } from "./_files_conformance.ts";
import { hosts, hostTest, sh, skipReason } from "./_hosts.ts";

conformance(
  "Sudo",
  (options?: TunnelOptions) => new Sudo(hosts().sudo.user, options),
  { ignore: skipReason() },
);

if (!skipReason()) {
  filesConformance(
    "Sudo",
    (options?: TunnelOptions) => new Sudo(hosts().sudo.user, options),
  );
}

hostTest(
  "Sudo: the agent runs as the user, with that user's HOME",
  async (env) => {
    await using tun = new Sudo(env.sudo.user);
    assert.equal(tun.host, `sudo:${env.sudo.user}`);
    const uid = Number((await sh("id", ["-u", env.sudo.user])).stdout);
    assert.equal(await tun.call(Deno.uid), uid);
    assert.equal(
      await tun.call(Deno.env.get, "HOME"),
      `/home/${env.sudo.user}`,
    );
  },
);
