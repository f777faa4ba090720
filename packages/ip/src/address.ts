import { ParseError } from '@stepwire/wire';
import type { IpVersion } from './types.ts';

/**
 * IP address text <-> bytes. Every parser canonicalizes, so two spellings of one address
 * ('FD00:0::1', 'fd00::1') become the same string and compare with ===.
 *
 * Text errors are ParseError with layer 'address' and the character offset.
 */

const LAYER = 'address';

function fail(field: string, at: number, reason: string): never {
  throw new ParseError(LAYER, field, at, reason);
}

/** Dotted-decimal IPv4 (RFC 791 §3.2 text convention). Leading zeros are refused: '010' is octal to some parsers. */
export function parseIpv4(text: string): Uint8Array {
  const out = new Uint8Array(4);
  parseIpv4Into(text, out, 0, 0);
  return out;
}

function parseIpv4Into(text: string, out: Uint8Array, at: number, base: number): void {
  const parts = text.split('.');
  if (parts.length !== 4) fail('ipv4', base, `expected 4 dotted parts, got ${parts.length}`);
  let pos = base;
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) fail('ipv4', pos, `bad octet '${p}'`);
    const v = Number(p);
    if (v > 255) fail('ipv4', pos, `octet ${v} > 255`);
    out[at + i] = v;
    pos += p.length + 1;
  }
}

/** RFC 4291 §2.2 text forms: full, '::'-compressed, and a trailing dotted IPv4 part. No zone ids. */
export function parseIpv6(text: string): Uint8Array {
  const out = new Uint8Array(16);
  if (text.length < 2 || text.length > 45) fail('ipv6', 0, `bad length ${text.length}`);
  const dbl = text.indexOf('::');
  if (dbl !== -1 && text.indexOf('::', dbl + 1) !== -1) fail('ipv6', dbl, "more than one '::'");
  const headText = dbl === -1 ? text : text.slice(0, dbl);
  const tailText = dbl === -1 ? '' : text.slice(dbl + 2);
  const head = headText === '' ? [] : headText.split(':');
  const tail = tailText === '' ? [] : tailText.split(':');
  const words: number[] = [];
  const tailWords: number[] = [];
  const parseGroups = (groups: string[], into: number[], base: number, last: boolean): void => {
    let pos = base;
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (last && i === groups.length - 1 && g.includes('.')) {
        const v4 = new Uint8Array(4);
        parseIpv4Into(g, v4, 0, pos);
        into.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) fail('ipv6', pos, `bad group '${g}'`);
        into.push(Number.parseInt(g, 16));
      }
      pos += g.length + 1;
    }
  };
  parseGroups(head, words, 0, dbl === -1);
  parseGroups(tail, tailWords, dbl + 2, true);
  if (dbl === -1) {
    if (words.length !== 8) fail('ipv6', 0, `expected 8 groups, got ${words.length}`);
  } else {
    const n = words.length + tailWords.length;
    if (n > 7) fail('ipv6', dbl, `'::' with ${n} other groups`);
    while (words.length + tailWords.length < 8) words.push(0);
    words.push(...tailWords);
  }
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i]! >> 8;
    out[2 * i + 1] = words[i]! & 0xff;
  }
  return out;
}

/** Parse either family, telling them apart by ':'. */
export function parseIp(text: string): Uint8Array {
  return text.includes(':') ? parseIpv6(text) : parseIpv4(text);
}

export function tryParseIp(text: string): Uint8Array | undefined {
  try {
    return parseIp(text);
  } catch (e) {
    if (e instanceof ParseError) return undefined;
    throw e;
  }
}

// Formatting caches: a direct-mapped table keyed by a hash of the bytes, so that the
// receive path turns the same few peer addresses into strings without allocating. Each
// entry also keeps the address's bytes in an array of their own, which the receive path
// hands up beside the text (ipv4BytesAt, ipv6BytesAt): no allocation per packet, and no
// view that would pin the packet's buffer. An entry evicted later leaves the arrays it
// handed out as they were: they are never written after creation.
const V4_CACHE_SIZE = 256;
const v4CacheKey = new Int32Array(V4_CACHE_SIZE).fill(-1);
const v4CacheKeyValid = new Uint8Array(V4_CACHE_SIZE);
const v4CacheText: string[] = new Array(V4_CACHE_SIZE).fill('');
const v4CacheArray: (Uint8Array | undefined)[] = new Array(V4_CACHE_SIZE).fill(undefined);

/** The cache slot holding the IPv4 address at b[offset..offset+4], filled if it was not. */
function v4Slot(b: Uint8Array, offset: number): number {
  const a0 = b[offset]!;
  const a1 = b[offset + 1]!;
  const a2 = b[offset + 2]!;
  const a3 = b[offset + 3]!;
  const key = (a0 << 24) | (a1 << 16) | (a2 << 8) | a3 | 0;
  const slot = (key ^ (key >>> 8) ^ (key >>> 16) ^ (key >>> 24)) & (V4_CACHE_SIZE - 1);
  if (v4CacheKeyValid[slot] === 1 && v4CacheKey[slot] === key) return slot;
  v4CacheKey[slot] = key;
  v4CacheKeyValid[slot] = 1;
  v4CacheText[slot] = `${a0}.${a1}.${a2}.${a3}`;
  v4CacheArray[slot] = undefined;
  return slot;
}

export function formatIpv4(b: Uint8Array, offset = 0): string {
  return v4CacheText[v4Slot(b, offset)]!;
}

/**
 * The 4 bytes at b[offset..offset+4] as an array shared by everyone who asks for this
 * address (from the formatting cache): the receive path's IpDelivery.srcBytes/dstBytes.
 * Never mutate it.
 */
export function ipv4BytesAt(b: Uint8Array, offset = 0): Uint8Array {
  const slot = v4Slot(b, offset);
  let a = v4CacheArray[slot];
  if (a === undefined) {
    a = b.slice(offset, offset + 4);
    v4CacheArray[slot] = a;
  }
  return a;
}

const V6_CACHE_SIZE = 256;
const v6CacheBytes = new Uint8Array(V6_CACHE_SIZE * 16);
const v6CacheText: (string | undefined)[] = new Array(V6_CACHE_SIZE).fill(undefined);
const v6CacheArray: (Uint8Array | undefined)[] = new Array(V6_CACHE_SIZE).fill(undefined);

/** The cache slot holding the IPv6 address at b[offset..offset+16], filled if it was not. */
function v6Slot(b: Uint8Array, offset: number): number {
  let h = 0;
  for (let i = 0; i < 16; i++) h = (Math.imul(h, 31) + b[offset + i]!) | 0;
  const slot = (h ^ (h >>> 8) ^ (h >>> 16)) & (V6_CACHE_SIZE - 1);
  if (v6CacheText[slot] !== undefined) {
    let same = true;
    const base = slot * 16;
    for (let i = 0; i < 16; i++) {
      if (v6CacheBytes[base + i] !== b[offset + i]) {
        same = false;
        break;
      }
    }
    if (same) return slot;
  }
  v6CacheBytes.set(b.subarray(offset, offset + 16), slot * 16);
  v6CacheText[slot] = formatIpv6Uncached(b, offset);
  v6CacheArray[slot] = undefined;
  return slot;
}

/** RFC 5952 §4: lowercase, no leading zeros, the longest run (>= 2) of zero groups as '::', first on a tie. */
export function formatIpv6(b: Uint8Array, offset = 0): string {
  return v6CacheText[v6Slot(b, offset)]!;
}

/** As ipv4BytesAt for the 16 bytes of an IPv6 address: shared, never mutate it. */
export function ipv6BytesAt(b: Uint8Array, offset = 0): Uint8Array {
  const slot = v6Slot(b, offset);
  let a = v6CacheArray[slot];
  if (a === undefined) {
    a = b.slice(offset, offset + 16);
    v6CacheArray[slot] = a;
  }
  return a;
}

function formatIpv6Uncached(b: Uint8Array, offset: number): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((b[offset + 2 * i]! << 8) | b[offset + 2 * i + 1]!);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  // RFC 5952 §4.2.2: a single zero group is never shortened to '::'.
  if (bestLen < 2) return w.map((x) => x.toString(16)).join(':');
  const left = w.slice(0, bestStart).map((x) => x.toString(16));
  const right = w.slice(bestStart + bestLen).map((x) => x.toString(16));
  return `${left.join(':')}::${right.join(':')}`;
}

/** Bytes to text by length: 4 bytes IPv4, 16 bytes IPv6. */
export function formatIp(b: Uint8Array): string {
  if (b.length === 4) return formatIpv4(b);
  if (b.length === 16) return formatIpv6(b);
  throw new RangeError(`an IP address has 4 or 16 bytes, not ${b.length}`);
}

/** The canonical spelling of an address; throws ParseError on bad text. */
export function canonicalIp(text: string): string {
  return formatIp(parseIp(text));
}

/** 4 or 6 for well-formed address text, undefined otherwise. */
export function ipVersionOf(text: string): IpVersion | undefined {
  const b = cachedAddressBytes(text);
  return b === undefined ? undefined : b.length === 4 ? 4 : 6;
}

const parseCache = new Map<string, Uint8Array | null>();
const PARSE_CACHE_MAX = 4096;

/**
 * Parsed bytes of an address string, from a bounded cache (the send path parses the same
 * few destination strings again and again). The returned array is shared: never mutate it.
 * Undefined for text that is not an address.
 */
export function cachedAddressBytes(text: string): Uint8Array | undefined {
  const hit = parseCache.get(text);
  if (hit !== undefined) return hit ?? undefined;
  const b = tryParseIp(text);
  if (parseCache.size >= PARSE_CACHE_MAX) parseCache.clear();
  parseCache.set(text, b ?? null);
  return b;
}

/** An address prefix 'a/len'; `network` has the host bits cleared and is canonical text. */
export interface Prefix {
  version: IpVersion;
  /** Network address bytes (host bits zero). */
  bytes: Uint8Array;
  length: number;
  /** Canonical 'network/len'. */
  text: string;
  /** The address as written before the host bits were cleared (an interface address). */
  address: string;
  /** `address` as bytes (4 or 16), so a sender from this address never parses it again. */
  addressBytes: Uint8Array;
}

/** Parse 'addr/len' (len optional: a host prefix /32 or /128). */
export function parsePrefix(text: string): Prefix {
  const slash = text.indexOf('/');
  const addrText = slash === -1 ? text : text.slice(0, slash);
  const bytes = parseIp(addrText);
  const max = bytes.length * 8;
  let length = max;
  if (slash !== -1) {
    const lenText = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText)) fail('prefix', slash + 1, `bad prefix length '${lenText}'`);
    length = Number(lenText);
    if (length > max) fail('prefix', slash + 1, `prefix length ${length} > ${max}`);
  }
  const address = formatIp(bytes);
  const net = maskBytes(bytes, length);
  return {
    version: bytes.length === 4 ? 4 : 6,
    bytes: net,
    length,
    text: `${formatIp(net)}/${length}`,
    address,
    addressBytes: bytes,
  };
}

function maskBytes(b: Uint8Array, length: number): Uint8Array {
  const out = b.slice();
  for (let i = 0; i < out.length; i++) {
    const bitsHere = Math.max(0, Math.min(8, length - i * 8));
    out[i] = out[i]! & ((0xff << (8 - bitsHere)) & 0xff);
  }
  return out;
}

/** True when addr (bytes) lies inside the prefix. Families must match. */
export function prefixContains(p: Prefix, addr: Uint8Array): boolean {
  if (addr.length !== p.bytes.length) return false;
  const full = p.length >> 3;
  for (let i = 0; i < full; i++) if (addr[i] !== p.bytes[i]) return false;
  const rem = p.length & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return (addr[full]! & mask) === p.bytes[full];
}

/** The directed-broadcast address of an IPv4 prefix (all host bits set), RFC 919 / RFC 1122 §3.2.1.3. */
export function ipv4BroadcastOf(p: Prefix): string | undefined {
  if (p.version !== 4 || p.length >= 31) return undefined;
  const out = p.bytes.slice();
  for (let bit = p.length; bit < 32; bit++) out[bit >> 3] = out[bit >> 3]! | (0x80 >> (bit & 7));
  return formatIpv4(out);
}

/** 224.0.0.0/4 (RFC 5771). */
export const isIpv4Multicast = (b: Uint8Array): boolean => b.length === 4 && (b[0]! & 0xf0) === 0xe0;
/** 255.255.255.255 (RFC 919). */
export const isIpv4LimitedBroadcast = (b: Uint8Array): boolean =>
  b.length === 4 && b[0] === 255 && b[1] === 255 && b[2] === 255 && b[3] === 255;
/** ff00::/8 (RFC 4291 §2.7). */
export const isIpv6Multicast = (b: Uint8Array): boolean => b.length === 16 && b[0] === 0xff;
export const isUnspecified = (b: Uint8Array): boolean => {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
};
