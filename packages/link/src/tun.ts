import * as fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { type Counter, Counters, superSegments } from '@stepwire/wire';
import type { Link, LinkOffloads, PacketHandler, PacketInfo } from './link.ts';
import { koffiPath, makeEventFd, type OpenTunOptions, openTun, type TunDevice } from './tun-ffi.ts';
import { CTL, CTL_BYTES, READER_ERRORS, READER_SOURCE, TX, WRITER_SOURCE } from './tun-reader.ts';
import {
  decodeVnetHdr,
  encodeVnetHdrInto,
  packetInfoFromVnetHdr,
  VNET_HDR_LEN,
  vnetHdrFromPacketInfo,
} from './vnet-hdr.ts';

export interface TunLinkOptions extends OpenTunOptions {
  /**
   * Longest wait of one poll() on the reader thread before it re-checks whether it should
   * stop. close() wakes it at once through an eventfd; this only bounds the linger if that
   * wake were lost. Default 100 ms.
   */
  pollTimeoutMs?: number;
  /**
   * Bytes the reader thread may hand over before the main thread has delivered them; past
   * it the reader waits (and the kernel queues). Default 4 MiB: ~2700 MTU-sized packets or
   * 60 super-segments while the main thread is busy.
   */
  maxInflightBytes?: number;
  /** Packets per hand-over from the reader thread (one wake-up of the main thread); default 64. */
  readerBatch?: number;
  /**
   * Where packets are written: 'main' (a write() per send(), on the calling thread; write
   * errors are counted at once) or 'thread' (send() queues into a second shared ring and a
   * writer thread of our own writes, woken once per turn of the event loop; errors are
   * counted when the main thread next looks). Default 'main'.
   */
  writer?: 'main' | 'thread';
}

const DEFAULT_INFLIGHT = 4 << 20;
/** Bytes of the write ring (writer: 'thread'). */
const TX_RING = 4 << 20;
/** Queued bytes after which send() wakes the writer thread without waiting for the end of the turn. */
const TX_KICK_BYTES = 256 << 10;
/** How long send() waits, in all, for room in a full write ring before dropping. */
const TX_FULL_WAIT_MS = 200;
/** The largest read: a 64 KB IP packet and its virtio-net header. */
const MAX_READ = 65536 + VNET_HDR_LEN;
const PLAIN_HDR = new Uint8Array(VNET_HDR_LEN);
const ONE = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);

/** f, run at most once. */
function once(f: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    f();
  };
}

/**
 * The parent's Node flags minus module loaders and preloads (--import, --loader, --require):
 * the reader and writer programs are plain JavaScript, and a TypeScript loader registered
 * again in each thread costs it tens of milliseconds at start. Other flags (a profiler's,
 * say) still apply to them.
 */
function threadExecArgv(): string[] {
  const out: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (/^(--import|--loader|--experimental-loader|--require|-r)$/.test(a)) i++;
    else if (!/^(--import|--loader|--experimental-loader|--require)=/.test(a)) out.push(a);
  }
  return out;
}

/**
 * A Link over a Linux TUN device (IFF_TUN | IFF_NO_PI): each read is one IP packet from
 * the kernel, each write injects one into the kernel's stack. With offloads (IFF_VNET_HDR)
 * each packet carries a virtio-net header both ways, turned into and out of PacketInfo.
 *
 * Reading happens on a worker thread of our own (see tun-reader.ts): it blocks in poll()
 * on the device and an eventfd, reads every packet that is queued, and hands them over in
 * batches (one postMessage, buffers transferred, not copied), so the main thread wakes
 * once per batch. No libuv threadpool thread is held. close() marks the link closed
 * (sends are dropped from then on), asks the reader to stop and wakes it through the
 * eventfd; when the thread has exited, the fds are closed (never while the thread could
 * still read from the number, which the process might by then have reused) and `closed`
 * resolves. The open reader keeps the process alive; once closed, nothing does.
 *
 * Writes happen on the main thread, one write() (writev() with a header) per packet: a TUN
 * write never blocks, the kernel takes the packet into its receive path or refuses it. Or,
 * with `writer: 'thread'`, on a writer thread fed through a shared ring (TxRing below).
 */
export class TunLink implements Link {
  readonly counters = new Counters();
  readonly name: string;
  readonly mtu: number;
  /** What the device accepted; absent when opened without offloads. */
  readonly offloads?: LinkOffloads;
  /** Resolves when the reader has ended and the fd is closed (after close(), or after a fatal read error). */
  readonly closed: Promise<void>;
  private fd: number | undefined;
  private readonly deviceFd: number;
  private readonly wakeFd: number;
  private readonly vnetHdrLen: number;
  private readonly hdr = new Uint8Array(VNET_HDR_LEN);
  private handler: PacketHandler | undefined;
  private readonly ctl: Int32Array;
  private readonly worker: Worker;
  private readonly tx: TxRing | undefined;
  private workersLeft: number;
  private loopDone!: () => void;
  /**
   * The per-packet counters, taken from `counters` on their first event (so they show in a
   * snapshot only once they count something): one increment in place instead of a lookup
   * by name per packet.
   */
  private readonly c: { rx?: Counter; rxGso?: Counter; wakeups?: Counter; tx?: Counter; txGso?: Counter } =
    {};
  private stopError: Error | undefined;

  /** Create (or attach to) a TUN device and start reading from it. */
  static open(options: TunLinkOptions = {}): TunLink {
    return new TunLink(openTun(options), options);
  }

  constructor(device: TunDevice, options: Omit<TunLinkOptions, keyof OpenTunOptions> = {}) {
    this.fd = device.fd;
    this.deviceFd = device.fd;
    this.name = device.name;
    this.mtu = device.mtu;
    this.vnetHdrLen = device.vnetHdrLen ?? 0;
    if (device.offloads) this.offloads = device.offloads;
    const sab = new SharedArrayBuffer(CTL_BYTES);
    this.ctl = new Int32Array(sab);
    this.closed = new Promise((resolve) => {
      this.loopDone = resolve;
    });
    try {
      this.wakeFd = makeEventFd();
    } catch (e) {
      fs.closeSync(device.fd);
      throw e;
    }
    this.worker = new Worker(READER_SOURCE, {
      eval: true,
      workerData: {
        fd: device.fd,
        wakeFd: this.wakeFd,
        sab,
        maxRead: MAX_READ,
        pollTimeoutMs: options.pollTimeoutMs ?? 100,
        batch: options.readerBatch ?? 64,
        maxInflight: Math.max(options.maxInflightBytes ?? DEFAULT_INFLIGHT, 2 * MAX_READ),
        koffiPath: koffiPath(),
      },
      // The reader needs no stdin and prints nothing; keep it small.
      stdin: false,
      execArgv: threadExecArgv(),
      resourceLimits: { maxOldGenerationSizeMb: 16 },
    });
    this.worker.once('error', (e) => {
      this.stopError ??= new Error(`${this.name}: reader thread failed: ${e.message}`);
    });
    const readerDone = once(() => this.workerExited());
    this.worker.on('message', (m: (ArrayBuffer | number | null)[] | 'done') => {
      if (m === 'done') readerDone();
      else this.receive(m);
    });
    this.worker.once('exit', readerDone);
    this.workersLeft = 1;
    if (options.writer === 'thread') {
      this.tx = new TxRing(device.fd, TX_RING, options.pollTimeoutMs ?? 100);
      this.tx.worker.once('error', (e) => {
        this.stopError ??= new Error(`${this.name}: writer thread failed: ${e.message}`);
      });
      const writerDone = once(() => this.workerExited());
      this.tx.worker.on('message', writerDone);
      this.tx.worker.once('exit', writerDone);
      this.workersLeft = 2;
    }
  }

  /** Why the read loop stopped on its own (device removed, I/O error), if it did. */
  get error(): Error | undefined {
    return this.stopError;
  }

  get isOpen(): boolean {
    return this.fd !== undefined;
  }

  /** Reader-thread statistics: batches it handed over, and times it waited for the main thread. */
  get readerStats(): { batches: number; waits: number } {
    return { batches: Atomics.load(this.ctl, CTL.batches), waits: Atomics.load(this.ctl, CTL.full) };
  }

  send(packet: Uint8Array, info?: PacketInfo): void {
    const fd = this.fd;
    if (fd === undefined) {
      this.counters.inc('drop.closed');
      return;
    }
    const gso = info?.gso !== undefined;
    if (packet.length > this.mtu && !(gso && packet.length <= (this.offloads?.tsoMax ?? 0))) {
      this.counters.inc('drop.mtu');
      return;
    }
    if (this.tx) {
      this.queue(this.tx, packet, info, gso);
      return;
    }
    try {
      if (this.vnetHdrLen === 0) {
        // A plain device cannot carry a partial checksum or a super-segment: the layer above
        // asked for an offload this link does not report.
        if (info?.csum?.kind === 'partial' || gso) {
          this.counters.inc('drop.no-offload');
          return;
        }
        fs.writeSync(fd, packet);
      } else if (info === undefined || (info.csum?.kind !== 'partial' && !gso)) {
        fs.writevSync(fd, [PLAIN_HDR, packet]);
      } else {
        encodeVnetHdrInto(vnetHdrFromPacketInfo(info), this.hdr);
        fs.writevSync(fd, [this.hdr, packet]);
        if (gso) (this.c.txGso ??= this.counters.counter('tx.gso')).value++;
      }
      (this.c.tx ??= this.counters.counter('tx')).value++;
    } catch (e) {
      if (e instanceof RangeError) this.counters.inc('drop.bad-info');
      else this.counters.inc(`drop.write.${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    // Written (or refused): the super-segment's buffer goes back to TCP's pool.
    if (gso) superSegments.give(packet.buffer);
  }

  /** send() through the writer thread: the header and the packet as one record of the write ring. */
  private queue(tx: TxRing, packet: Uint8Array, info: PacketInfo | undefined, gso: boolean): void {
    let hdr: Uint8Array | undefined;
    if (this.vnetHdrLen === 0) {
      if (info?.csum?.kind === 'partial' || gso) {
        this.counters.inc('drop.no-offload');
        return;
      }
    } else if (info === undefined || (info.csum?.kind !== 'partial' && !gso)) {
      hdr = PLAIN_HDR;
    } else {
      try {
        encodeVnetHdrInto(vnetHdrFromPacketInfo(info), this.hdr);
      } catch {
        this.counters.inc('drop.bad-info');
        return;
      }
      hdr = this.hdr;
      if (gso) (this.c.txGso ??= this.counters.counter('tx.gso')).value++;
    }
    const put = tx.put(hdr, packet);
    // Copied into the ring (or dropped): the super-segment's buffer goes back to TCP's pool.
    if (gso) superSegments.give(packet.buffer);
    if (!put) {
      this.counters.inc('drop.tx-full');
      return;
    }
    (this.c.tx ??= this.counters.counter('tx')).value++;
    if (tx.queued() >= TX_KICK_BYTES) this.kick();
    else if (!this.kickPending) {
      this.kickPending = true;
      queueMicrotask(this.kick);
    }
  }

  private kickPending = false;

  /** Wake the writer thread, and count the write errors it saw since we last looked. */
  private readonly kick = (): void => {
    this.kickPending = false;
    const tx = this.tx;
    if (!tx) return;
    tx.wake();
    for (const [name, n] of tx.newErrors()) this.counters.inc(`drop.write.${name}`, n);
  };

  onPacket(handler: PacketHandler): void {
    this.handler = handler;
  }

  close(): void {
    if (this.fd === undefined) return;
    this.fd = undefined;
    this.askReaderToStop();
  }

  private askReaderToStop(): void {
    Atomics.store(this.ctl, CTL.stop, 1);
    // A reader waiting for us to catch up, or in poll(): wake both.
    Atomics.notify(this.ctl, CTL.inflight);
    try {
      fs.writeSync(this.wakeFd, ONE);
    } catch {
      // The counter is saturated or the reader is gone: its poll timeout ends it anyway.
    }
    // The writer writes what is queued, then ends.
    this.tx?.stop();
  }

  /**
   * When the reader (and the writer, if any) have left their loops ('done', or the thread's
   * exit if it died first): close the fds, resolve `closed`.
   */
  private workerExited(): void {
    if (--this.workersLeft > 0) {
      // One thread ended on its own (a read error): stop the other too.
      if (this.fd !== undefined) {
        this.fd = undefined;
        this.askReaderToStop();
      }
      return;
    }
    if (this.tx) for (const [name, n] of this.tx.newErrors()) this.counters.inc(`drop.write.${name}`, n);
    const code = Atomics.load(this.ctl, CTL.error);
    if (code !== 0 && this.stopError === undefined) {
      this.stopError = new Error(`${this.name}: ${READER_ERRORS[code] ?? `reader error ${code}`}`);
    }
    if (this.stopError) this.counters.inc('error.read');
    this.fd = undefined;
    for (const fd of [this.deviceFd, this.wakeFd]) {
      try {
        fs.closeSync(fd);
      } catch {
        // Already gone (EBADF): nothing left to release.
      }
    }
    this.loopDone();
  }

  /** Write-thread statistics: how often it went to sleep with nothing to write (its wake-ups). */
  get writerStats(): { sleeps: number } | undefined {
    return this.tx ? { sleeps: Atomics.load(this.tx.ctl, TX.sleeps) } : undefined;
  }

  /**
   * A batch from the reader: [slab, then pairs (0, length) for the next packet in the slab
   * or (buffer, length) for a packet in a buffer of its own]; the buffers are now ours
   * (transferred, not copied). Handed to the receiver in order; then the reader may read
   * that much more.
   */
  private receive(msg: (ArrayBuffer | number | null)[]): void {
    const slab = msg[0];
    let at = 0;
    let bytes = 0;
    (this.c.wakeups ??= this.counters.counter('rx.wakeups')).value++;
    for (let i = 1; i + 1 < msg.length; i += 2) {
      const where = msg[i];
      const len = msg[i + 1] as number;
      bytes += len;
      if (this.fd === undefined) continue;
      const more = i + 3 < msg.length;
      if (where instanceof ArrayBuffer) this.deliver(new Uint8Array(where, 0, len), more);
      else if (slab instanceof ArrayBuffer) {
        this.deliver(new Uint8Array(slab, at, len), more);
        at += len;
      }
    }
    Atomics.sub(this.ctl, CTL.inflight, bytes);
    Atomics.notify(this.ctl, CTL.inflight);
  }

  private deliver(bytes: Uint8Array, more: boolean): void {
    (this.c.rx ??= this.counters.counter('rx')).value++;
    if (!this.handler) {
      this.counters.inc('drop.no-handler');
      return;
    }
    let info: PacketInfo | undefined;
    let packet = bytes;
    if (this.vnetHdrLen !== 0) {
      if (bytes.length < this.vnetHdrLen) {
        this.counters.inc('drop.vnet-hdr');
        return;
      }
      packet = bytes.subarray(this.vnetHdrLen);
      // Most packets without offload work have an all-zero first two bytes: skip decoding.
      if (bytes[0] !== 0 || bytes[1] !== 0) {
        let got: PacketInfo | undefined | string;
        try {
          got = packetInfoFromVnetHdr(decodeVnetHdr(bytes), packet);
        } catch {
          got = 'vnet-hdr';
        }
        if (typeof got === 'string') {
          this.counters.inc(`drop.${got}`);
          return;
        }
        info = got;
        if (info?.gso) (this.c.rxGso ??= this.counters.counter('rx.gso')).value++;
      }
    }
    try {
      if (more) this.handler(packet, info, true);
      else if (info) this.handler(packet, info);
      else this.handler(packet);
    } catch (e) {
      // A throwing handler is a bug above us: surface it as an uncaught error, as an
      // EventEmitter would, instead of hiding it in a counter.
      this.counters.inc('error.handler');
      process.nextTick(() => {
        throw e;
      });
    }
  }
}

/**
 * The write ring (records as in the read ring: an Int32 length, then a virtio-net header if
 * any and the packet) and the writer thread that empties it. Only the main thread writes
 * HEAD and only the writer writes TAIL.
 */
class TxRing {
  readonly ctl: Int32Array;
  readonly worker: Worker;
  private readonly data: Uint8Array;
  private readonly lens: Int32Array;
  private head = 0;
  private readonly seen = [0, 0, 0];

  constructor(
    fd: number,
    private readonly dataBytes: number,
    idleMs: number,
  ) {
    const sab = new SharedArrayBuffer(CTL_BYTES + dataBytes);
    this.ctl = new Int32Array(sab, 0, CTL_BYTES / 4);
    this.data = new Uint8Array(sab, CTL_BYTES, dataBytes);
    this.lens = new Int32Array(sab, CTL_BYTES, dataBytes >> 2);
    this.worker = new Worker(WRITER_SOURCE, {
      eval: true,
      workerData: { fd, sab, dataBytes, idleMs },
      stdin: false,
      execArgv: threadExecArgv(),
      resourceLimits: { maxOldGenerationSizeMb: 16 },
    });
  }

  /** Bytes queued and not yet written. */
  queued(): number {
    return (this.head - Atomics.load(this.ctl, TX.tail)) | 0;
  }

  /**
   * Queue one record; false if the ring stayed full for TX_FULL_WAIT_MS (the writer is
   * stuck: the caller drops and counts, as a full device queue would).
   */
  put(hdr: Uint8Array | undefined, packet: Uint8Array): boolean {
    const len = (hdr?.length ?? 0) + packet.length;
    const need = (4 + len + 3) & ~3;
    let pos = (this.head >>> 0) % this.dataBytes;
    const skip = pos + need > this.dataBytes ? this.dataBytes - pos : 0;
    const deadline = performance.now() + TX_FULL_WAIT_MS;
    for (;;) {
      const tail = Atomics.load(this.ctl, TX.tail);
      if (this.dataBytes - ((this.head - tail) | 0) >= skip + need) break;
      // Full: make sure the writer is awake, then wait for it to free a record.
      this.wake();
      const left = deadline - performance.now();
      if (left <= 0) return false;
      Atomics.wait(this.ctl, TX.tail, tail, Math.min(left, 20));
    }
    if (skip) {
      this.lens[pos >> 2] = -1;
      this.head = (this.head + skip) | 0;
      pos = 0;
    }
    this.lens[pos >> 2] = len;
    if (hdr) this.data.set(hdr, pos + 4);
    this.data.set(packet, pos + 4 + (hdr?.length ?? 0));
    this.head = (this.head + need) | 0;
    Atomics.store(this.ctl, TX.head, this.head);
    return true;
  }

  wake(): void {
    Atomics.notify(this.ctl, TX.head);
  }

  stop(): void {
    Atomics.store(this.ctl, TX.stop, 1);
    this.wake();
  }

  /** Write errors since the last call, by errno name. */
  newErrors(): [string, number][] {
    const out: [string, number][] = [];
    const slots = [
      ['EINVAL', TX.einval],
      ['EIO', TX.eio],
      ['error', TX.other],
    ] as const;
    slots.forEach(([name, slot], i) => {
      const n = Atomics.load(this.ctl, slot);
      if (n !== this.seen[i]) {
        out.push([name, n - (this.seen[i] ?? 0)]);
        this.seen[i] = n;
      }
    });
    return out;
  }
}
