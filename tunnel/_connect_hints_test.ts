import assert from "node:assert/strict";
import {
  agentEnded,
  exitCause,
  lastWords,
  meaningfulLines,
  relayEnded,
} from "./_connect_hints.ts";

const ESC = String.fromCharCode(27);

Deno.test("meaningfulLines() drops colours, blank lines and Deno's backtrace", () => {
  assert.deepEqual(
    meaningfulLines([
      `${ESC}[0m${ESC}[1m${ESC}[31merror${ESC}[0m: bad flag`,
      "",
      "Stack backtrace:",
      "   0: <unknown>",
      "             at src/main.rs:1:2",
      "after",
    ]),
    ["error: bad flag", "after"],
  );
});

Deno.test("exitCause() names the agent script's missing tool, not a later one of its exit trap", () => {
  for (
    const line of [
      "/usr/bin/sh: 14: mkfifo: not found", // dash
      "sh: line 14: mkfifo: command not found", // bash
      "sh: mkfifo: not found", // busybox
    ]
  ) {
    const cause = exitCause([line, "sh: 1: rm: not found"], 125, "sh", "");
    assert.equal(cause.stage, "agent");
    assert.equal(cause.said, line);
    assert.match(cause.hint, /^mkfifo, a tool of the agent script/);
  }
});

Deno.test("exitCause() quotes Deno's error with what its causes add, and leaves others to the transport", () => {
  const deno = exitCause(
    [
      `${ESC}[31merror${ESC}[0m: invalid host 'x y'`,
      "",
      "Caused by:",
      "    0: invalid host 'x y'",
      "    1: invalid char found in FQDN",
      "",
      "Stack backtrace:",
      "   0: <unknown>",
    ],
    1,
    "sh",
    "",
  );
  assert.deepEqual(
    [deno.stage, deno.who, deno.said],
    ["agent", "deno", "invalid host 'x y': invalid char found in FQDN"],
  );
  // Podman's errors start with a capital: the transport's, as any other.
  const engine = exitCause(["Error: no such container x"], 125, "podman", "h");
  assert.deepEqual(
    [engine.stage, engine.who, engine.said, engine.hint],
    ["transport", "podman", "Error: no such container x", "h"],
  );
});

Deno.test("exitCause() and relayEnded() name the agent script's word that its output relay ended", () => {
  const line =
    "chopsticks: the agent's output relay (cat) ended with status 137, so the agent was stopped";
  for (const cause of [exitCause([line], 143, "sh", "h"), relayEnded([line])]) {
    assert.deepEqual(
      [cause?.stage, cause?.who, cause?.said],
      ["agent", "the agent script", line],
    );
    assert.match(cause?.hint ?? "", /killed the relay/);
  }
  assert.equal(relayEnded(["sh: 1: cat: not found"]), undefined);
});

Deno.test("agentEnded() says an agent killed while it started was killed, not that its deno may be old", () => {
  const killed = agentEnded(["some line"], 137);
  assert.equal(killed.stage, "agent");
  assert.match(
    killed.hint,
    /^it was killed by signal 9 \(SIGKILL\): something on the target stopped it/,
  );
  assert.doesNotMatch(killed.hint, /old deno/);
  const failed = agentEnded(["error: Uncaught SyntaxError: x"], 1);
  assert.equal(failed.said, "error: Uncaught SyntaxError: x");
  assert.match(failed.hint, /the agent started but failed/);
});

Deno.test("lastWords() quotes the uncaught error an agent died of, not one it printed before it was killed", () => {
  const tail = [
    "error: Uncaught (in promise) Error: boom",
    "    at run (file:///x.ts:1:1)",
    "later output",
  ];
  assert.equal(lastWords(tail, 1), "error: Uncaught (in promise) Error: boom");
  assert.equal(lastWords(tail, 137), "later output");
  assert.equal(lastWords([], 1), "");
});
