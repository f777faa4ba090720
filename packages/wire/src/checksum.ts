/**
 * The Internet checksum (RFC 1071): the 16-bit one's-complement of the one's-complement
 * sum of the data taken as big-endian 16-bit words, an odd final byte padded with zero.
 *
 * `sum16` returns the unfolded running sum so that callers can add a pseudo-header and a
 * payload in separate calls (RFC 1071 §2(B), the sum is associative) and fold once.
 */
export function sum16(data: Uint8Array, initial = 0): number {
  let sum = initial;
  const n = data.length;
  const even = n & ~1;
  // Sum in 32-bit chunks of two words; fold often enough that a JS number never loses bits.
  let i = 0;
  while (i < even) {
    const stop = Math.min(even, i + 0x10000);
    for (; i < stop; i += 2) sum += (data[i]! << 8) | data[i + 1]!;
    sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  }
  if (n & 1) sum += data[n - 1]! << 8;
  return sum;
}

/** Fold carries into 16 bits and take the one's complement (RFC 1071 §4.1). */
export function finishChecksum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
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
  let sum = (~hc & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}
