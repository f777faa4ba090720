import { Command, CommanderError } from 'commander';
import { registerCommands } from './commands/index.ts';
import { UsageError } from './errors.ts';

// `stepwire demo | head` closes our stdout early: that is the reader's choice, not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const program = new Command('stepwire')
  .description('A network protocol stack in TypeScript, stepped packet by packet')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

registerCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // Commander already printed its one-line message (or the help text).
    process.exitCode = e.exitCode;
  } else if (e instanceof UsageError) {
    process.stderr.write(`stepwire: ${e.message}\n`);
    process.exitCode = e.exitCode;
  } else if (e instanceof Error && 'code' in e && typeof e.code === 'string' && e.code.startsWith('E')) {
    // Operating-system errors (EPERM, ENOENT, ...) are the user's environment, not a bug.
    process.stderr.write(`stepwire: ${e.message}\n`);
    process.exitCode = 1;
  } else {
    throw e;
  }
}
