import { forbidKernelTrafficOffLoopback } from './safety.ts';

// Every command runs with the guard: no kernel socket of this process reaches beyond loopback.
// It goes in before the commands are even imported (a static import would evaluate them
// first), so no command module's top-level code runs without it.
forbidKernelTrafficOffLoopback();

// `stepwire demo | head` closes our stdout early: that is the reader's choice, not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const { runCli } = await import('./commands/index.ts');
const status = await runCli(process.argv.slice(2));
// A command may already have set a failing status (ping with no reply, a failed scenario).
if (status !== 0 || process.exitCode === undefined) process.exitCode = status;
