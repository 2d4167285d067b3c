/**
 * The CLI's help texts.
 *
 * @module
 */
import { COMMANDS } from "./parse_command.ts";

const HOSTS = `Hosts (one of these is needed):
  --hosts a,b           SSH hosts, comma-separated; repeatable
  --inventory FILE      hosts from a JSON inventory file (see below)
  --group NAME          only the hosts of this inventory group
  --local N | a,b       N local agents (local1..localN) or named ones,
                        as subprocesses of this machine instead of SSH
  --transport T         how to reach --hosts and --inventory hosts: ssh
                        (default) or local (subprocesses named after them)

SSH (for --hosts and --inventory; refused with local hosts):
  --user USER           remote user (ssh -l)
  --port PORT           port (ssh -p)
  --identity FILE       private key (ssh -i)
  --ssh-option K=V      an ssh -o option, e.g. ProxyJump=bastion; repeatable

Every command:
  --deno PATH           the deno binary on the targets (default: deno on
                        PATH; "upload" ships this one)
  --connect-timeout MS  time to wait for each agent to start (default 30000)
  --concurrency N       at most N hosts at once (default: all)
  --timeout MS          time limit of each host's operation
  --json                print one JSON document with every host's result
  --no-progress         no live progress on a terminal
  -h, --help            this help`;

const OUTPUT = `Output:
  On a terminal: live progress on stderr (done, failed, running), then a
  summary table (facts: a block per host). Otherwise one line per host,
  tab-separated: host, "ok" or "failed", then the value (strings as they
  are, other values as JSON) or the error. --json prints
  {"command", "ok", "hosts": [{"host", "ok", "ms", "value" | "error"}]}.
  Lines the remote code prints go to stderr as "[host] line".

Exit status: 0 when every host succeeded, 1 when any failed (or stdout
was closed before everything was printed: the run goes on, printing
nothing more), 2 for a usage error.

Inventory (JSON), either a list of hosts:
  ["web1", "web2", "db1"]
or hosts and named groups (without --group: every host, each once):
  { "hosts": ["bastion"], "groups": { "web": ["web1", "web2"], "db": ["db1"] } }`;

const COMMAND_HELP: Record<string, string> = {
  call: `chopsticks call [options] MODULE#EXPORT [--args JSON]

Calls an exported function of a module on every host and prints what it
returns. MODULE is a path relative to the current directory (or a URL);
EXPORT defaults to "default". Agents load the module, and what it imports,
from its project (the nearest directory up from it with a deno.json).

  --args JSON           the arguments, as a JSON array: --args '[1, "x"]'

Example:
  chopsticks call --hosts web1,web2 ./tasks.ts#uptime
  chopsticks call --local 3 ./tasks.ts#add --args '[1, 2]' --json`,
  put: `chopsticks put [options] LOCAL [REMOTE] [--mode OCTAL]

Copies the local file LOCAL to REMOTE on every host (checked by sha256,
written atomically). Without REMOTE, each host picks a temporary file.
Prints each host's remote path, sha256 and size.

  --mode OCTAL          the remote file's mode, e.g. 644 (default: LOCAL's)

Example:
  chopsticks put --hosts web1,web2 app.tar.gz /srv/app.tar.gz --mode 640`,
  fetch: `chopsticks fetch [options] REMOTE LOCAL-TEMPLATE

Copies REMOTE from every host to a local path. {host} in LOCAL-TEMPLATE
becomes the host's name; a template that would write two hosts to one file
is refused before anything is copied. An existing local file is only
replaced by a complete, checked copy.

Example:
  chopsticks fetch --inventory hosts.json --group web /var/log/app.log 'logs/{host}.log'`,
  facts: `chopsticks facts [options]

Prints facts about every host: Deno version, host name, OS release,
platform, IP addresses, user, load average and memory.

Example:
  chopsticks facts --hosts web1,web2
  chopsticks facts --local 2 --json`,
};

/**
 * The help text: the overview, or one command's help with the options every
 * command takes.
 *
 * @param topic A command name, or undefined for the overview.
 * @returns The text, ending with a newline.
 *
 * @example Printing a command's help
 * ```ts
 * import { helpText } from "@chopsticks/chopsticks/cli";
 * console.log(helpText("call"));
 * ```
 */
export function helpText(topic?: string): string {
  if (topic !== undefined && COMMAND_HELP[topic]) {
    return `${COMMAND_HELP[topic]}\n\n${HOSTS}\n\n${OUTPUT}\n`;
  }
  return `chopsticks: run your functions on many hosts at once.

Usage:
  chopsticks call  [options] MODULE#EXPORT [--args JSON]
  chopsticks put   [options] LOCAL [REMOTE] [--mode OCTAL]
  chopsticks fetch [options] REMOTE LOCAL-TEMPLATE
  chopsticks facts [options]
  chopsticks help  [${COMMANDS.join(" | ")}]

Run it with: deno run -A jsr:@chopsticks/chopsticks/cli ...
or, in this repository: deno task cli ...

${HOSTS}

${OUTPUT}
`;
}
