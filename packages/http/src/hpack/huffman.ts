/**
 * The HPACK Huffman code (RFC 7541 §5.2, Appendix B).
 *
 * The code of Appendix B is canonical: codes of equal length are consecutive and increase
 * with the symbol, and a code of length n+1 follows the last code of length n shifted left.
 * So the table below keeps only the code length of each symbol (0–255, and 256 = EOS),
 * transcribed from Appendix B; the codes are rebuilt from the lengths at load time, and
 * the RFC's Appendix C.4/C.6 vectors check the result bit for bit.
 *
 * Decoding walks the code tree four bits at a time with a precomputed state table (every
 * code is at least 5 bits long, so a nibble emits at most one symbol).
 */
import { ParseError } from '@stepwire/wire';

// RFC 7541 Appendix B: code length in bits of symbols 0..256.
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

/** The code of each symbol, rebuilt canonically from the lengths (see the file comment). */
export const HUFFMAN_CODES: readonly number[] = (() => {
  const order = HUFFMAN_CODE_LENGTHS.map((len, sym) => ({ len, sym })).sort(
    (a, b) => a.len - b.len || a.sym - b.sym,
  );
  const codes = new Array<number>(257).fill(0);
  let code = 0;
  let prevLen = order[0]?.len ?? 0;
  order.forEach(({ len, sym }, i) => {
    if (i > 0) code = (code + 1) * 2 ** (len - prevLen);
    prevLen = len;
    codes[sym] = code;
  });
  return codes;
})();

const LENGTHS = Uint8Array.from(HUFFMAN_CODE_LENGTHS);
const CODES = Uint32Array.from(HUFFMAN_CODES);

/** Length in bytes of the Huffman encoding of a latin1 string (RFC 7541 §5.2). */
export function huffmanEncodedLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += LENGTHS[s.charCodeAt(i) & 0xff]!;
  return (bits + 7) >>> 3;
}

/**
 * Writes the Huffman encoding of latin1 string `s` into `out` at `at`; returns the end.
 * The last byte is padded with the most significant bits of EOS, i.e. ones (RFC 7541 §5.2).
 */
export function huffmanEncodeInto(s: string, out: Uint8Array, at: number): number {
  // acc holds n < 8 pending bits; a code longer than 24 bits is pushed in two parts so that
  // acc never needs more than 31 bits.
  let acc = 0;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const sym = s.charCodeAt(i) & 0xff;
    let len = LENGTHS[sym]!;
    const code = CODES[sym]!;
    if (len > 24) {
      const hi = len - 16;
      acc = (acc << hi) | (code >>> 16);
      n += hi;
      while (n >= 8) {
        n -= 8;
        out[at++] = acc >>> n;
        acc &= (1 << n) - 1;
      }
      acc = (acc << 16) | (code & 0xffff);
      len = 16;
    } else {
      acc = (acc << len) | code;
    }
    n += len;
    while (n >= 8) {
      n -= 8;
      out[at++] = acc >>> n;
      acc &= (1 << n) - 1;
    }
  }
  if (n > 0) out[at++] = ((acc << (8 - n)) | (0xff >>> n)) & 0xff;
  return at;
}

export function huffmanEncode(s: string): Uint8Array {
  const out = new Uint8Array(huffmanEncodedLength(s));
  huffmanEncodeInto(s, out, 0);
  return out;
}

// ---- decoding state machine -------------------------------------------------------------

// The code tree: internal node i has children LEFT[i] (bit 0) and RIGHT[i] (bit 1);
// a child value >= 0 is another internal node, a negative value -1-sym is a leaf.
const FLAG_EMIT = 1;
const FLAG_FAIL = 2; // EOS was decoded (RFC 7541 §5.2: MUST be treated as a decoding error)
const FLAG_ACCEPT = 4; // ending here leaves ≤ 7 padding bits, all ones (RFC 7541 §5.2)

/** For state s and nibble x at s*16+x: next state, emitted symbol, flags. */
let NEXT: Uint16Array;
let SYM: Uint8Array;
let FLAGS: Uint8Array;

function buildDecoder(): void {
  const left: number[] = [0];
  const right: number[] = [0];
  const depth: number[] = [0];
  const allOnes: boolean[] = [true];
  left.length = 0;
  right.length = 0;
  depth.length = 0;
  allOnes.length = 0;
  const newNode = (d: number, ones: boolean): number => {
    left.push(0);
    right.push(0);
    depth.push(d);
    allOnes.push(ones);
    return left.length - 1;
  };
  newNode(0, true);
  for (let sym = 0; sym <= 256; sym++) {
    const len = LENGTHS[sym]!;
    const code = CODES[sym]!;
    let node = 0;
    for (let b = len - 1; b >= 0; b--) {
      const bit = Math.floor(code / 2 ** b) & 1;
      const arr = bit ? right : left;
      if (b === 0) {
        arr[node] = -1 - sym;
      } else {
        let child = arr[node]!;
        if (child <= 0) {
          child = newNode(depth[node]! + 1, allOnes[node]! && bit === 1);
          arr[node] = child;
        }
        node = child;
      }
    }
  }
  const states = left.length;
  NEXT = new Uint16Array(states * 16);
  SYM = new Uint8Array(states * 16);
  FLAGS = new Uint8Array(states * 16);
  for (let s = 0; s < states; s++) {
    for (let x = 0; x < 16; x++) {
      let node = s;
      let flags = 0;
      let sym = 0;
      for (let b = 3; b >= 0; b--) {
        const child = (x >>> b) & 1 ? right[node]! : left[node]!;
        if (child < 0) {
          const leaf = -1 - child;
          if (leaf === EOS) {
            flags |= FLAG_FAIL;
            node = 0;
            break;
          }
          flags |= FLAG_EMIT;
          sym = leaf;
          node = 0;
        } else {
          node = child;
        }
      }
      if (!(flags & FLAG_FAIL) && depth[node]! <= 7 && allOnes[node]!) flags |= FLAG_ACCEPT;
      NEXT[s * 16 + x] = node;
      SYM[s * 16 + x] = sym;
      FLAGS[s * 16 + x] = flags;
    }
  }
}
buildDecoder();

let scratch = new Uint8Array(256);

/**
 * Decodes Huffman-coded bytes [start, end) of `bytes` to a latin1 string. Throws ParseError
 * for EOS in the data, padding longer than 7 bits, or padding that is not all ones
 * (RFC 7541 §5.2). `offset` positions errors in the header block.
 */
export function huffmanDecode(bytes: Uint8Array, start = 0, end = bytes.length): string {
  // The shortest code is 5 bits, so n bytes decode to at most 8n/5 symbols.
  const max = Math.ceil(((end - start) * 8) / 5);
  if (scratch.length < max) scratch = new Uint8Array(Math.max(max, scratch.length * 2));
  const out = scratch;
  let n = 0;
  let state = 0;
  let accept = true;
  for (let i = start; i < end; i++) {
    const byte = bytes[i]!;
    let k = state * 16 + (byte >>> 4);
    let f = FLAGS[k]!;
    if (f & FLAG_FAIL) throw new ParseError('hpack', 'huffman', i, 'EOS symbol in string literal');
    if (f & FLAG_EMIT) out[n++] = SYM[k]!;
    state = NEXT[k]!;
    k = state * 16 + (byte & 0x0f);
    f = FLAGS[k]!;
    if (f & FLAG_FAIL) throw new ParseError('hpack', 'huffman', i, 'EOS symbol in string literal');
    if (f & FLAG_EMIT) out[n++] = SYM[k]!;
    state = NEXT[k]!;
    accept = (f & FLAG_ACCEPT) !== 0;
  }
  if (!accept)
    throw new ParseError('hpack', 'huffman', end, 'padding longer than 7 bits or not the EOS prefix');
  return latin1(out, 0, n);
}

/** Bytes to a string with one char per octet (HPACK strings are octets; RFC 7541 §5.2). */
export function latin1(bytes: Uint8Array, start: number, end: number): string {
  const len = end - start;
  if (len < 16) {
    let s = '';
    for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i]!);
    return s;
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, len).toString('latin1');
}
