import {
  TcpConnection,
  type TcpConnectionOptions,
  type TcpEvent,
  type TcpOutput,
} from '../src/connection.ts';
import { ACK, describeSegment, type TcpSegment } from '../src/segment.ts';

export const A = { addr: '198.18.0.1', port: 40000 };
export const B = { addr: '198.18.0.2', port: 80 };

/** Short, time-independent lines: timestamps off unless a test turns them on. */
export const plain: Partial<TcpConnectionOptions> = {
  timestamps: false,
  receiveBuffer: 65535,
  delayedAck: 40,
};

export function client(o: Partial<TcpConnectionOptions> = {}): TcpConnection {
  return new TcpConnection({ local: A, remote: B, iss: 1000, ...plain, ...o });
}
export function server(o: Partial<TcpConnectionOptions> = {}): TcpConnection {
  return new TcpConnection({ local: B, remote: A, iss: 5000, ...plain, ...o });
}

export const lines = (o: TcpOutput | TcpSegment[]): string[] =>
  (Array.isArray(o) ? o : o.segments).map(describeSegment);
export const kinds = (o: TcpOutput | TcpEvent[]): string[] =>
  (Array.isArray(o) ? o : o.events).map((e) => (e.type === 'error' ? `error:${e.code}` : e.type));

/** Feed every segment of `out` to `to`, returning what `to` answered (all concatenated). */
export function deliver(to: TcpConnection, out: TcpOutput | TcpSegment[], now: number): TcpOutput {
  const res: TcpOutput = { segments: [], events: [] };
  for (const s of Array.isArray(out) ? out : out.segments) {
    const r = to.receive(s, now);
    res.segments.push(...r.segments);
    res.events.push(...r.events);
  }
  return res;
}

/** Establish a client/server pair at time `now`; returns them in ESTABLISHED. */
export function established(
  co: Partial<TcpConnectionOptions> = {},
  so: Partial<TcpConnectionOptions> = {},
  now = 0,
): { a: TcpConnection; b: TcpConnection } {
  const a = client(co);
  const b = server(so);
  b.listen(now);
  const syn = a.open(now);
  const synAck = deliver(b, syn, now);
  const ack = deliver(a, synAck, now);
  deliver(b, ack, now);
  if (a.state !== 'ESTABLISHED' || b.state !== 'ESTABLISHED') throw new Error('handshake failed');
  return { a, b };
}

export const bytes = (n: number, fill = 0x61): Uint8Array => new Uint8Array(n).fill(fill);

/** A pure ACK from B to A as `established` set them up (B's ISN 5000), with `extra` fields. */
export const ackFromB = (ack: number, extra: Partial<TcpSegment> = {}): TcpSegment => ({
  srcPort: B.port,
  dstPort: A.port,
  seq: 5001,
  ack,
  flags: ACK,
  window: 65535,
  urgentPointer: 0,
  options: {},
  payload: new Uint8Array(0),
  ...extra,
});

/** SACK blocks [left, right) as `ackFromB`'s extra fields. */
export const sack = (...blocks: [number, number][]): Partial<TcpSegment> => ({
  options: { sack: blocks.map(([left, right]) => ({ left, right })) },
});

/**
 * A's connection after slow start over a 10 ms RTT (every ACK 10 ms after its segments, so
 * RACK's min_RTT is 10), then `tail` more full segments sent at t=100 and not yet
 * acknowledged; `seg(i)` is the sequence number of the i-th of them.
 */
export function warmedUp(tail: number, o: Partial<TcpConnectionOptions> = {}) {
  const { a } = established(o);
  a.send(bytes(30 * 1460), 0);
  let t = 0;
  while (a.stats.sndUna !== a.stats.sndMax) {
    t += 10;
    a.receive(ackFromB(a.stats.sndMax), t);
  }
  const una = a.stats.sndUna;
  const seg = (i: number) => una + i * 1460;
  const sent = a.send(bytes(tail * 1460), 100).segments.length;
  if (sent !== tail) throw new Error(`warmedUp: ${sent} of ${tail} segments went`);
  return { a, seg };
}
