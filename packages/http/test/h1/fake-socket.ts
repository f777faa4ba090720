import { Duplex } from 'node:stream';

/**
 * A socket for driving the server without a network: `feed` is what the client sends,
 * `output` what the server wrote; `end()` from the client is `feedEnd()`.
 */
export class FakeSocket extends Duplex {
  readonly written: Buffer[] = [];
  ended = false;
  remoteAddress = '198.18.0.1';
  remotePort = 40000;

  constructor() {
    super({ allowHalfOpen: true });
  }

  feed(b: string | Uint8Array): void {
    this.push(typeof b === 'string' ? Buffer.from(b, 'latin1') : b);
  }

  feedEnd(): void {
    this.push(null);
  }

  get output(): string {
    return Buffer.concat(this.written).toString('latin1');
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.written.push(chunk);
    cb();
  }

  override _final(cb: () => void): void {
    this.ended = true;
    cb();
  }
}

/** Let streams and nextTicks settle. */
export const settle = (): Promise<void> => new Promise((r) => setImmediate(() => setImmediate(r)));
