import { netnsDown, netnsExists, netnsUp } from '@stepwire/link';
import { Argument, Command } from 'commander';
import { UsageError } from '../errors.ts';

export interface NetnsCommandOptions {
  netns: string;
}

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
    .action((action: 'up' | 'down', o: NetnsCommandOptions) => {
      runNetns(action, o, print);
    });
}

export function runNetns(action: 'up' | 'down', o: NetnsCommandOptions, print: (s: string) => void): void {
  const name = o.netns;
  if (action === 'down') {
    print(netnsDown(name) ? `removed namespace ${name}` : `no namespace ${name}: nothing to remove`);
    return;
  }
  // netnsUp replaces a namespace of the same name; refusing keeps a running serve (or
  // anything else living there) from losing its namespace under it.
  if (netnsExists(name)) {
    throw new UsageError(
      `namespace '${name}' already exists: 'stepwire netns down --netns ${name}' first, or choose another --netns`,
    );
  }
  const info = netnsUp(name);
  print(`namespace ${info.name}: persistent TUN device ${info.device}`);
  print(`kernel side ${info.kernel.v4}/24, ${info.kernel.v6}/64`);
  print(`stepwire side ${info.ours.v4}, ${info.ours.v6}`);
  print(`next: stepwire serve --tun --netns ${info.name}`);
  print(`      ip netns exec ${info.name} ping ${info.ours.v4}`);
  print(`undo: stepwire netns down --netns ${info.name}`);
}
