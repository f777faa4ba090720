import { canonicalIp, PingError, type PingResult } from '@stepwire/ip';
import { ladderHeader } from '@stepwire/sim';
import { ParseError } from '@stepwire/wire';
import { Command, InvalidArgumentError } from 'commander';
import { intIn } from '../args.ts';
import { UsageError } from '../errors.ts';
import { TunSession } from '../tun/session.ts';
import { ladderNotes, ladderTap } from '../tun/trace.ts';

export interface PingOptions {
  tun?: boolean;
  netns: string;
  count: number;
  size: number;
  interval: number;
  wait: number;
  trace?: boolean;
}

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
      const received = await runPing(address, o, print, interruptOnSignal());
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

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Ping and print; returns how many replies arrived. */
export async function runPing(
  address: string,
  o: PingOptions,
  print: (s: string) => void,
  interrupt: { stopped: boolean } = { stopped: false },
): Promise<number> {
  if (!o.tun) {
    throw new UsageError("only TUN mode exists for now: run 'stepwire ping ADDRESS --tun' as root");
  }
  let dst: string;
  try {
    dst = canonicalIp(address);
  } catch (e) {
    if (e instanceof ParseError) throw new UsageError(`not an IP address: '${address}'`);
    throw e;
  }
  const v6 = dst.includes(':');
  if (!v6 && o.size > 65507) throw new UsageError(`-s ${o.size} is too large for IPv4 (at most 65507)`);

  const session = TunSession.open({ netns: o.netns, ...(o.trace ? { tap: ladderTap(print) } : {}) });
  try {
    if (!session.host.lookupRoute(dst)) {
      throw new UsageError(
        `no route to ${dst}: on TUN the stack reaches ${session.prefixes.v4} and ${session.prefixes.v6}`,
      );
    }
    const src = session.host.sourceFor(dst) ?? '?';
    print(
      v6
        ? `PING ${dst} (${dst}) from ${src}: ${o.size} data bytes`
        : `PING ${dst} (${dst}) from ${src}: ${o.size}(${o.size + 28}) bytes of data.`,
    );
    if (o.trace) {
      ladderNotes(session.trace, print);
      print(ladderHeader());
    }
    const rtts: number[] = [];
    const pending: Promise<void>[] = [];
    let sent = 0;
    let errors = 0;
    const start = performance.now();
    const onReply = (seq: number, r: PingResult) => {
      rtts.push(r.rtt);
      print(`${r.bytes} bytes from ${r.from}: icmp_seq=${seq} ttl=${r.ttl} time=${fmtMs(r.rtt)} ms`);
    };
    const onError = (seq: number, e: unknown) => {
      if (!(e instanceof PingError)) throw e;
      if (e.reason === 'timeout') print(`no answer yet for icmp_seq=${seq}`);
      else if (e.reason !== 'cancelled') {
        errors++;
        const from = e.report?.reporter ?? dst;
        print(`From ${from} icmp_seq=${seq} ${e.message}`);
      }
    };
    for (let seq = 1; seq <= o.count && !interrupt.stopped; seq++) {
      if (seq > 1) await sleep(o.interval * 1000);
      if (interrupt.stopped) break;
      sent++;
      pending.push(
        session.host.ping(dst, { seq, size: o.size, timeoutMs: o.wait * 1000 }).then(
          (r) => onReply(seq, r),
          (e) => onError(seq, e),
        ),
      );
    }
    await Promise.all(pending);
    const elapsed = Math.round(performance.now() - start);
    const received = rtts.length;
    const loss = sent === 0 ? 0 : Math.round(((sent - received) / sent) * 100);
    print('');
    print(`--- ${dst} ping statistics ---`);
    print(
      `${sent} packets transmitted, ${received} received${errors ? `, +${errors} errors` : ''}, ${loss}% packet loss, time ${elapsed}ms`,
    );
    if (received > 0) {
      const min = Math.min(...rtts);
      const max = Math.max(...rtts);
      const avg = rtts.reduce((a, b) => a + b, 0) / received;
      // ping(8)'s mdev: the standard deviation of the round-trip times.
      const mdev = Math.sqrt(rtts.reduce((a, b) => a + (b - avg) ** 2, 0) / received);
      print(`rtt min/avg/max/mdev = ${fmtMs(min)}/${fmtMs(avg)}/${fmtMs(max)}/${fmtMs(mdev)} ms`);
    }
    return received;
  } finally {
    await session.close();
  }
}

const fmtMs = (ms: number) => ms.toFixed(3);
