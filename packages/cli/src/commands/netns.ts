import { netnsDown, netnsExists, netnsUp } from '@stepwire/link';
import { UsageError } from '../errors.ts';

export interface NetnsCommandOptions {
  netns: string;
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
