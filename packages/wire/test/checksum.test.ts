import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { SIMD_SUM_MAX, simdSum16 } from '../src/checksum-simd.ts';
import { finishChecksum, fromHex, internetChecksum, sum16, updateChecksum } from '../src/index.ts';

/** The plain definition of RFC 1071: a peer implementation to check the optimised one. */
function referenceChecksum(data: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < data.length; i += 2) {
    sum += (data[i]! << 8) | (data[i + 1] ?? 0);
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  return ~sum & 0xffff;
}

describe('Internet checksum (RFC 1071)', () => {
  it('matches the worked example of RFC 1071 §3', () => {
    // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum (folded) to ddf2, checksum is its complement.
    const data = fromHex('0001f203f4f5f6f7');
    expect(finishChecksum(sum16(data))).toBe(~0xddf2 & 0xffff);
  });

  it('verifies a real IPv4 header to zero', () => {
    // A header captured from Linux (checksum b861 in place): summing with it gives 0.
    const hdr = fromHex('45000073000040004011b861c0a80001c0a800c7');
    expect(internetChecksum(hdr)).toBe(0);
  });

  test.prop([fc.uint8Array({ maxLength: 3000 })])('agrees with the reference definition', (data) => {
    expect(internetChecksum(data)).toBe(referenceChecksum(data));
  });

  test.prop([
    // size 'max': lengths over the whole range (fast-check's default size keeps arrays to a
    // few bytes, below the native path's 64).
    fc.uint8Array({ maxLength: 3000, size: 'max' }),
    fc.integer({ min: 0, max: 7 }),
    fc.nat({ max: 0xfffff }),
  ])(
    'agrees with the reference at every alignment (aligned words and the DataView path)',
    (data, shift, initial) => {
      // The same bytes at byteOffset 0..7 of a larger buffer. Up to 64 KiB they go to the
      // SIMD sum (checksum-simd.ts); longer ones take the native-word path at a multiple
      // of 4 and the big-endian DataView one elsewhere ('folds long runs' below).
      const room = new Uint8Array(data.length + 8);
      room.set(data, shift);
      const view = room.subarray(shift, shift + data.length);
      expect(finishChecksum(sum16(view))).toBe(referenceChecksum(data));
      // `initial` (a pseudo-header sum) adds in whichever path ran.
      const withInitial = finishChecksum(sum16(view, initial));
      expect(withInitial).toBe(finishChecksum(sum16(data) + initial));
    },
  );

  it('sums views of one buffer, of another, and of a buffer grown since, each as its own bytes', () => {
    // sum16 keeps a 32-bit view of the last buffer it summed: every call must still read
    // the caller's bytes, whichever buffer and wherever in it.
    const a = new Uint8Array(4096).map((_, i) => (i * 31 + 7) & 0xff);
    const b = new Uint8Array(4096).map((_, i) => (i * 17 + 3) & 0xff);
    const parts: Uint8Array[] = [
      a.subarray(0, 1500),
      b.subarray(8, 1508),
      a.subarray(2048, 3548),
      a.subarray(4, 100),
    ];
    for (const p of parts) expect(finishChecksum(sum16(p))).toBe(referenceChecksum(p));
    // A resizable ArrayBuffer (ES2024; this workspace's lib is older, hence the cast).
    const Resizable = ArrayBuffer as unknown as new (
      n: number,
      o: { maxByteLength: number },
    ) => ArrayBuffer & { resize(n: number): void };
    const growable = new Resizable(256, { maxByteLength: 4096 });
    const g = new Uint8Array(growable);
    g.fill(0x5a);
    expect(finishChecksum(sum16(new Uint8Array(growable, 0, 256)))).toBe(referenceChecksum(g.slice(0, 256)));
    growable.resize(4096);
    const tail = new Uint8Array(growable, 1024, 2048);
    tail.fill(0xc3);
    expect(finishChecksum(sum16(tail))).toBe(referenceChecksum(tail.slice()));
  });

  it('has the WebAssembly SIMD sum on this runtime (Node 20+), and sums its longest input exactly', () => {
    // Not a silent fallback: the packet-sized path is the SIMD one wherever the stack runs.
    expect(simdSum16).toBeTypeOf('function');
    const sum = simdSum16 as (d: Uint8Array) => number;
    // The largest lane values: 4096 steps of 0xffff words (all ones sum to 0xffff).
    const ones = new Uint8Array(SIMD_SUM_MAX).fill(0xff);
    expect(finishChecksum(sum(ones))).toBe(0);
    ones[SIMD_SUM_MAX - 1] = 0xfe;
    expect(finishChecksum(sum(ones))).toBe(referenceChecksum(ones));
  });

  test.prop([
    fc.integer({ min: 0, max: SIMD_SUM_MAX }),
    fc.integer({ min: 0, max: 15 }),
    fc.integer({ min: 0, max: 0xffffffff }),
  ])('the SIMD sum agrees with the reference at every length, offset and contents', (n, shift, seed) => {
    const room = new Uint8Array(n + 16);
    let x = seed;
    for (let i = 0; i < room.length; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      room[i] = x >>> 24;
    }
    const view = room.subarray(shift, shift + n);
    expect(finishChecksum((simdSum16 as (d: Uint8Array) => number)(view))).toBe(referenceChecksum(view));
  });

  it('stays exact past 2^53 in the native sums (32 MiB of 0xff: over 2^21 largest words per sum)', () => {
    // Four double sums of 32-bit words would lose bits from 2^21 words each on; they are
    // folded every 2^20 words. All ones sum to 0xffff (checksum 0) however long.
    const n = 32 * 1024 * 1024 + 64;
    const ones = new Uint8Array(n).fill(0xff);
    expect(finishChecksum(sum16(ones))).toBe(0);
    ones[n - 1] = 0xfe;
    expect(finishChecksum(sum16(ones))).toBe(referenceChecksum(ones));
  });

  it('folds long runs of large words on both paths', () => {
    // Bytes of 0x80 and up make the partial sums grow fast, with both halves of each
    // word different so that a missing byte swap shows; lengths with every remainder of
    // the four-word turn and the odd byte, aligned and not.
    for (const n of [64, 65, 4096 * 8 + 3, 70_001, 600_001]) {
      const room = new Uint8Array(n + 1);
      for (let i = 0; i < room.length; i++) room[i] = 0x80 | ((i * 37 + 11) & 0x7f);
      for (const view of [room.subarray(0, n), room.subarray(1, n + 1)]) {
        expect(finishChecksum(sum16(view))).toBe(referenceChecksum(view));
      }
    }
  });

  test.prop([fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 })])(
    'is associative over even-length chunks (RFC 1071 §2(B))',
    (a, b) => {
      const even = a.length % 2 === 0 ? a : a.subarray(1);
      const joined = new Uint8Array([...even, ...b]);
      expect(internetChecksum(even, b)).toBe(internetChecksum(joined));
    },
  );

  test.prop([
    fc.uint8Array({ minLength: 2, maxLength: 64 }).filter((x) => x.length % 2 === 0),
    fc.nat(),
    fc.nat({ max: 0xffff }),
  ])('incremental update equals recomputation (RFC 1624 eqn. 3)', (data, at, word) => {
    const i = (at % (data.length / 2)) * 2;
    const before = internetChecksum(data);
    const old = (data[i]! << 8) | data[i + 1]!;
    const changed = data.slice();
    changed[i] = word >> 8;
    changed[i + 1] = word & 0xff;
    const after = internetChecksum(changed);
    const inc = updateChecksum(before, old, word);
    // RFC 1624 §3: +0 and -0 (0x0000 / 0xffff) are the same one's-complement value.
    expect(inc === after || (inc ^ after) === 0xffff).toBe(true);
  });
});
