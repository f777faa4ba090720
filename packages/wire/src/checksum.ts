import { SIMD_SUM_MAX, simdSum16 } from './checksum-simd.ts';

/**
 * The Internet checksum (RFC 1071): the 16-bit one's-complement of the one's-complement
 * sum of the data taken as big-endian 16-bit words, an odd final byte padded with zero.
 *
 * `sum16` returns the unfolded running sum so that callers can add a pseudo-header and a
 * payload in separate calls (RFC 1071 §2(B), the sum is associative) and fold once.
 */
export function sum16(data: Uint8Array, initial = 0): number {
  const n = data.length;
  if (n < 64) return sumShort(data, n, initial);
  // A packet's worth goes to WebAssembly SIMD where the runtime has it (checksum-simd.ts:
  // 2.5 times the speed of the best loop below, copy included).
  if (simd !== undefined && n <= SIMD_SUM_MAX) return simd(data) + initial;
  // Aligned data on a little-endian host (every packet our stack builds or a link hands
  // over: slabs start 8-byte aligned and IP headers are whole 32-bit words) is summed as
  // native 32-bit words: an aligned typed-array load is cheaper than DataView's
  // big-endian read. RFC 1071 §2(B): the sum is independent of byte order — summing
  // byte-swapped words gives the byte-swapped sum, swapped back once at the end.
  if (LITTLE_ENDIAN && (data.byteOffset & 3) === 0) return sumNative(data, n) + initial;
  return sumBigEndian(data, n, initial);
}

/** Bound once to a local (an imported binding may be a getter under some loaders; this runs per packet). */
const simd = simdSum16;

/**
 * A header's worth (an IP header, a pure ACK) byte by byte: no view to build, which at
 * this size costs more than the adds (a DataView per call was a tenth of the garbage a
 * bulk TCP transfer made).
 */
function sumShort(data: Uint8Array, n: number, initial: number): number {
  let sum = initial;
  let i = 0;
  for (; i + 1 < n; i += 2) sum += ((data[i] as number) << 8) | (data[i + 1] as number);
  if (i < n) sum += (data[i] as number) << 8;
  return sum;
}

/** RFC 1071 over big-endian 32-bit words read with a DataView (any alignment, any host). */
function sumBigEndian(data: Uint8Array, n: number, initial: number): number {
  const view = new DataView(data.buffer, data.byteOffset, n);
  // Sum 32-bit big-endian words: by RFC 1071 §2(C) a 32-bit sum folds to the same 16-bit
  // sum. A double holds integers up to 2^53 exactly, so fold every 2^20 words.
  let sum = initial;
  let i = 0;
  // Two 32-bit words a turn into two sums: the adds do not wait on each other (about a
  // quarter faster on a 1500-byte packet, where this is most of the per-byte cost).
  const end8 = n & ~7;
  while (i < end8) {
    const stop = Math.min(end8, i + 0x400000);
    let a = 0;
    let b = 0;
    for (; i < stop; i += 8) {
      a += view.getUint32(i);
      b += view.getUint32(i + 4);
    }
    sum += (a % 0x10000) + Math.floor(a / 0x10000) + (b % 0x10000) + Math.floor(b / 0x10000);
  }
  if (n - i >= 4) {
    sum += view.getUint16(i) + view.getUint16(i + 2);
    i += 4;
  }
  if (n - i >= 2) {
    sum += view.getUint16(i);
    i += 2;
  }
  if (i < n) sum += data[i]! << 8;
  return sum;
}

/**
 * The folded 16-bit sum of `data` (byteOffset a multiple of 4, little-endian host) in
 * network byte order, as sumBigEndian would give it once folded. Whole 32-bit words are
 * added as doubles, eight a turn: the eight in a tree of pairs (loads, conversions and the
 * first adds do not wait on each other) and the tree into one sum. Measured on 1480-byte
 * views of two 128 KiB slabs: 0.72 of the time of four separate sums, 0.57 of splitting
 * each word into 16-bit halves. A turn adds less than 2^35, so the sum stays exact below
 * 2^53 when folded every 2^20 words. By RFC 1071 §2(C) a 32-bit sum folds to the same
 * 16-bit sum, and by §2(B) the little-endian total, folded, is the network-order sum with
 * its two bytes swapped.
 */
function sumNative(data: Uint8Array, n: number): number {
  const words = n >>> 2;
  const first = data.byteOffset >>> 2;
  const end = first + words;
  const u = wordsOf(data.buffer, end);
  let acc = 0;
  let i = first;
  const end8 = first + (words & ~7);
  while (i < end8) {
    const stop = Math.min(end8, i + 0x100000);
    let a = 0;
    for (; i < stop; i += 8) {
      a +=
        (u[i] as number) +
        (u[i + 1] as number) +
        ((u[i + 2] as number) + (u[i + 3] as number)) +
        ((u[i + 4] as number) + (u[i + 5] as number) + ((u[i + 6] as number) + (u[i + 7] as number)));
    }
    acc += fold32(a);
  }
  for (; i < end; i++) acc += u[i] as number;
  while (acc > 0xffff) acc = (acc % 0x10000) + Math.floor(acc / 0x10000);
  // Back to network byte order; then the last one to three bytes, big-endian.
  let sum = ((acc & 0xff) << 8) | (acc >>> 8);
  let j = words << 2;
  if (n - j >= 2) {
    sum += ((data[j] as number) << 8) | (data[j + 1] as number);
    j += 2;
  }
  if (j < n) sum += (data[j] as number) << 8;
  return sum;
}

/** A sum of up to 2^20 32-bit words (< 2^52) as the smaller sum of its 16-bit halves. */
function fold32(x: number): number {
  return (x % 0x10000) + Math.floor(x / 0x10000);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * 32-bit views of whole buffers, the last two summed, kept for the next calls: packets
 * summed one after another come from a few slabs (a sender's, a link's), so one view
 * serves dozens of them instead of a new view per packet (garbage the scavenger then
 * collects). Two, because a sender's encodes and a receiver's verifies alternate between
 * two slabs when both ends run in one process (the simulated network). They pin at most
 * two buffers. A view that no longer reaches `words` words (another buffer, or this one
 * resized) is made again; a detached buffer has no data to sum here.
 */
function wordsOf(buffer: ArrayBufferLike, words: number): Uint32Array<ArrayBufferLike> {
  if (buffer === bufferA && words <= wordsA.length) return wordsA;
  if (buffer === bufferB && words <= wordsB.length) return wordsB;
  // Replace the older of the two: B moves to A's place, the new view becomes B.
  bufferA = bufferB;
  wordsA = wordsB;
  bufferB = buffer;
  wordsB = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
  return wordsB;
}
let bufferA: ArrayBufferLike | undefined;
let wordsA: Uint32Array<ArrayBufferLike> = new Uint32Array(0);
let bufferB: ArrayBufferLike | undefined;
let wordsB: Uint32Array<ArrayBufferLike> = new Uint32Array(0);

/**
 * Fold carries into 16 bits, without the complement (RFC 1071 §4.1's end-around carry): what
 * a partial checksum field holds (the pseudo-header sum a NIC completes), or a sum to take
 * apart again (RFC 1624 incremental updates).
 */
export function foldSum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** Fold carries into 16 bits and take the one's complement (RFC 1071 §4.1). */
export function finishChecksum(sum: number): number {
  return ~foldSum(sum) & 0xffff;
}

export function internetChecksum(...chunks: Uint8Array[]): number {
  let sum = 0;
  for (const c of chunks) sum = sum16(c, sum);
  return finishChecksum(sum);
}

/**
 * Incremental update when one 16-bit word m changes to m' (RFC 1624 eqn. 3):
 * HC' = ~(~HC + ~m + m'). Used for TTL decrement and NAT-style rewrites without
 * summing the whole header again.
 */
export function updateChecksum(hc: number, oldWord: number, newWord: number): number {
  return finishChecksum((~hc & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff));
}
