import { Prng } from '@stepwire/wire';
import type { H3Transport, H3TransportEvent } from './connection.ts';

/**
 * Two in-memory QUIC endpoints wired back to back, for testing HTTP/3 without packets.
 * Each stream keeps its order (as QUIC guarantees), but with `reorder` the next stream
 * to deliver is chosen at random (seeded), so a HEADERS frame can overtake the encoder
 * stream instructions it needs — the case QPACK's blocked streams exist for (RFC 9204
 * §2.1.2). `pause`/`resume` hold one stream back deterministically.
 */
export type FakeSide = 'client' | 'server';

export interface FakeQuicPairOptions {
  /** Deliver streams in a seeded random order (default: in the order written). */
  reorder?: boolean;
  seed?: number;
  /** Split each write into pieces of at most this many bytes (frames then cross delivery boundaries). */
  maxChunk?: number;
  /**
   * The server's initial MAX_STREAMS for the client's bidirectional streams (RFC 9000
   * §4.6); each request stream closed in both directions grants one more, announced with
   * 'streams-available' when the client had used them all. Default: no limit.
   */
  maxBidiStreams?: number;
}

interface Delivery {
  seq: number;
  event: H3TransportEvent;
}

export class FakeQuicEndpoint implements H3Transport {
  /** Set by the owner: receives the peer's writes as transport events. */
  handler: ((e: H3TransportEvent) => void) | undefined;
  private nextBidi: number;
  private nextUni: number;
  /** Everything written per stream, for assertions. */
  readonly written = new Map<number, Uint8Array[]>();
  readonly resets: { id: number; code: number }[] = [];
  readonly stopSendings: { id: number; code: number }[] = [];
  closedWith: { code: number; reason: string } | undefined;
  private readonly finished = new Set<number>();
  /** Bidirectional streams we may open in all (the peer's MAX_STREAMS) and have opened. */
  bidiLimit = Number.POSITIVE_INFINITY;
  openedBidi = 0;
  /** Of those, how many the peer has seen end both ways. */
  closedBidi = 0;
  /** Most of our bidirectional streams open at once, for tests of the limit. */
  maxOpenBidi = 0;
  /** Peer-initiated bidirectional streams: which directions have ended (FIN or reset). */
  private readonly peerBidi = new Map<number, { sent: boolean; recv: boolean }>();

  constructor(
    readonly side: FakeSide,
    private readonly pair: FakeQuicPair,
  ) {
    // RFC 9000 §2.1: the low bits give initiator (0 client, 1 server) and direction (2 = uni).
    const low = side === 'client' ? 0 : 1;
    this.nextBidi = low;
    this.nextUni = low | 2;
  }

  canOpenStream(kind: 'bidi' | 'uni'): boolean {
    return kind === 'uni' || this.openedBidi < this.bidiLimit;
  }

  openStream(kind: 'bidi' | 'uni'): number {
    if (!this.canOpenStream(kind)) throw new Error(`stream limit reached: ${this.bidiLimit} (RFC 9000 §4.6)`);
    if (kind === 'bidi') {
      this.openedBidi++;
      this.maxOpenBidi = Math.max(this.maxOpenBidi, this.openedBidi - this.closedBidi);
    }
    const id = kind === 'bidi' ? this.nextBidi : this.nextUni;
    if (kind === 'bidi') this.nextBidi += 4;
    else this.nextUni += 4;
    return id;
  }

  write(id: number, data: Uint8Array, fin = false): void {
    if (this.closedWith || this.pair.closed) return;
    if (this.finished.has(id)) throw new Error(`write after FIN on stream ${id}`);
    if (fin) {
      this.finished.add(id);
      this.ended(id, 'sent');
    }
    const list = this.written.get(id) ?? [];
    list.push(data.slice());
    this.written.set(id, list);
    this.pair.enqueueData(this.side, id, data.slice(), fin);
  }

  resetStream(id: number, code: number): void {
    if (this.pair.closed) return;
    this.resets.push({ id, code });
    this.finished.add(id);
    this.ended(id, 'sent');
    this.pair.enqueue(this.side, id, { type: 'stream-reset', id, code });
  }

  stopSending(id: number, code: number): void {
    if (this.pair.closed) return;
    this.stopSendings.push({ id, code });
    this.pair.enqueue(this.side, `stop:${id}`, { type: 'stop-sending', id, code });
  }

  close(code: number, reason = ''): void {
    if (this.pair.closed) return;
    this.closedWith = { code, reason };
    this.pair.closeFrom(this.side, code, reason);
  }

  /**
   * @internal One direction of a stream ended. When both directions of a peer-initiated
   * bidirectional stream have, the peer may open one more (MAX_STREAMS, RFC 9000 §4.6).
   */
  ended(id: number, dir: 'sent' | 'recv'): void {
    const peerInitiated = (id & 2) === 0 && (id & 1) !== (this.side === 'client' ? 0 : 1);
    if (!peerInitiated) return;
    const st = this.peerBidi.get(id) ?? { sent: false, recv: false };
    st[dir] = true;
    if (!(st.sent && st.recv)) {
      this.peerBidi.set(id, st);
      return;
    }
    this.peerBidi.delete(id);
    this.pair.grantBidi(this.side === 'client' ? 'server' : 'client');
  }

  /** All bytes written on a stream, joined. */
  bytesOf(id: number): Uint8Array {
    const parts = this.written.get(id) ?? [];
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

export class FakeQuicPair {
  readonly client: FakeQuicEndpoint;
  readonly server: FakeQuicEndpoint;
  closed = false;
  /** Per receiving side and stream: events in stream order. */
  private readonly queues = new Map<string, { to: FakeSide; items: Delivery[] }>();
  private readonly paused = new Set<string>();
  private readonly seen = new Set<string>();
  private seq = 0;
  private readonly prng: Prng | undefined;
  private readonly maxChunk: number;
  /** Events delivered so far. */
  delivered = 0;

  constructor(opts: FakeQuicPairOptions = {}) {
    this.client = new FakeQuicEndpoint('client', this);
    this.server = new FakeQuicEndpoint('server', this);
    this.prng = opts.reorder ? new Prng(opts.seed ?? 1) : undefined;
    if (opts.maxBidiStreams !== undefined) this.client.bidiLimit = opts.maxBidiStreams;
    this.maxChunk = opts.maxChunk ?? Number.POSITIVE_INFINITY;
  }

  /** Both sides learn the handshake finished (ALPN h3). */
  connect(): void {
    this.push('client', 'conn', { type: 'connected', alpn: 'h3' });
    this.push('server', 'conn', { type: 'connected', alpn: 'h3' });
  }

  private push(to: FakeSide, key: string, event: H3TransportEvent): void {
    const k = `${to}:${key}`;
    let q = this.queues.get(k);
    if (!q) {
      q = { to, items: [] };
      this.queues.set(k, q);
    }
    q.items.push({ seq: this.seq++, event });
  }

  /** @internal */
  enqueueData(from: FakeSide, id: number, data: Uint8Array, fin: boolean): void {
    const to: FakeSide = from === 'client' ? 'server' : 'client';
    const k = `${to}:${id}`;
    if (!this.seen.has(k)) {
      this.seen.add(k);
      this.push(to, String(id), { type: 'stream-opened', id });
    }
    if (data.length <= this.maxChunk) {
      this.push(to, String(id), { type: 'stream-data', id, data, fin });
      return;
    }
    for (let at = 0; at < data.length; at += this.maxChunk) {
      const end = Math.min(data.length, at + this.maxChunk);
      this.push(to, String(id), {
        type: 'stream-data',
        id,
        data: data.subarray(at, end),
        fin: fin && end === data.length,
      });
    }
  }

  /** @internal */
  enqueue(from: FakeSide, key: number | string, event: H3TransportEvent): void {
    this.push(from === 'client' ? 'server' : 'client', String(key), event);
  }

  /** @internal: CONNECTION_CLOSE reaches the peer; nothing written after it is sent, nothing is delivered after it. */
  closeFrom(from: FakeSide, code: number, reason: string): void {
    const to: FakeSide = from === 'client' ? 'server' : 'client';
    this.push(to, 'conn', { type: 'closed', error: { code, reason } });
    this.closed = true;
  }

  /** @internal The peer of `side` raised its MAX_STREAMS by one. */
  grantBidi(side: FakeSide): void {
    const e = side === 'client' ? this.client : this.server;
    const wasBlocked = e.openedBidi >= e.bidiLimit;
    e.closedBidi++;
    e.bidiLimit++;
    if (wasBlocked) this.push(side, 'conn', { type: 'streams-available', direction: 'bidi' });
  }

  /** Holds back what `to` would receive on stream `id` until resume(). */
  pause(to: FakeSide, id: number): void {
    this.paused.add(`${to}:${id}`);
  }
  resume(to: FakeSide, id: number): void {
    this.paused.delete(`${to}:${id}`);
  }

  /** Delivers one event; false when nothing is deliverable. */
  step(): boolean {
    // Scans the busy queues in place (no arrays per step: this runs once per event).
    let pick: [string, { to: FakeSide; items: Delivery[] }] | undefined;
    if (this.prng) {
      let ready = 0;
      for (const [k, q] of this.queues) if (q.items.length > 0 && !this.paused.has(k)) ready++;
      if (ready === 0) return false;
      let n = this.prng.int(0, ready - 1);
      for (const [k, q] of this.queues) {
        if (q.items.length === 0 || this.paused.has(k)) continue;
        if (n-- === 0) {
          pick = [k, q];
          break;
        }
      }
    } else {
      let best = Number.POSITIVE_INFINITY;
      for (const [k, q] of this.queues) {
        const head = q.items[0];
        if (head === undefined || this.paused.has(k) || head.seq >= best) continue;
        best = head.seq;
        pick = [k, q];
      }
    }
    if (!pick) return false;
    const [key, q] = pick;
    const d = q.items.shift();
    if (!d) return false;
    // Finished streams' queues go, so a step costs the number of busy streams, not of all streams ever.
    if (q.items.length === 0) this.queues.delete(key);
    this.delivered++;
    // CONNECTION_CLOSE: what was sent before it has arrived (in order); nothing else will.
    if (d.event.type === 'closed') this.queues.clear();
    const target = q.to === 'client' ? this.client : this.server;
    if ((d.event.type === 'stream-data' && d.event.fin) || d.event.type === 'stream-reset')
      target.ended(d.event.id, 'recv');
    target.handler?.(d.event);
    return true;
  }

  /** Delivers until nothing is deliverable, at most maxSteps events (a livelock fails loudly). */
  run(maxSteps = 1_000_000): number {
    let n = 0;
    while (this.step()) {
      if (++n > maxSteps) throw new Error(`FakeQuicPair: more than ${maxSteps} deliveries`);
    }
    return n;
  }
}
