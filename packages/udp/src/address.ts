/**
 * Address text helpers the UDP layer needs: which family a string is, its 16-bit
 * checksum contribution for the pseudo-header, and canonical text for user input.
 *
 * Kept local to udp while packages/ip has no address module; the functions are small and
 * total (they return undefined instead of throwing on text that is not an address).
 */

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** The four bytes of a dotted quad, or undefined when it is not one. */
export function parseIpv4(text: string): Uint8Array | undefined {
  const m = V4.exec(text);
  if (!m) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = m[i + 1]!;
    // A leading zero is ambiguous (octal in inet_aton); canonical text has none.
    if (part.length > 1 && part[0] === '0') return undefined;
    const v = Number(part);
    if (v > 255) return undefined;
    out[i] = v;
  }
  return out;
}

/** The sixteen bytes of IPv6 text (RFC 4291 §2.2, including a trailing dotted quad), or undefined. */
export function parseIpv6(text: string): Uint8Array | undefined {
  if (text.length < 2 || text.length > 45) return undefined;
  const out = new Uint8Array(16);
  let head = text;
  let tail = '';
  const dbl = text.indexOf('::');
  if (dbl >= 0) {
    if (text.indexOf('::', dbl + 1) >= 0) return undefined;
    head = text.slice(0, dbl);
    tail = text.slice(dbl + 2);
  }
  const parseGroups = (s: string, allowV4Tail: boolean): number[] | undefined => {
    if (s === '') return [];
    const parts = s.split(':');
    const words: number[] = [];
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (allowV4Tail && i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIpv4(p);
        if (!v4) return undefined;
        words.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
      words.push(Number.parseInt(p, 16));
    }
    return words;
  };
  const h = parseGroups(head, dbl < 0);
  const t = parseGroups(tail, true);
  if (!h || !t) return undefined;
  if (dbl < 0) {
    if (h.length !== 8) return undefined;
  } else if (h.length + t.length > 7) {
    return undefined;
  }
  const words = new Array<number>(8).fill(0);
  for (let i = 0; i < h.length; i++) words[i] = h[i]!;
  for (let i = 0; i < t.length; i++) words[8 - t.length + i] = t[i]!;
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i]! >> 8;
    out[2 * i + 1] = words[i]! & 0xff;
  }
  return out;
}

/** RFC 5952 text for sixteen bytes: lower case, no leading zeros, longest zero run (≥2) as '::'. */
export function formatIpv6(b: Uint8Array): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((b[2 * i]! << 8) | b[2 * i + 1]!);
  let bestAt = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    // RFC 5952 §4.2.3: the first of equally long runs; §4.2.2: never a single group.
    if (j - i > bestLen && j - i >= 2) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]): string => ws.map((x) => x.toString(16)).join(':');
  if (bestAt < 0) return hex(w);
  return `${hex(w.slice(0, bestAt))}::${hex(w.slice(bestAt + bestLen))}`;
}

export type AddressFamily = 'IPv4' | 'IPv6';

/** Family and canonical text of an address literal, or undefined when the text is not one. */
export function canonicalAddress(text: string): { family: AddressFamily; address: string } | undefined {
  const v4 = parseIpv4(text);
  if (v4) return { family: 'IPv4', address: `${v4[0]}.${v4[1]}.${v4[2]}.${v4[3]}` };
  const v6 = parseIpv6(text);
  if (v6) return { family: 'IPv6', address: formatIpv6(v6) };
  return undefined;
}

/** Multicast or IPv4 limited broadcast: destinations that never get an ICMP error (RFC 1122 §4.1.3.1). */
export function isMulticastOrBroadcast(address: string): boolean {
  if (address.includes(':')) return address.startsWith('ff');
  if (address === '255.255.255.255') return true;
  const first = Number(address.slice(0, address.indexOf('.')));
  return first >= 224 && first <= 239;
}

const sumCache = new Map<string, number>();
const SUM_CACHE_MAX = 4096;

/**
 * The unfolded one's-complement sum of an address's 16-bit words, as it enters a
 * pseudo-header (RFC 768; RFC 8200 §8.1). Cached because every datagram needs two and
 * parsing text per packet would dominate a small datagram's cost. Throws TypeError for
 * text that is not an address: pseudo-headers are built by the stack, never from the wire.
 */
export function addressSum(address: string): number {
  const hit = sumCache.get(address);
  if (hit !== undefined) return hit;
  const b = address.includes(':') ? parseIpv6(address) : parseIpv4(address);
  if (!b) throw new TypeError(`not an IP address: ${JSON.stringify(address)}`);
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (sumCache.size >= SUM_CACHE_MAX) sumCache.clear();
  sumCache.set(address, s);
  return s;
}
