import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { UsageError } from '../errors.ts';
// Only the commands' definitions (options, help, checks): each one imports its protocol code
// inside its action, so help, --version and usage errors load no part of the stack.
import { demoCommand } from './demo-command.ts';
import { fetchCommand } from './fetch-command.ts';
import { netnsCommand } from './netns-command.ts';
import { pingCommand } from './ping-command.ts';
import { serveCommand } from './serve-command.ts';
import { traceCommand } from './trace-command.ts';

/** Where a run of the command writes: stdout and stderr, or a test's buffers. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: CliIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

/** Exit status for a mistake in how the command was called, as most Unix tools use. */
export const EXIT_USAGE = 2;

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

export function registerCommands(program: Command, print: (s: string) => void): void {
  program.addCommand(demoCommand(print));
  program.addCommand(netnsCommand(print));
  program.addCommand(serveCommand(print));
  program.addCommand(pingCommand(print));
  program.addCommand(traceCommand(print));
  program.addCommand(fetchCommand());
}

/** The whole `stepwire` program, writing to `io`. */
export function buildProgram(io: CliIo = processIo): Command {
  const output = { writeOut: io.out, writeErr: io.err };
  const program = new Command('stepwire')
    .description(
      'A network protocol stack in TypeScript (IPv4/IPv6, ICMP, UDP, TCP, TLS 1.3), stepped packet by packet',
    )
    .version(version, '-V, --version', 'print the version and exit')
    .configureOutput(output)
    .showHelpAfterError("(run 'stepwire --help' for usage)")
    .exitOverride();
  registerCommands(program, (s) => io.out(`${s}\n`));
  // Commands added with addCommand() do not inherit these: every one throws instead of
  // exiting (so usage errors exit 2 in runCli) and names its own --help after an error.
  for (const c of program.commands) {
    c.exitOverride()
      .configureOutput(output)
      .showHelpAfterError(`(run 'stepwire ${c.name()} --help' for usage)`);
  }
  program.addHelpText(
    'after',
    `
Examples:
  stepwire demo                      ping, UDP, fragments, TCP and TLS between two simulated hosts
  stepwire demo --list               the scenarios, one per protocol feature
  stepwire demo tls-hrr --seed 7     one scenario, deterministic by seed
  stepwire serve --tun --trace       our stack on a TUN device in a namespace (root)
  stepwire demo --html demo.html     the same exchange as a page: ladder, layer trees, bytes, filters
  stepwire trace capture.pcap        any pcap decoded by our codecs (--html, -v, --no-verify-checksums)`,
  );
  return program;
}

/**
 * Run `stepwire args...` and resolve with its exit status: 0, 2 for usage errors (with the
 * help to read), 1 for the environment's errors (EPERM, ENOENT) and for commands that
 * report failure through process.exitCode. Other errors are bugs and are thrown.
 */
export async function runCli(args: readonly string[], io: CliIo = processIo): Promise<number> {
  const program = buildProgram(io);
  if (args.length === 0) {
    // Bare `stepwire`: say what it is and what it can do; nothing went wrong.
    program.outputHelp();
    return 0;
  }
  let running = '';
  program.hook('preAction', (_program, action) => {
    running = action.name();
  });
  try {
    await program.parseAsync(args, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Commander already printed its message (or the help text, or the version): help
      // and version asked for exit 0, anything else is a usage error.
      return e.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (e instanceof UsageError) {
      const help = running ? `stepwire ${running} --help` : 'stepwire --help';
      io.err(`stepwire: ${e.message}\n(run '${help}' for usage)\n`);
      return e.exitCode;
    }
    if (e instanceof Error && 'code' in e && typeof e.code === 'string' && e.code.startsWith('E')) {
      // Operating-system errors (EPERM, ENOENT, ...) are the user's environment, not a bug.
      io.err(`stepwire: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
