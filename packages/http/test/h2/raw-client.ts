/**
 * A raw-frame HTTP/2 client over a node:net socket: writes frames it encodes itself and
 * records every frame the server sends, in order, so tests can check frame order on the
 * wire (which the session API hides).
 */
import net from 'node:net';
import { concatBytes } from '@stepwire/wire';
import {
  CONNECTION_PREFACE,
  decodeFrame,
  decodeFrameHeader,
  encodeFrame,
  type Http2Frame,
} from '../../src/h2/internal.ts';
import { HpackDecoder, HpackEncoder } from '../../src/hpack/index.ts';

export class RawClient {
  readonly enc = new HpackEncoder();
  readonly dec = new HpackDecoder();
  readonly frames: Http2Frame[] = [];
  closed = false;
  private pending: Uint8Array = new Uint8Array(0);
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.onChunk(chunk));
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  private onChunk(chunk: Uint8Array): void {
    this.pending = concatBytes(this.pending, new Uint8Array(chunk));
    let at = 0;
    while (this.pending.length - at >= 9) {
      const h = decodeFrameHeader(this.pending, at);
      if (this.pending.length - at < 9 + h.length) break;
      this.frames.push(decodeFrame(this.pending.subarray(at, at + 9 + h.length)));
      at += 9 + h.length;
    }
    this.pending = this.pending.slice(at);
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Connects, sends the preface and `settings`, and ACKs the server's SETTINGS. */
  static async connect(port: number, settings: [number, number][] = []): Promise<RawClient> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((r, j) => {
      socket.once('connect', () => r());
      socket.once('error', j);
    });
    const c = new RawClient(socket);
    // A connection window as large as any test needs (RFC 9113 §6.9.2: only WINDOW_UPDATE raises it).
    c.write(
      CONNECTION_PREFACE,
      encodeFrame({ type: 'SETTINGS', ack: false, settings }),
      encodeFrame({ type: 'WINDOW_UPDATE', streamId: 0, windowSizeIncrement: 1 << 26 }),
    );
    await c.until(() => c.frames.some((f) => f.type === 'SETTINGS' && !f.ack));
    c.write(encodeFrame({ type: 'SETTINGS', ack: true, settings: [] }));
    return c;
  }

  /** Reads frames from a socket already connected (e.g. after an h2c upgrade's 101), starting with `first`. */
  static adopt(socket: net.Socket, first: Uint8Array = new Uint8Array(0)): RawClient {
    const c = new RawClient(socket);
    if (first.length > 0) c.onChunk(first);
    return c;
  }

  write(...parts: Uint8Array[]): void {
    this.socket.write(concatBytes(...parts));
  }

  /** A HEADERS frame for a GET (or another method) of `path`, as bytes. */
  request(streamId: number, path: string, endStream = true, method = 'GET'): Uint8Array {
    const block = this.enc.encode([
      { name: ':method', value: method },
      { name: ':scheme', value: 'http' },
      { name: ':authority', value: 'test' },
      { name: ':path', value: path },
    ]);
    return encodeFrame({
      type: 'HEADERS',
      streamId,
      endStream,
      endHeaders: true,
      headerBlockFragment: block,
    });
  }

  /** Resolves once `cond` holds, or rejects after `ms` (a bound, not a timing assertion). */
  until(cond: () => boolean, ms = 10_000): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('RawClient.until: timed out')), ms);
      const check = () => {
        if (cond()) {
          clearTimeout(t);
          resolve();
        } else if (this.closed) {
          clearTimeout(t);
          cond() ? resolve() : reject(new Error('RawClient.until: socket closed'));
        } else this.waiters.push(check);
      };
      this.waiters.push(check);
    });
  }

  /** Stream frames (HEADERS, DATA, RST_STREAM, PUSH_PROMISE) in wire order. */
  streamFrames(): Http2Frame[] {
    return this.frames.filter(
      (f) =>
        f.type === 'HEADERS' || f.type === 'DATA' || f.type === 'RST_STREAM' || f.type === 'PUSH_PROMISE',
    );
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export function endsStream(f: Http2Frame): boolean {
  return (f.type === 'DATA' || f.type === 'HEADERS') && f.endStream;
}
