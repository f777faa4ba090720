/**
 * Packet number encoding and decoding (RFC 9000 §17.1, Appendix A.2 and A.3).
 *
 * A packet number is sent truncated to 1..4 bytes. The sender picks enough bytes to
 * represent more than twice the range of packets it has in flight (since the largest
 * acknowledged), so the receiver can pick the one candidate closest to the packet number
 * it expects next. Packet numbers run up to 2^62-1, so the arithmetic here uses plain
 * multiplication rather than 32-bit bitwise operators.
 */

export type PacketNumberLength = 1 | 2 | 3 | 4;

/** The largest packet number (RFC 9000 §12.3). */
export const PACKET_NUMBER_MAX = 2 ** 62 - 1;

export interface TruncatedPacketNumber {
  truncated: number;
  length: PacketNumberLength;
}

/**
 * RFC 9000 Appendix A.2: encode `fullPn` given the largest packet number the peer has
 * acknowledged in this space (undefined when none has been).
 */
export function encodePacketNumber(fullPn: number, largestAcked: number | undefined): TruncatedPacketNumber {
  // "The number of bits must be at least one more than the base-2 logarithm of the
  // number of contiguous unacknowledged packet numbers, including the new packet."
  const numUnacked = largestAcked === undefined ? fullPn + 1 : fullPn - largestAcked;
  if (numUnacked <= 0)
    throw new RangeError(`packet number ${fullPn} is not above largest acked ${largestAcked}`);
  const minBits = Math.log2(numUnacked) + 1;
  const numBytes = Math.ceil(minBits / 8);
  if (numBytes > 4) throw new RangeError(`${numUnacked} packets in flight do not fit a 4-byte packet number`);
  const length = numBytes as PacketNumberLength;
  return { truncated: fullPn % 2 ** (8 * length), length };
}

/**
 * RFC 9000 Appendix A.3: recover the full packet number from its truncated form, given
 * the largest packet number successfully processed in this space (-1 when none has been).
 */
export function decodePacketNumber(largestPn: number, truncatedPn: number, pnNbits: number): number {
  const expectedPn = largestPn + 1;
  const pnWin = 2 ** pnNbits;
  const pnHwin = pnWin / 2;
  // candidate_pn = (expected_pn & ~pn_mask) | truncated_pn
  const candidatePn = Math.floor(expectedPn / pnWin) * pnWin + truncatedPn;
  if (candidatePn <= expectedPn - pnHwin && candidatePn < 2 ** 62 - pnWin) return candidatePn + pnWin;
  if (candidatePn > expectedPn + pnHwin && candidatePn >= pnWin) return candidatePn - pnWin;
  return candidatePn;
}
