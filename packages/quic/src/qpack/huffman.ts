/**
 * The Huffman code of RFC 7541 (§5.2, Appendix B), which QPACK reuses for string literals
 * (RFC 9204 §4.1.2). The http package has its own copy for HPACK; QUIC may not depend on
 * http (dependencies point down), so this one is kept here: a table of code lengths
 * (RFC 7541 Appendix B) from which the canonical codes are rebuilt, checked by the tests
 * against RFC 7541's Appendix C vectors.
 */

// RFC 7541 Appendix B: code length in bits of symbols 0..255 and 256 (EOS).
// biome-ignore format: a table
export const HUFFMAN_CODE_LENGTHS: readonly number[] = [
  13,23,28,28,28,28,28,28,28,24,30,28,28,30,28,28,28,28,28,28,28,28,30,28,28,28,28,28,28,28,28,28,
  6,10,10,12,13,6,8,11,10,10,8,11,8,6,6,6,5,5,5,6,6,6,6,6,6,6,7,8,15,6,12,10,
  13,6,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,8,7,8,13,19,13,14,6,
  15,5,6,5,6,5,6,6,6,5,7,7,6,6,6,5,6,7,6,5,5,6,7,7,7,7,7,15,11,14,13,28,
  20,22,20,20,22,22,22,23,22,23,23,23,23,23,24,23,24,24,22,23,24,23,23,23,23,21,22,23,22,23,23,24,
  22,21,20,22,22,23,23,21,23,22,22,24,21,22,23,23,21,21,22,21,23,22,23,23,20,22,22,22,23,22,22,23,
  26,26,20,19,22,23,22,25,26,26,26,27,27,26,24,25,19,21,26,27,27,26,27,24,21,21,26,26,28,27,27,27,
  20,24,20,21,22,21,21,23,22,22,25,25,24,24,26,23,26,27,26,26,27,27,27,27,27,28,27,27,27,27,27,26,
  30,
];

export const EOS = 256;

/**
 * The codes. Appendix B's code is canonical: ordering symbols by (length, symbol), each
 * code is the previous one plus one, shifted left by the growth in length.
 */
export const HUFFMAN_CODES: readonly number[] = (() => {
  const order = HUFFMAN_CODE_LENGTHS.map((len, sym) => ({ len, sym })).sort(
    (a, b) => a.len - b.len || a.sym - b.sym,
  );
  const codes = new Array<number>(HUFFMAN_CODE_LENGTHS.length).fill(0);
  let code = -1;
  let prevLen = order[0]!.len;
  for (const { len, sym } of order) {
    code = (code + 1) * 2 ** (len - prevLen);
    prevLen = len;
    codes[sym] = code;
  }
  return codes;
})();

/** The decoding tree as arrays: node n's children are CHILD[2n] (bit 0) and CHILD[2n+1] (bit 1); leaves are -(symbol+1). */
const CHILD: Int32Array = (() => {
  const child = new Int32Array(2 * 512).fill(0);
  let nodes = 1;
  HUFFMAN_CODES.forEach((code, sym) => {
    const len = HUFFMAN_CODE_LENGTHS[sym]!;
    let n = 0;
    for (let i = len - 1; i >= 0; i--) {
      const bit = Math.floor(code / 2 ** i) & 1;
      const slot = 2 * n + bit;
      if (i === 0) {
        child[slot] = -(sym + 1);
      } else {
        if (child[slot] === 0) child[slot] = nodes++;
        n = child[slot]!;
      }
    }
  });
  return child;
})();

export function huffmanEncodedLength(s: Uint8Array): number {
  let bits = 0;
  for (const b of s) bits += HUFFMAN_CODE_LENGTHS[b]!;
  return Math.ceil(bits / 8);
}

export function huffmanEncode(s: Uint8Array): Uint8Array {
  const out = new Uint8Array(huffmanEncodedLength(s));
  let acc = 0;
  let accBits = 0;
  let at = 0;
  for (const b of s) {
    const len = HUFFMAN_CODE_LENGTHS[b]!;
    const code = HUFFMAN_CODES[b]!;
    // Feed the code in pieces of at most 8 bits so the accumulator stays small.
    for (let rem = len; rem > 0; ) {
      const take = Math.min(rem, 8);
      rem -= take;
      acc = (acc << take) | (Math.floor(code / 2 ** rem) & ((1 << take) - 1));
      accBits += take;
      while (accBits >= 8) {
        accBits -= 8;
        out[at++] = (acc >> accBits) & 0xff;
      }
      acc &= (1 << accBits) - 1;
    }
  }
  // RFC 7541 §5.2: pad with the most significant bits of EOS (all ones).
  if (accBits > 0) out[at++] = ((acc << (8 - accBits)) | ((1 << (8 - accBits)) - 1)) & 0xff;
  return out;
}

/** Why a Huffman string did not decode, or undefined. */
export type HuffmanError = 'EOS in string' | 'padding longer than 7 bits' | 'padding not all ones';

/**
 * RFC 7541 §5.2: decodes, or reports the error the RFC names: an EOS symbol, padding
 * longer than 7 bits, or padding that is not a prefix of EOS.
 */
export function huffmanDecode(data: Uint8Array): Uint8Array | HuffmanError {
  const out: number[] = [];
  let node = 0;
  // Bits consumed since the last complete symbol, and whether all of them were 1.
  let pending = 0;
  let allOnes = true;
  for (const byte of data) {
    for (let i = 7; i >= 0; i--) {
      const bit = (byte >> i) & 1;
      const next = CHILD[2 * node + bit]!;
      pending++;
      if (bit === 0) allOnes = false;
      if (next < 0) {
        const sym = -next - 1;
        if (sym === EOS) return 'EOS in string';
        out.push(sym);
        node = 0;
        pending = 0;
        allOnes = true;
      } else {
        node = next;
      }
    }
  }
  if (pending > 7) return 'padding longer than 7 bits';
  if (!allOnes) return 'padding not all ones';
  return Uint8Array.from(out);
}
