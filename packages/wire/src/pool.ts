/**
 * Buffers for large outgoing packets that go round instead of becoming garbage: a sender
 * takes one for a TCP super-segment (TSO), and a link that is done with the packet when
 * its send() returns (it wrote it to a device, or copied it) gives the buffer back for the
 * next one. A packet a link keeps (a MemoryLink delivering later, an impaired link's
 * queue) is never given back and the GC collects it as any other buffer.
 *
 * Why: over a TUN device with TSO each 64 KB super-segment was a fresh ArrayBuffer, and V8
 * answers that much external memory with a full mark-compact every 60–70 ms — a quarter of
 * the sender's main thread (bench/tcp-tun.bench.ts, `node --trace-gc`).
 *
 * Who gives a buffer back promises that nothing else still reads it: a wrapper link that
 * sends one buffer twice (a duplicate) must send a copy.
 */
export class BufferPool {
  private readonly free: ArrayBuffer[] = [];
  /** Buffers this pool made: only those are taken back. */
  private readonly mine = new WeakSet<ArrayBuffer>();
  /** Buffers in `free`: giving one back twice does not hand it out twice. */
  private readonly idle = new WeakSet<ArrayBuffer>();

  /**
   * @param size bytes of every buffer
   * @param max buffers kept when given back; more are left to the GC
   */
  constructor(
    readonly size: number,
    readonly max: number,
  ) {}

  /** A buffer of `size` bytes whose contents are undefined (every byte is the caller's to write). */
  take(): ArrayBuffer {
    const b = this.free.pop();
    if (b !== undefined) {
      this.idle.delete(b);
      return b;
    }
    const fresh = new ArrayBuffer(this.size);
    this.mine.add(fresh);
    return fresh;
  }

  /** The link is done with `buffer`; ignored unless this pool made it and does not hold it already. */
  give(buffer: ArrayBufferLike): void {
    const b = buffer as ArrayBuffer;
    if (!this.mine.has(b) || this.idle.has(b) || this.free.length >= this.max) return;
    this.idle.add(b);
    this.free.push(b);
  }

  /** Buffers held for reuse (for tests and stats). */
  get held(): number {
    return this.free.length;
  }
}

/**
 * The pool of TCP super-segments: an IP packet of at most 64 KiB (the TSO limit) with its
 * header room. A link gives each back as it writes it, so a few dozen cover the burst one
 * transmit loop sends.
 */
export const superSegments = new BufferPool(65_536 + 64, 64);

/**
 * Buffers that packets are cut from once and never written again after they are sent
 * (TCP's packet slabs: each segment gets fresh bytes, a retransmission is encoded anew).
 * A link that must keep a packet past its send() (a MemoryLink delivering it later) copies
 * it unless its buffer is one of these: the copy protects a sender that reuses its buffer,
 * and these senders never do. The receiver then holds a view of the sender's slab, as it
 * would of the link's copy (Linux hands the skb itself to a veth peer the same way).
 */
const writeOnce = new WeakSet<ArrayBufferLike>();
/** The buffer asked about last, and the answer: packets of one slab come in runs. */
let lastAsked: ArrayBufferLike | undefined;
let lastAnswer = false;

/** Declare that no byte of `buffer` is written after the packet that holds it is sent. */
export function markWriteOnce(buffer: ArrayBufferLike): void {
  writeOnce.add(buffer);
  if (buffer === lastAsked) lastAnswer = true;
}

/** Whether `buffer` was declared write-once (markWriteOnce): a link may keep its packets without a copy. */
export function isWriteOnce(buffer: ArrayBufferLike): boolean {
  if (buffer === lastAsked) return lastAnswer;
  lastAsked = buffer;
  lastAnswer = writeOnce.has(buffer);
  return lastAnswer;
}
