/**
 * Running the agent script through sudo, with or without a password.
 *
 * Without a password: `sudo -n -H [-u user] -- sh -c '<script>'` (sudo never
 * prompts). With one: `sudo -S -p '<prompt marker>\n' ...`, so sudo prints
 * a random marker on stderr when, and only when, it asks, whatever the
 * locale or the configured prompt; the password line is written to stdin
 * then. Either way the script starts by printing a second marker on
 * stderr: seeing it proves sudo let the script run, and with a password the
 * boot lines wait for it (so sudo never reads them as a password). Neither
 * marker reaches the output. A second prompt means the password was
 * refused, which fails the connection at once.
 *
 * @module
 */
import { ConnectError } from "../errors.ts";
import type { Preamble } from "../tunnel/_connection.ts";
import type { SudoPassword } from "./sudo_password.ts";

/** Throws a TypeError unless `user` is true (root) or a user name. */
export function checkSudoUser(user: unknown): asserts user is true | string {
  if (user !== true && (typeof user !== "string" || !/^[\w.-]+$/.test(user))) {
    throw new TypeError(
      `Cannot use sudo user ${JSON.stringify(user)}: expected a user name`,
    );
  }
}

/**
 * The words before the command: `sudo -n -H [-u user] --`, or with a
 * `prompt`, `sudo -S -p <prompt> -H [-u user] --`. `user` true means sudo's
 * default target (root).
 */
export function sudoWords(user: true | string, prompt?: string): string[] {
  checkSudoUser(user);
  const how = prompt === undefined ? ["-n"] : ["-S", "-p", prompt];
  return ["sudo", ...how, "-H", ...(user === true ? [] : ["-u", user]), "--"];
}

/**
 * A tunnel's sudo password: asked for when sudo first asks, then kept for
 * the tunnel's later connections, until sudo refuses it.
 */
export class PasswordSource {
  #password: SudoPassword;
  #answer: Promise<string> | undefined;

  /** Checks `password` (a TypeError when it cannot be one). */
  constructor(password: SudoPassword) {
    if (typeof password === "string") checkPassword(password);
    else if (typeof password !== "function") {
      throw new TypeError(
        "Cannot use the sudo password: expected a string or a function that gives one",
      );
    }
    this.#password = password;
  }

  /** The password: asks once, then gives the same answer. */
  get(): Promise<string> {
    if (this.#answer) return this.#answer;
    const p = this.#password;
    const asking = Promise.resolve().then(() => typeof p === "string" ? p : p())
      .then((value) => checkPassword(value));
    this.#answer = asking;
    asking.catch(() => {
      if (this.#answer === asking) this.#answer = undefined;
    });
    return asking;
  }

  /** sudo refused the answer: forget it here, and in a shared function. */
  refused(): void {
    this.#answer = undefined;
    const forget = (this.#password as { forget?: unknown }).forget;
    if (typeof forget === "function") forget.call(this.#password);
  }
}

function checkPassword(value: unknown): string {
  if (typeof value !== "string") {
    throw new TypeError(
      `Cannot use the sudo password: expected a string, got ${typeof value}`,
    );
  }
  if (/[\n\r\0]/.test(value)) {
    throw new TypeError(
      "Cannot use the sudo password: it holds a newline or NUL",
    );
  }
  return value;
}

const SUDO_LINE = /^sudo: /;

/** sudo's own failures: its line, what it means, what to do. */
const SUDO_CAUSES: [RegExp, string, string][] = [
  [
    /a password is required|a terminal is required/,
    "sudo asks for a password",
    "give it as the password option (sudo: { password } over SSH, or new Sudo(user, { password })), or give this user a NOPASSWD sudoers rule (sudo -n never prompts)",
  ],
  [
    /is not in the sudoers file|is not allowed to (run|execute)/,
    "sudo refuses this user",
    "check the sudoers rules",
  ],
  [
    /unknown user/,
    "sudo failed",
    "the sudo target user does not exist there",
  ],
];

/** The sudo part of one spawn: its markers, its state, its preamble. */
export class SudoStep {
  #host: string;
  #source: PasswordSource | undefined;
  #prompt = `chopsticks-sudo-prompt-${token()}`;
  #ok = `chopsticks-sudo-ok-${token()}`;
  #asked = 0;
  #sent = false;
  #passed = false;
  #password: string | undefined;
  #write: ((bytes: Uint8Array) => void) | undefined;
  #done: PromiseWithResolvers<void> = Promise.withResolvers<void>();
  #tail: string[] = [];

  /** `source` given: sudo may ask, and gets the password. */
  constructor(host: string, source?: PasswordSource) {
    this.#host = host;
    this.#source = source;
    this.#done.promise.catch(() => {});
  }

  /** The command words: sudo, then `sh -c` with the marked script. */
  command(user: true | string, script: string): string[] {
    const prompt = this.#source ? this.#prompt + "\n" : undefined;
    return [
      ...sudoWords(user, prompt),
      "sh",
      "-c",
      `echo ${this.#ok} >&2\n${script}`,
    ];
  }

  /** True once the script ran as the target user (sudo let it). */
  get passed(): boolean {
    return this.#passed;
  }

  /** The hook the connection runs before its boot lines. */
  preamble(): Preamble {
    return {
      filter: (line) => this.#filter(line),
      ready: this.#source ? (write) => this.#ready(write) : undefined,
    };
  }

  /**
   * Restates `error` as a failure of stage "sudo" when sudo stopped before
   * the script ran: the process exited before the second marker, and sudo
   * said something or asked. `transportCodes` are exit codes of the
   * transport's own (ssh's 255), left as they are.
   */
  explain(error: ConnectError, transportCodes: number[] = []): ConnectError {
    if (this.#passed || error.stage === "sudo") return error;
    if (error.exitCode === undefined) return error;
    if (transportCodes.includes(error.exitCode)) return error;
    const lines = error.stderrTail.filter((l) => SUDO_LINE.test(l));
    if (lines.length === 0 && this.#asked === 0) return error;
    if (this.#sent) this.#source?.refused();
    // The line that names a known cause (sudo may add another after it,
    // such as "error initializing audit plugin"), or else the last one.
    let said = lines.at(-1);
    let [what, hint] = ["sudo failed", "check the sudoers rules for this user"];
    if (this.#sent) {
      [what, hint] = [
        "sudo refused the password",
        "check the password given to sudo",
      ];
    } else {
      for (const line of lines.toReversed()) {
        const cause = SUDO_CAUSES.find(([pattern]) => pattern.test(line));
        if (cause) {
          [said, what, hint] = [line, cause[1], cause[2]];
          break;
        }
      }
    }
    return new ConnectError(
      error.host,
      "sudo",
      `Cannot connect to "${error.host}": ${what}${
        said ? ": " + said.replace(/\.$/, "") : ""
      }; ${hint}`,
      {
        exitCode: error.exitCode,
        stderrTail: error.stderrTail,
        cause: error.cause,
      },
    );
  }

  #filter(line: string): string | undefined {
    if (line.endsWith(this.#prompt)) {
      this.#onPrompt();
      return line.slice(0, -this.#prompt.length) || undefined;
    }
    if (line.endsWith(this.#ok)) {
      this.#passed = true;
      this.#password = undefined;
      this.#done.resolve();
      return line.slice(0, -this.#ok.length) || undefined;
    }
    this.#tail.push(line);
    if (this.#tail.length > 20) this.#tail.shift();
    return line;
  }

  #ready(write: (bytes: Uint8Array) => void): Promise<void> {
    this.#write = write;
    this.#send();
    return this.#done.promise;
  }

  #onPrompt(): void {
    this.#asked++;
    const source = this.#source;
    if (this.#asked > 1 || !source) {
      // A second prompt: the password was wrong (sudo would wait for
      // another line forever).
      if (this.#sent) source?.refused();
      const last = this.#tail.findLast((l) => l.trim() !== "");
      return this.#fail(
        this.#sent
          ? `sudo refused the password${
            last ? ": " + last.replace(/\.$/, "") : ""
          }; check the password given to sudo`
          : "sudo asks for a password; give it as the password option",
      );
    }
    source.get().then(
      (password) => {
        this.#password = password;
        this.#send();
      },
      (e) =>
        this.#fail(
          `cannot get the sudo password: ${(e as Error)?.message ?? e}`,
          e,
        ),
    );
  }

  #send(): void {
    if (this.#sent || !this.#write || this.#password === undefined) return;
    this.#sent = true;
    this.#write(new TextEncoder().encode(this.#password + "\n"));
    this.#password = undefined;
  }

  #fail(what: string, cause?: unknown): void {
    this.#done.reject(
      new ConnectError(
        this.#host,
        "sudo",
        `Cannot connect to "${this.#host}": ${what}`,
        { stderrTail: [...this.#tail], cause },
      ),
    );
  }
}

function token(): string {
  const raw = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(raw, (b) => b.toString(16).padStart(2, "0")).join("");
}
