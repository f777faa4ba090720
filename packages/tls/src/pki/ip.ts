/**
 * IP address text <-> octets for subjectAltName iPAddress entries (RFC 5280 §4.2.1.6).
 * Output is the canonical text form (RFC 5952 §4 for IPv6), matching how the rest of
 * stepwire spells addresses. The TLS layer does not depend on @stepwire/ip, hence this copy.
 */

/** Octets (4 or 16) to canonical text. */
export function formatIp(b: Uint8Array): string {
  if (b.length === 4) return Array.from(b).join('.');
  if (b.length !== 16) throw new RangeError(`IP address of ${b.length} octets`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  // RFC 5952 §4.2: compress the longest run (first if tied) of two or more zero groups.
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLen).join(':')}`;
}

/** Text to octets; undefined if the text is not an IPv4 or IPv6 address. */
export function tryParseIp(s: string): Uint8Array | undefined {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(s)) {
    const parts = s.split('.').map(Number);
    if (parts.some((p) => p > 255)) return undefined;
    if (s.split('.').some((p) => p.length > 1 && p.startsWith('0'))) return undefined;
    return Uint8Array.from(parts);
  }
  if (!s.includes(':')) return undefined;
  let text = s.startsWith('[') && s.endsWith(']') ? s.slice(1, -1) : s;
  // An embedded IPv4 tail (RFC 4291 §2.2 form 3).
  let tail: number[] = [];
  const v4 = /:(\d{1,3}(\.\d{1,3}){3})$/.exec(text);
  if (v4) {
    const t = tryParseIp(v4[1]!);
    if (!t) return undefined;
    tail = [(t[0]! << 8) | t[1]!, (t[2]! << 8) | t[3]!];
    text = `${text.slice(0, v4.index)}:0:0`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parse = (h: string): number[] | undefined => {
    if (h === '') return [];
    const gs = h.split(':');
    if (gs.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
    return gs.map((g) => Number.parseInt(g, 16));
  };
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  if (!head || !rest) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    if (head.length + rest.length > 7) return undefined;
    groups = [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest];
  } else {
    if (head.length !== 8) return undefined;
    groups = head;
  }
  if (tail.length) groups.splice(6, 2, ...tail);
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

export function parseIp(s: string): Uint8Array {
  const b = tryParseIp(s);
  if (!b) throw new RangeError(`not an IP address: ${s}`);
  return b;
}

/** Canonical text of an address given in any valid form, or undefined if it is not one. */
export function canonicalIp(s: string): string | undefined {
  const b = tryParseIp(s);
  return b && formatIp(b);
}
