/**
 * The reading side of a TunLink: one node:worker_threads thread per device (or queue) that
 * waits in poll() and reads packets into a SharedArrayBuffer ring, and the main thread's
 * view of that ring.
 *
 * Why a thread of our own: a blocking read, or a poll() on libuv's threadpool, holds one of
 * that pool's four threads per device for as long as the device is open, and everything
 * else on the pool (async fs, dns.lookup, crypto) queues behind it. A worker thread blocks
 * in its own poll() instead. Why a ring: the main thread then takes every packet that
 * arrived since it last looked in one wake-up (Atomics.waitAsync on a counter the reader
 * bumps once per batch), instead of one poll() round trip through the threadpool per burst.
 *
 * The ring is one SharedArrayBuffer: a control block of Int32 slots, then DATA bytes of
 * records. A record is an Int32 length (4-byte aligned) followed by that many bytes; a
 * length of -1 means "skip to the start" (the reader never splits a record, and reads
 * straight into the ring, so it needs MAX_RECORD contiguous bytes before each read).
 * HEAD and TAIL are byte counters that only grow (mod 2^32); position = counter % DATA.
 * Only the reader writes HEAD and only the main thread writes TAIL.
 */

/** Int32 slots of the control block. */
export const CTL = Object.freeze({
  /** Bytes the reader has published (grows; wraps at 2^32). */
  head: 0,
  /** Bytes the main thread has consumed. */
  tail: 1,
  /** Bumped by the reader after each batch it publishes: what the main thread waits on. */
  seq: 2,
  /** Set to 1 by the main thread to ask the reader to stop. */
  stop: 3,
  /** Why the reader stopped on its own: 0 none, else an index into READER_ERRORS. */
  error: 4,
  /** Times the reader found the ring full and waited for the main thread (a statistic). */
  full: 5,
  /** Batches published (a statistic). */
  batches: 6,
} as const);
export const CTL_BYTES = 64;

export const READER_ERRORS = [
  '',
  'poll() keeps failing',
  'device reported an error or hang-up',
  'read failed',
] as const;

/**
 * The reader thread's program, run with `eval: true`. It is plain JavaScript in a string
 * so that it starts the same way everywhere (the workspace runs TypeScript through a
 * loader that a new thread would have to register again, slowly; the built package runs
 * JavaScript), and so that it is self-contained: it loads nothing but node:fs,
 * node:worker_threads and koffi (by the path the main thread resolved).
 *
 * Loop: poll() the TUN fd and the wake eventfd (no timeout needed for close, the eventfd
 * wakes it; pollTimeoutMs only re-checks STOP as a safety net); then read until EAGAIN,
 * publishing HEAD and waking the main thread every `batch` packets and at the end of each
 * burst. A full ring makes it wait (Atomics.wait on TAIL) for the main thread; the kernel
 * queues (and past its queue length drops) meanwhile, as it would for a slow reader.
 */
export const READER_SOURCE = `
'use strict';
const { workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { fd, wakeFd, sab, dataBytes, maxRecord, pollTimeoutMs, batch, koffiPath } = workerData;
const koffi = require(koffiPath);
const poll = koffi.load('libc.so.6').func('int poll(void *fds, unsigned long nfds, int timeout)');
const ctl = new Int32Array(sab, 0, ${CTL_BYTES / 4});
const data = new Uint8Array(sab, ${CTL_BYTES}, dataBytes);
const lens = new Int32Array(sab, ${CTL_BYTES}, dataBytes >> 2);
const POLLIN = 1, BROKEN = 0x8 | 0x10 | 0x20;
const EINTR = koffi.os.errno.EINTR;
// struct pollfd { int fd; short events; short revents; } twice, in the host's byte order.
const le = require('node:os').endianness() === 'LE';
const pfd = Buffer.alloc(16);
if (le) { pfd.writeInt32LE(fd, 0); pfd.writeInt16LE(POLLIN, 4); pfd.writeInt32LE(wakeFd, 8); pfd.writeInt16LE(POLLIN, 12); }
else { pfd.writeInt32BE(fd, 0); pfd.writeInt16BE(POLLIN, 4); pfd.writeInt32BE(wakeFd, 8); pfd.writeInt16BE(POLLIN, 12); }
let head = Atomics.load(ctl, ${CTL.head});
let failures = 0;
function publish() {
  Atomics.store(ctl, ${CTL.head}, head);
  Atomics.add(ctl, ${CTL.batches}, 1);
  Atomics.add(ctl, ${CTL.seq}, 1);
  Atomics.notify(ctl, ${CTL.seq});
}
function fail(code) {
  Atomics.store(ctl, ${CTL.error}, code);
  publish();
}
/** Read until EAGAIN; false when the reader must stop. */
function drain() {
  let n = 0;
  for (;;) {
    if (Atomics.load(ctl, ${CTL.stop})) return false;
    let pos = head % dataBytes;
    const skip = pos + maxRecord > dataBytes ? dataBytes - pos : 0;
    const tail = Atomics.load(ctl, ${CTL.tail});
    if (dataBytes - ((head - tail) | 0) < skip + maxRecord) {
      // Full: let the main thread catch up.
      if (n > 0) { publish(); n = 0; }
      Atomics.add(ctl, ${CTL.full}, 1);
      Atomics.wait(ctl, ${CTL.tail}, tail, pollTimeoutMs);
      continue;
    }
    if (skip) {
      lens[pos >> 2] = -1;
      head = (head + skip) | 0;
      pos = 0;
    }
    let len;
    try {
      len = fs.readSync(fd, data, pos + 4, maxRecord - 4, null);
    } catch (e) {
      if (e.code === 'EAGAIN' || e.code === 'EWOULDBLOCK' || e.code === 'EINTR') break;
      fail(${READER_ERRORS.indexOf('read failed')});
      return false;
    }
    if (len <= 0) break;
    lens[pos >> 2] = len;
    head = (head + ((4 + len + 3) & ~3)) | 0;
    if (++n >= batch) { publish(); n = 0; }
  }
  if (n > 0) publish();
  return true;
}
for (;;) {
  if (Atomics.load(ctl, ${CTL.stop})) break;
  const r = poll(pfd, 2, pollTimeoutMs);
  if (Atomics.load(ctl, ${CTL.stop})) break;
  if (r < 0) {
    // EINTR: a signal came (a profiler's SIGPROF arrives hundreds of times a second); retry.
    if (koffi.errno() === EINTR) continue;
    if (++failures >= 10) { fail(${READER_ERRORS.indexOf('poll() keeps failing')}); break; }
    continue;
  }
  failures = 0;
  if (r === 0) continue;
  const revents = le ? pfd.readUInt16LE(6) : pfd.readUInt16BE(6);
  if (revents & BROKEN) { fail(${READER_ERRORS.indexOf('device reported an error or hang-up')}); break; }
  if ((revents & POLLIN) && !drain()) break;
}
`;

/** Int32 slots of the write ring's control block. */
export const TX = Object.freeze({
  /** Bytes the main thread has queued (grows; wraps at 2^32); the writer waits on it. */
  head: 0,
  /** Bytes the writer has written; the main thread waits on it when the ring is full. */
  tail: 1,
  /** Set to 1 by the main thread to ask the writer to stop. */
  stop: 2,
  /** Writes the kernel refused: EINVAL (a packet it cannot parse), EIO (device down), other. */
  einval: 3,
  eio: 4,
  other: 5,
  /** Times the writer went to sleep with the ring empty (a statistic: its wake-ups). */
  sleeps: 6,
} as const);

/**
 * The writer thread's program (`eval: true`, plain JavaScript for the reason given above).
 * The main thread queues each packet (with its virtio-net header in front, so one write()
 * carries both) as a record in the write ring and wakes this thread once per turn of its
 * event loop; this thread writes every queued record, one write() each. The write is where
 * the kernel does its receive processing of the packet (tun_get_user hands it to the
 * stack in the writer's context), so moving it here takes that work off the main thread.
 */
export const WRITER_SOURCE = `
'use strict';
const { workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { fd, sab, dataBytes, idleMs } = workerData;
const ctl = new Int32Array(sab, 0, ${CTL_BYTES / 4});
const data = new Uint8Array(sab, ${CTL_BYTES}, dataBytes);
const lens = new Int32Array(sab, ${CTL_BYTES}, dataBytes >> 2);
let tail = Atomics.load(ctl, ${TX.tail});
for (;;) {
  const head = Atomics.load(ctl, ${TX.head});
  if (head === tail) {
    if (Atomics.load(ctl, ${TX.stop})) break;
    Atomics.add(ctl, ${TX.sleeps}, 1);
    Atomics.wait(ctl, ${TX.head}, head, idleMs);
    continue;
  }
  while (tail !== head) {
    const pos = (tail >>> 0) % dataBytes;
    const len = lens[pos >> 2];
    if (len < 0) { tail = (tail + (dataBytes - pos)) | 0; continue; }
    try {
      fs.writeSync(fd, data, pos + 4, len);
    } catch (e) {
      Atomics.add(ctl, e.code === 'EINVAL' ? ${TX.einval} : e.code === 'EIO' ? ${TX.eio} : ${TX.other}, 1);
    }
    tail = (tail + ((4 + len + 3) & ~3)) | 0;
    // Space is freed record by record: a main thread waiting on a full ring goes on at once.
    Atomics.store(ctl, ${TX.tail}, tail);
    Atomics.notify(ctl, ${TX.tail});
  }
}
`;
