/**
 * The reading side of a TunLink: one node:worker_threads thread per device (or queue) that
 * waits in poll() and reads packets, handing them to the main thread in batches.
 *
 * Why a thread of our own: a blocking read, or a poll() on libuv's threadpool, holds one of
 * that pool's four threads per device for as long as the device is open, and everything
 * else on the pool (async fs, dns.lookup, crypto) queues behind it. A worker thread blocks
 * in its own poll() instead.
 *
 * How packets cross: a large packet (a super-segment) is read into an ArrayBuffer of its
 * own; small ones are gathered and copied, on the reader's thread, into one slab per
 * batch. A batch goes to the main thread in one postMessage with those buffers in the
 * transfer list: the main thread gets them without a copy, and one wake-up carries up to
 * `batch` packets. (One buffer per small packet cost more in allocation and transfer than
 * the copy; a slab per batch bounds what a retained view of one packet keeps alive to
 * `batch` x 4 KB.) A first version used a SharedArrayBuffer ring
 * and copied each packet out on the main thread; V8 copies out of shared memory with
 * relaxed atomic word moves, and that copy alone took half of the main thread's time on a
 * 64 KB super-segment stream (0.4 GB/s measured in the profile).
 *
 * Why a big packet's buffer is never reused: the stack keeps views of it (TCP's receive
 * queue holds payload by reference, and the socket hands those views to the application as
 * its chunks), so nothing can tell the reader when a buffer is free again. What that costs,
 * measured (300 MB kernel -> us over a device with offloads, 2026-12-07): V8 counts every
 * buffer as external memory, and as the main thread allocates little on its own heap no
 * scavenge comes along to free the dead ones; external memory climbs 40-80 MB, then a
 * mark-compact of the whole heap runs (every 30-200 ms). Those collections (V8's helper
 * threads ~250 ms, plus marking steps on the main thread) and the page faults of fresh
 * memory (~20k per 300 MB, half of this thread's read() time) were about a third of the
 * process's CPU. An experiment that handed each buffer back to this thread 128 packets
 * later (valid only because the consumer, a discard service, dropped the data) ran the same
 * transfer at 6.2-6.5 Gbit/s instead of 2-3.6, helpers at 10-40 ms. Reuse needs a read
 * API that copies into the application's own buffer (node:net's `onread`), so that TCP can
 * give a link buffer back when its receive queue drops the last view of it.
 *
 * Flow control: the bytes handed over and not yet delivered are counted in a shared Int32
 * (INFLIGHT); past `maxInflight` the reader waits for the main thread, and the kernel
 * queues (and past its queue length drops) meanwhile, as for any slow reader.
 */

/** Int32 slots of the control block shared with the reader. */
export const CTL = Object.freeze({
  /** Bytes handed to the main thread and not yet delivered by it. */
  inflight: 0,
  /** Set to 1 by the main thread to ask the reader to stop. */
  stop: 3,
  /** Why the reader stopped on its own: 0 none, else an index into READER_ERRORS. */
  error: 4,
  /** Times the reader waited for the main thread to catch up (a statistic). */
  full: 5,
  /** Batches handed over (a statistic). */
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
 * JavaScript), and so that it is self-contained: it loads nothing but node:os,
 * node:worker_threads and koffi (by the path the main thread resolved); poll() and read()
 * are libc's, called through koffi.
 *
 * Loop: poll() the TUN fd and the wake eventfd (close() writes the eventfd; pollTimeoutMs
 * only re-checks STOP as a safety net); then read until EAGAIN, posting a batch every
 * `batch` packets and at the end of each burst. A message is [slab, then (0, length) for
 * each packet in the slab and (buffer, length) for each packet in a buffer of its own].
 */
export const READER_SOURCE = `
'use strict';
const { workerData, parentPort } = require('node:worker_threads');
const { fd, wakeFd, sab, maxRead, pollTimeoutMs, batch, maxInflight, koffiPath } = workerData;
const koffi = require(koffiPath);
const libc = koffi.load('libc.so.6');
const poll = libc.func('int poll(void *fds, unsigned long nfds, int timeout)');
// read(2) through koffi rather than fs.readSync: each drain ends in EAGAIN, which readSync
// reports by throwing an Error, and building it (message, stack trace captured through
// optimized frames) was the largest piece of this thread's own JavaScript in a download
// profile (one per batch). Here EAGAIN is a return value and an errno.
const read = libc.func('long read(int fd, void *buf, unsigned long count)');
const ctl = new Int32Array(sab, 0, ${CTL_BYTES / 4});
const POLLIN = 1, BROKEN = 0x8 | 0x10 | 0x20;
const { EINTR, EAGAIN } = koffi.os.errno;
// struct pollfd { int fd; short events; short revents; } twice, in the host's byte order.
const le = require('node:os').endianness() === 'LE';
const pfd = Buffer.alloc(16);
if (le) { pfd.writeInt32LE(fd, 0); pfd.writeInt16LE(POLLIN, 4); pfd.writeInt32LE(wakeFd, 8); pfd.writeInt16LE(POLLIN, 12); }
else { pfd.writeInt32BE(fd, 0); pfd.writeInt16BE(POLLIN, 4); pfd.writeInt32BE(wakeFd, 8); pfd.writeInt16BE(POLLIN, 12); }
let failures = 0;
// Packets longer than BIG are handed over in the buffer they were read into (a new one is
// then allocated); shorter ones are gathered in a staging area and copied, at hand-over,
// into one slab of exactly their total size: one buffer per batch, not one per packet.
const BIG = 4096;
// Read buffers are not zero-filled (allocUnsafeSlow: a whole ArrayBuffer of its own, so it
// can be transferred): read() overwrites what is handed over, and 64 KiB of zeroes per
// super-segment were ~5% of this thread's time in a bulk upload profile.
const fresh = () => { const b = Buffer.allocUnsafeSlow(maxRead); return new Uint8Array(b.buffer, 0, maxRead); };
let cur = fresh();
const stage = new Uint8Array(Math.max(batch, 1) * BIG);
let staged = 0;
// [slab, then pairs: (0, len) for the next packet in the slab, (buffer, len) for a big one]
let msg = [null];
let list = [];
let bytes = 0;
function post() {
  if (msg.length === 1) return;
  if (staged > 0) {
    msg[0] = stage.buffer.slice(0, staged);
    list.push(msg[0]);
  }
  Atomics.add(ctl, ${CTL.inflight}, bytes);
  Atomics.add(ctl, ${CTL.batches}, 1);
  parentPort.postMessage(msg, list);
  msg = [null]; list = []; bytes = 0; staged = 0;
}
function fail(code) {
  post();
  Atomics.store(ctl, ${CTL.error}, code);
}
/** Read until EAGAIN; false when the reader must stop. */
function drain() {
  for (;;) {
    if (Atomics.load(ctl, ${CTL.stop})) return false;
    const inflight = Atomics.load(ctl, ${CTL.inflight});
    if (inflight + bytes >= maxInflight) {
      // The main thread is behind: hand over what we have and wait for it.
      post();
      Atomics.add(ctl, ${CTL.full}, 1);
      Atomics.wait(ctl, ${CTL.inflight}, Atomics.load(ctl, ${CTL.inflight}), pollTimeoutMs);
      continue;
    }
    const len = Number(read(fd, cur, maxRead));
    if (len < 0) {
      // EAGAIN (EWOULDBLOCK on Linux): the queue is empty. EINTR: a signal; poll again.
      const errno = koffi.errno();
      if (errno === EAGAIN || errno === EINTR) break;
      fail(${READER_ERRORS.indexOf('read failed')});
      return false;
    }
    if (len === 0) break;
    if (len > BIG) {
      msg.push(cur.buffer, len);
      list.push(cur.buffer);
      cur = fresh();
    } else {
      stage.set(cur.subarray(0, len), staged);
      staged += len;
      msg.push(0, len);
    }
    bytes += len;
    if (msg.length >= 1 + 2 * batch) post();
  }
  post();
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
// The fd is not touched again: the main thread may close it now, before this thread's
// teardown (which takes tens of milliseconds on a busy machine) is over.
parentPort.postMessage('done');
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
require('node:worker_threads').parentPort.postMessage('done');
`;
