import { Argument, Command } from 'commander';
import type { NetnsCommandOptions } from './netns.ts';

/** `stepwire netns`'s options and help; the namespace code (./netns.ts) loads in the action. */

export function netnsCommand(print: (s: string) => void = (s) => process.stdout.write(`${s}\n`)): Command {
  return new Command('netns')
    .description(
      'make (up) or remove (down) a network namespace with a persistent TUN device, for experiments by hand (root)',
    )
    .addArgument(new Argument('<action>', 'up or down').choices(['up', 'down']))
    .option('--netns <name>', 'namespace name', 'stepwire')
    .addHelpText(
      'after',
      [
        '',
        "up: makes the namespace with a persistent TUN device (sw0), the kernel's side at",
        '198.18.0.1/24 and fd00:5757::1/64, and prints how to use it; serve and ping then attach',
        'to it instead of making their own. down: removes it again.',
        '',
        'Examples:',
        '  stepwire netns up && stepwire serve --tun',
        '  stepwire netns down',
      ].join('\n'),
    )
    .action(async (action: 'up' | 'down', o: NetnsCommandOptions) => {
      const { runNetns } = await import('./netns.ts');
      runNetns(action, o, print);
    });
}
