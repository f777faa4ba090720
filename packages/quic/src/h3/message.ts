import type { Field } from '../qpack/decoder.ts';

/**
 * HTTP semantics in HTTP/3 field sections (RFC 9114 §4.2, §4.3): what makes a request or
 * response malformed (§4.1.2, a stream error H3_MESSAGE_ERROR). The rules are HTTP/2's
 * (RFC 9113 §8.2, §8.3) restated by RFC 9114, so the checks mirror packages/http's h2.
 */
export type H3SectionKind = 'request' | 'response' | 'informational' | 'trailers';

/** RFC 9114 §4.2: connection-specific fields MUST NOT appear. */
const CONNECTION_SPECIFIC = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
]);
const REQUEST_PSEUDO = new Set([':method', ':scheme', ':authority', ':path', ':protocol']);

/** Returns why a field section is malformed, or undefined (RFC 9114 §4.1.2). */
export function h3MalformedReason(
  fields: readonly Field[],
  kind: H3SectionKind,
  connectProtocol = false,
): string | undefined {
  let regularSeen = false;
  const pseudo = new Map<string, string>();
  for (const [name, value] of fields) {
    if (name.length === 0) return 'empty field name';
    // RFC 9114 §4.2: names are lowercase; RFC 9110 §5.1 tokens have no CTL, SP or ':' (after the first).
    for (let i = 0; i < name.length; i++) {
      const c = name.charCodeAt(i);
      if ((c >= 0x41 && c <= 0x5a) || c <= 0x20 || c >= 0x7f || (c === 0x3a && i > 0))
        return `invalid character in field name '${name}'`;
    }
    // RFC 9114 §10.3: values with NUL, CR or LF are malformed (request smuggling via HTTP/1.1).
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if (c === 0 || c === 0x0a || c === 0x0d) return `invalid character in the value of '${name}'`;
    }
    if (name.charCodeAt(0) === 0x3a) {
      // RFC 9114 §4.3: pseudo-header fields only in headers, before regular fields, once each.
      if (kind === 'trailers') return 'pseudo-header field in trailers';
      if (regularSeen) return `pseudo-header field ${name} after a regular field`;
      if (pseudo.has(name)) return `duplicate ${name}`;
      if (kind === 'request' ? !REQUEST_PSEUDO.has(name) : name !== ':status')
        return `pseudo-header field ${name} not allowed here`;
      pseudo.set(name, value);
      continue;
    }
    regularSeen = true;
    if (CONNECTION_SPECIFIC.has(name)) return `connection-specific field ${name}`;
    // RFC 9114 §4.2: TE may be present only with the value "trailers".
    if (name === 'te' && value !== 'trailers') return 'TE other than "trailers"';
  }
  if (kind === 'request') {
    const method = pseudo.get(':method');
    if (method === undefined) return 'missing :method';
    const protocol = pseudo.get(':protocol');
    if (protocol !== undefined && (!connectProtocol || method !== 'CONNECT'))
      return ':protocol without extended CONNECT (RFC 9220 §3)';
    if (method === 'CONNECT' && protocol === undefined) {
      // RFC 9114 §4.4: CONNECT carries :authority only.
      if (pseudo.has(':scheme') || pseudo.has(':path')) return 'CONNECT with :scheme or :path';
      if (!pseudo.has(':authority')) return 'CONNECT without :authority';
      return undefined;
    }
    // RFC 9114 §4.3.1: :method, :scheme and a non-empty :path are required.
    if (!pseudo.has(':scheme')) return 'missing :scheme';
    const path = pseudo.get(':path');
    if (path === undefined || path === '') return 'missing or empty :path';
    // §4.3.1: http/https need an authority, in :authority or Host.
    const scheme = pseudo.get(':scheme');
    if (
      (scheme === 'http' || scheme === 'https') &&
      !pseudo.has(':authority') &&
      !fields.some(([n]) => n === 'host')
    )
      return 'missing :authority and Host';
  } else if (kind === 'response' || kind === 'informational') {
    const status = pseudo.get(':status');
    if (status === undefined || !/^[1-9][0-9][0-9]$/.test(status)) return 'missing or invalid :status';
  }
  return undefined;
}

/** The numeric :status of a response section, 0 when absent. */
export function h3StatusOf(fields: readonly Field[]): number {
  for (const [n, v] of fields) if (n === ':status') return Number(v);
  return 0;
}

/** content-length as a number; NaN when malformed or when repeated values differ (RFC 9110 §8.6). */
export function h3ContentLengthOf(fields: readonly Field[]): number | undefined {
  let out: number | undefined;
  for (const [n, v] of fields) {
    if (n !== 'content-length') continue;
    for (const part of v.split(',')) {
      const t = part.trim();
      if (!/^[0-9]+$/.test(t)) return Number.NaN;
      const k = Number(t);
      if (out !== undefined && out !== k) return Number.NaN;
      out = k;
    }
  }
  return out;
}

/** The size a field section counts against SETTINGS_MAX_FIELD_SECTION_SIZE (RFC 9114 §4.2.2). */
export function fieldSectionSize(fields: readonly Field[]): number {
  let n = 0;
  for (const [name, value] of fields) n += name.length + value.length + 32;
  return n;
}

/**
 * The Alt-Svc field value that advertises HTTP/3 (RFC 7838 §3, RFC 9114 §3.1.1):
 * `h3=":443"; ma=86400`. `host` is empty for the same host as the origin.
 */
export function altSvcH3(
  opts: { port?: number; maxAge?: number; host?: string; persist?: boolean } = {},
): string {
  const port = opts.port ?? 443;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`port ${port}`);
  const host = opts.host ?? '';
  // RFC 7838 §3: alt-authority is a quoted-string: '"' and '\' need escaping.
  const authority = `${host.replace(/["\\]/g, (c) => `\\${c}`)}:${port}`;
  let v = `h3="${authority}"`;
  v += `; ma=${opts.maxAge ?? 86400}`;
  if (opts.persist) v += '; persist=1';
  return v;
}
