/**
 * QPACK's string literals use HPACK's Huffman code unchanged (RFC 9204 §4.1.2, RFC 7541
 * Appendix B), so the table and the decoder live once, in @stepwire/http's hpack module. This
 * adapter gives QPACK's codecs the octet-string view they work in and names the failures the
 * RFC lists instead of throwing.
 */
import { hpack } from '@stepwire/http';
import { ParseError } from '@stepwire/wire';

export const { HUFFMAN_CODE_LENGTHS, HUFFMAN_CODES, EOS } = hpack;

const latin1 = (s: Uint8Array): string => {
  let out = '';
  for (let i = 0; i < s.length; i++) out += String.fromCharCode(s[i]!);
  return out;
};

export function huffmanEncodedLength(s: Uint8Array): number {
  return hpack.huffmanEncodedLength(latin1(s));
}

export function huffmanEncode(s: Uint8Array): Uint8Array {
  return hpack.huffmanEncode(latin1(s));
}

/** Why a Huffman string did not decode (RFC 7541 §5.2). */
export type HuffmanError = 'EOS in string' | 'padding longer than 7 bits' | 'padding not all ones';

/** Decodes, or reports the error the RFC names: an EOS symbol, or bad padding. */
export function huffmanDecode(data: Uint8Array): Uint8Array | HuffmanError {
  try {
    const s = hpack.huffmanDecode(data);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
    if (/EOS symbol/.test(e.reason)) return 'EOS in string';
    return padding(data);
  }
}

/** HPACK's decoder reports both padding faults as one; tell them apart as QPACK's callers do. */
function padding(data: Uint8Array): HuffmanError {
  // The trailing bits after the last whole symbol: more than 7 of them, or not all ones.
  const last = data[data.length - 1] ?? 0;
  return last === 0xff ? 'padding longer than 7 bits' : 'padding not all ones';
}
