/** Two sans-I/O connections wired back to back, and a raw-frame peer, for connection tests. */
import { concatBytes } from '@stepwire/wire';
import {
  CONNECTION_PREFACE,
  Http2Connection as Conn,
  decodeFrame,
  decodeFrameHeader,
  encodeFrame,
  type Http2Connection,
  type Http2ConnectionOptions,
  type Http2Event,
  type Http2Frame,
} from '../../src/h2/internal.ts';
import { HpackDecoder, HpackEncoder } from '../../src/hpack/index.ts';

export const req = (path = '/', method = 'GET') => [
  { name: ':method', value: method },
  { name: ':scheme', value: 'http' },
  { name: ':authority', value: 'test' },
  { name: ':path', value: path },
];
export const status = (code = 200, extra: Record<string, string> = {}) => [
  { name: ':status', value: String(code) },
  ...Object.entries(extra).map(([name, value]) => ({ name, value })),
];

export class Pair {
  readonly client: Http2Connection;
  readonly server: Http2Connection;
  readonly clientEvents: Http2Event[] = [];
  readonly serverEvents: Http2Event[] = [];
  now = 0;
  /** Deliver data to the user at once and credit the window (as a reading app does). */
  autoConsume = true;

  constructor(c: Partial<Http2ConnectionOptions> = {}, s: Partial<Http2ConnectionOptions> = {}) {
    this.client = new Conn({ role: 'client', ...c });
    this.server = new Conn({ role: 'server', ...s });
    this.client.start(0);
    this.server.start(0);
  }

  /**
   * Moves bytes both ways until neither side has anything to say; returns the number of
   * exchanges it took (each is one round trip: everything each side can send, delivered).
   */
  pump(max = 1000): number {
    for (let i = 0; i < max; i++) {
      const a = this.client.output();
      this.collect(this.client, this.clientEvents, this.client.takeEvents());
      const b = this.server.output();
      this.collect(this.server, this.serverEvents, this.server.takeEvents());
      if (a.length === 0 && b.length === 0) return i;
      if (a.length) this.collect(this.server, this.serverEvents, this.server.receive(a, this.now));
      if (b.length) this.collect(this.client, this.clientEvents, this.client.receive(b, this.now));
    }
    throw new Error('pump did not settle');
  }

  private collect(c: Http2Connection, into: Http2Event[], evs: Http2Event[]): void {
    for (const e of evs) {
      into.push(e);
      if (this.autoConsume && e.type === 'data') c.consumed(e.streamId, e.data.length);
    }
  }

  bodyOf(side: 'client' | 'server', streamId: number): Uint8Array {
    const evs = side === 'client' ? this.clientEvents : this.serverEvents;
    return concatBytes(
      ...evs
        .filter((e) => e.type === 'data' && e.streamId === streamId)
        .map((e) => (e as { data: Uint8Array }).data),
    );
  }
}

/** A hand-driven peer that writes raw frames to one of our connections and reads its frames. */
export class RawPeer {
  readonly enc = new HpackEncoder();
  readonly dec = new HpackDecoder();
  readonly events: Http2Event[] = [];
  private pending: Uint8Array = new Uint8Array(0);
  now = 0;

  constructor(readonly conn: Http2Connection) {
    conn.start(0);
  }

  /** Client preface and an empty SETTINGS, then ACK theirs. */
  handshake(settings: [number, number][] = []): Http2Frame[] {
    if (this.conn.role === 'server') this.send(CONNECTION_PREFACE);
    this.frame({ type: 'SETTINGS', ack: false, settings });
    this.frame({ type: 'SETTINGS', ack: true, settings: [] });
    return this.read();
  }

  send(bytes: Uint8Array): void {
    this.events.push(...this.conn.receive(bytes, this.now));
  }

  frame(f: Http2Frame): void {
    this.send(encodeFrame(f));
  }

  headers(streamId: number, fields: { name: string; value: string }[], endStream = true): void {
    this.frame({
      type: 'HEADERS',
      streamId,
      endStream,
      endHeaders: true,
      headerBlockFragment: this.enc.encode(fields),
    });
  }

  /** Frames our connection has written since the last read. */
  read(): Http2Frame[] {
    this.pending = concatBytes(this.pending, this.conn.output());
    this.events.push(...this.conn.takeEvents());
    const out: Http2Frame[] = [];
    let at = 0;
    while (this.pending.length - at >= 9) {
      const h = decodeFrameHeader(this.pending, at);
      if (this.pending.length - at < 9 + h.length) break;
      out.push(decodeFrame(this.pending.subarray(at, at + 9 + h.length)));
      at += 9 + h.length;
    }
    this.pending = this.pending.slice(at);
    return out;
  }

  goaway(): Extract<Http2Frame, { type: 'GOAWAY' }> | undefined {
    return this.read().find((f) => f.type === 'GOAWAY') as
      | Extract<Http2Frame, { type: 'GOAWAY' }>
      | undefined;
  }
}
