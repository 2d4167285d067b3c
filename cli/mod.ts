/**
 * The `chopsticks` command line: run an exported function on many hosts,
 * copy files to and from them, and print facts about them.
 *
 * ```sh
 * deno run -A jsr:@chopsticks/chopsticks/cli call --hosts web1,web2 ./tasks.ts#uptime
 * deno task cli put --inventory hosts.json --group web app.conf /etc/app.conf --mode 644
 * deno task cli fetch --local 2 /etc/hostname 'out/{host}.txt' --json
 * deno task cli facts --hosts web1 --user deploy --port 2222
 * deno task cli help call
 * ```
 *
 * Exit status: 0 when every host succeeded, 1 when any failed, 2 for a
 * usage error. Run `chopsticks --help` for every option. The functions
 * below let a program run the CLI, or parse its command lines, itself.
 *
 * @module
 */
import { helpText } from "./help.ts";
import { COMMANDS, parseCommand } from "./parse_command.ts";
import { UsageError } from "./usage_error.ts";
import { type CliIo, runCommand } from "./_run.ts";

export { helpText } from "./help.ts";
export { type Inventory, parseInventory } from "./inventory.ts";
export {
  type CliCommand,
  type CommandName,
  COMMANDS,
  type HostOptions,
  parseCommand,
  type RunFlags,
} from "./parse_command.ts";
export { UsageError } from "./usage_error.ts";

const encoder = new TextEncoder();

function writeAll(file: { writeSync(p: Uint8Array): number }, text: string) {
  const bytes = encoder.encode(text);
  for (let done = 0; done < bytes.length;) {
    done += file.writeSync(bytes.subarray(done));
  }
}

function terminalColumns(): number {
  try {
    return Deno.consoleSize().columns || 80;
  } catch {
    return 80;
  }
}

/**
 * Runs the CLI with `args` and resolves to its exit status: 0 when every
 * host succeeded, 1 when any failed, 2 for a usage error. Prints to
 * stdout and stderr; help goes to stdout.
 *
 * @param args The arguments after `chopsticks`.
 * @returns The exit status.
 *
 * @example Running the CLI from a program
 * ```ts ignore
 * import { main } from "@chopsticks/chopsticks/cli";
 * const status = await main(["facts", "--local", "2", "--json"]);
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const terminal = Deno.stdout.isTerminal() && Deno.stderr.isTerminal();
  // A reader that went away (`| head`): the run goes on (stopping halfway
  // would leave some hosts done and others not), nothing more is written,
  // and the status says the output was not all delivered.
  let stdoutGone = false;
  const io: CliIo = {
    stdout: (text) => {
      if (stdoutGone) return;
      try {
        writeAll(Deno.stdout, text);
      } catch (e) {
        if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
        stdoutGone = true;
      }
    },
    stderr: (text) => writeAll(Deno.stderr, text),
    terminal,
    columns: terminal ? terminalColumns() : 100,
    color: terminal && !Deno.env.get("NO_COLOR"),
    cwd: Deno.cwd(),
  };
  try {
    const cmd = parseCommand(args);
    if (cmd.command === "help") {
      const { topic } = cmd;
      if (topic && topic !== "help" && !COMMANDS.some((c) => c === topic)) {
        throw new UsageError(
          `No help for "${topic}": commands are ${COMMANDS.join(", ")}`,
        );
      }
      io.stdout(helpText(topic));
      return stdoutGone ? 1 : 0;
    }
    const status = await runCommand(cmd, io);
    return stdoutGone ? Math.max(status, 1) : status;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    const help = e.command ? `chopsticks help ${e.command}` : "chopsticks help";
    io.stderr(`chopsticks: ${e.message}\nRun "${help}" for usage.\n`);
    return 2;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
