/**
 * One bulk transfer over a simulated path, for the congestion-control tests (bbr*.test.ts,
 * congestion-lossy.test.ts): host A (198.18.0.1) writes `size` bytes to host B (198.18.0.2)
 * over a MemoryLink pair on a virtual clock, A's side impaired by `forward` (the bottleneck:
 * rate, queue, delay, loss, seeded) and B's by `reverse` (the ACKs' way). ISN secrets are
 * fixed, so the sequence numbers, and so every run, are the same.
 */
import { Host } from '@stepwire/ip';
import { type ImpairedLink, type ImpairOptions, impair, type Link, MemoryLink } from '@stepwire/link';
import { type Clock, VirtualClock } from '@stepwire/wire';
import type { TcpConnection, TcpConnectionOptions } from '../../src/connection.ts';
import { Tcp } from '../../src/tcp.ts';

export interface BulkPathOptions {
  /** A's congestion controller. */
  congestion: NonNullable<TcpConnectionOptions['congestion']>;
  /** Bytes A sends, then its FIN. */
  size: number;
  /** A -> B: the bottleneck and its impairments. */
  forward: ImpairOptions;
  /** B -> A. */
  reverse: ImpairOptions;
  /** Wrap a side's MemoryLink before it is impaired (a tap that sees every packet). */
  wrap?: { a?: (link: Link, clock: Clock) => Link; b?: (link: Link, clock: Clock) => Link };
  /** The bytes the ISN secrets are filled with (RFC 6528 §3), A's then B's. Default 1, 2. */
  isnSecrets?: [number, number];
  /** B's receive buffer; default 4 MiB, so the window never limits the sender. */
  receiveBuffer?: number;
  /** Bound on the timers the run fires. */
  maxSteps: number;
  /** Stop at this virtual time (ms) even if not all has arrived. */
  until?: number;
  /**
   * Both hosts cut TCP's super-segments themselves (Host softwareGso): A's TCP sends
   * 64 KB TSO segments, each cut into MTU-sized packets before the impairments, so loss
   * recovery sees one sent entry turn into several SACKed and lost pieces.
   */
  softwareGso?: boolean;
}

export interface BulkRun {
  /** Bytes B read. */
  got: number;
  /** Goodput in bit/s from A's connect to B's last byte (NaN unless all arrived). */
  bps: number;
  /** A's connection (its stats, congestion state). */
  conn: TcpConnection;
  /** A's impaired side, with its counters (drop.loss, ...). */
  forward: ImpairedLink;
  /** Virtual time when the run stopped. */
  end: number;
}

export async function bulkTransfer(o: BulkPathOptions): Promise<BulkRun> {
  const clock = new VirtualClock();
  const [la, lb] = MemoryLink.pair({ clock });
  const ha = new Host({ name: 'A', clock, softwareGso: o.softwareGso === true });
  const forward = impair(o.wrap?.a?.(la, clock) ?? la, o.forward, clock);
  ha.addInterface({ link: forward, ipv4: '198.18.0.1/24' });
  const hb = new Host({ name: 'B', clock, softwareGso: o.softwareGso === true });
  hb.addInterface({ link: impair(o.wrap?.b?.(lb, clock) ?? lb, o.reverse, clock), ipv4: '198.18.0.2/24' });
  const [fillA, fillB] = o.isnSecrets ?? [1, 2];
  const a = new Tcp(ha, {
    isnSecret: new Uint8Array(16).fill(fillA),
    connection: { congestion: o.congestion, minRto: 200 },
  });
  const b = new Tcp(hb, {
    isnSecret: new Uint8Array(16).fill(fillB),
    connection: { receiveBuffer: o.receiveBuffer ?? 4 << 20 },
  });
  let got = 0;
  let doneAt = Number.NaN;
  const srv = b.createServer((sock) => {
    sock.on('data', (d: Buffer) => {
      got += d.length;
      if (got === o.size) doneAt = clock.now();
    });
  });
  srv.listen(80);
  const sock = a.connect({ host: '198.18.0.2', port: 80 });
  let conn: TcpConnection | undefined;
  let start = 0;
  sock.on('connect', () => {
    conn = sock.connection;
    start = clock.now();
    sock.end(new Uint8Array(o.size));
  });
  const until = o.until ?? Number.POSITIVE_INFINITY;
  // Streams run their callbacks on later turns of the event loop: one turn per timer.
  const turn = () => new Promise((r) => setImmediate(r));
  await turn();
  for (let i = 0; i < o.maxSteps && got < o.size && clock.now() < until; i++) {
    const at = clock.nextTimerAt();
    if (at === undefined) break;
    clock.advanceTo(at);
    await turn();
  }
  const end = clock.now();
  sock.destroy();
  srv.close();
  if (!conn) throw new Error('never connected');
  return { got, bps: (o.size * 8 * 1000) / (doneAt - start), conn, forward, end };
}
