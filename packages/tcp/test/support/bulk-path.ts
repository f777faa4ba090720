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

/** A one-way transfer in progress: what B has received, A's connection once it is up. */
export interface OneWay {
  got: number;
  conn: TcpConnection | undefined;
  /** When A connected and wrote, and when B had every byte (NaN until then). */
  startedAt: number;
  doneAt: number;
  close(): void;
}

/**
 * B listens on port 80 and counts what arrives; A connects to 198.18.0.2:80 and, once
 * connected, writes `size` bytes and its FIN. The caller drives the clock.
 */
export function oneWay(clock: Clock, a: Tcp, b: Tcp, size: number): OneWay {
  const t: OneWay = {
    got: 0,
    conn: undefined,
    startedAt: 0,
    doneAt: Number.NaN,
    close() {
      sock.destroy();
      srv.close();
    },
  };
  const srv = b.createServer((s) => {
    s.on('data', (d: Buffer) => {
      t.got += d.length;
      if (t.got === size) t.doneAt = clock.now();
    });
  });
  srv.listen(80);
  const sock = a.connect({ host: '198.18.0.2', port: 80 });
  sock.on('connect', () => {
    t.conn = sock.connection;
    t.startedAt = clock.now();
    sock.end(new Uint8Array(size));
  });
  return t;
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
  const t = oneWay(clock, a, b, o.size);
  const until = o.until ?? Number.POSITIVE_INFINITY;
  // Streams run their callbacks on later turns of the event loop: one turn per timer.
  const turn = () => new Promise((r) => setImmediate(r));
  await turn();
  for (let i = 0; i < o.maxSteps && t.got < o.size && clock.now() < until; i++) {
    const at = clock.nextTimerAt();
    if (at === undefined) break;
    clock.advanceTo(at);
    await turn();
  }
  const end = clock.now();
  t.close();
  if (!t.conn) throw new Error('never connected');
  return { got: t.got, bps: (o.size * 8 * 1000) / (t.doneAt - t.startedAt), conn: t.conn, forward, end };
}
