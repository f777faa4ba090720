import { canonicalIp, PingError, type PingResult } from '@stepwire/ip';
import { ParseError } from '@stepwire/wire';
import { UsageError } from '../errors.ts';
import { TunSession } from '../tun/session.ts';
import { requireTun } from './ping-command.ts';

export interface PingOptions {
  tun?: boolean;
  netns: string;
  count: number;
  size: number;
  interval: number;
  wait: number;
  trace?: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Ping and print; returns how many replies arrived. */
export async function runPing(
  address: string,
  o: PingOptions,
  print: (s: string) => void,
  interrupt: { stopped: boolean } = { stopped: false },
): Promise<number> {
  requireTun(o);
  let dst: string;
  try {
    dst = canonicalIp(address);
  } catch (e) {
    if (e instanceof ParseError) throw new UsageError(`not an IP address: '${address}'`);
    throw e;
  }
  const v6 = dst.includes(':');
  if (!v6 && o.size > 65507) throw new UsageError(`-s ${o.size} is too large for IPv4 (at most 65507)`);

  // The ladder (the dissector, and through @stepwire/sim the whole stack) loads only for
  // --trace: a plain ping needs IP and the TUN session, a third of the start-up CPU.
  const ladder = o.trace ? await loadLadder() : undefined;
  const session = TunSession.open({ netns: o.netns, ...(ladder ? { tap: ladder.ladderTap(print) } : {}) });
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
    if (ladder) {
      ladder.ladderNotes(session.trace, print);
      print(ladder.ladderHeader());
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

async function loadLadder() {
  const [{ ladderHeader }, { ladderNotes, ladderTap }] = await Promise.all([
    import('@stepwire/sim'),
    import('../tun/trace.ts'),
  ]);
  return { ladderHeader, ladderNotes, ladderTap };
}

const fmtMs = (ms: number) => ms.toFixed(3);
