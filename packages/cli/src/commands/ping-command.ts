import { Command, InvalidArgumentError } from 'commander';
import { intIn } from '../args.ts';
import { UsageError } from '../errors.ts';
import type { PingOptions } from './ping.ts';

/**
 * `stepwire ping`'s options and help. Help and usage errors load only this file; the ping
 * itself imports ./ping.ts (our IP stack, the TUN session) inside the action.
 */

/** Seconds as ping(8) takes them ('0.2'), within [min, max]. */
function seconds(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected seconds between ${min} and ${max}, got '${value}'`);
    }
    return n;
  };
}

/** Only TUN mode exists: said before anything heavy loads, and again by runPing for direct callers. */
export function requireTun(o: { tun?: boolean }): void {
  if (!o.tun) {
    throw new UsageError("only TUN mode exists for now: run 'stepwire ping ADDRESS --tun' as root");
  }
}

export function pingCommand(print: (s: string) => void = (s) => process.stdout.write(`${s}\n`)): Command {
  return new Command('ping')
    .description('ping from our stack (198.18.0.2, fd00:5757::2) over TUN, printed like ping(8)')
    .argument('<address>', 'the kernel side (198.18.0.1, fd00:5757::1) or another address in its prefixes')
    .option('--tun', 'run on a TUN device (the only mode for now)')
    .option(
      '--netns <name>',
      'network namespace of the kernel side; made if missing and then removed on exit',
      'stepwire',
    )
    .option('-c, --count <n>', 'echo requests to send', intIn(1, 100_000), 4)
    .option('-s, --size <bytes>', 'echo data bytes (large ones are fragmented)', intIn(0, 65527), 56)
    .option('-i, --interval <s>', 'seconds between requests', seconds(0.001, 60), 1)
    .option('-W, --wait <s>', 'seconds to wait for each reply', seconds(0.001, 60), 1)
    .option('--trace', 'print every packet in and out as a ladder line')
    .addHelpText(
      'after',
      [
        '',
        'Sends ICMP echo requests (RFC 792, RFC 4443 §4.1) from our stack on a TUN device to the',
        'kernel side in a network namespace (made for the run and removed after, unless it',
        'exists), prints each reply like ping(8), then the loss and rtt summary; exits 1 when',
        'no reply came. Large -s values are fragmented by our IP layer (RFC 791 §2.3).',
        '',
        'Examples:',
        '  stepwire ping --tun 198.18.0.1',
        '  stepwire ping --tun -c 3 -s 4000 --trace fd00:5757::1',
      ].join('\n'),
    )
    .action(async (address: string, o: PingOptions) => {
      requireTun(o);
      const interrupt = interruptOnSignal();
      // Our IP stack and the TUN session load only now that a ping will be sent.
      const { runPing } = await import('./ping.ts');
      const received = await runPing(address, o, print, interrupt);
      if (received === 0) process.exitCode = 1;
    });
}

/** A flag that the first SIGINT/SIGTERM sets: ping stops sending and prints its summary, as ping(8) does. */
function interruptOnSignal(): { stopped: boolean } {
  const flag = { stopped: false };
  const on = () => {
    flag.stopped = true;
  };
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  return flag;
}
