import {
  TcpConnection,
  type TcpConnectionOptions,
  type TcpEvent,
  type TcpOutput,
} from '../src/connection.ts';
import { describeSegment, type TcpSegment } from '../src/segment.ts';

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
