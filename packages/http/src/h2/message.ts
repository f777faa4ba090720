/**
 * HTTP semantics carried in HTTP/2 header sections (RFC 9113 §8): the checks that make a
 * request or response malformed (§8.1.1, a stream error PROTOCOL_ERROR), and helpers to
 * turn header lists into node:http2-style objects.
 */
import type { HeaderField } from '../hpack/table.ts';

export type HeaderKind = 'request' | 'response' | 'informational' | 'trailers' | 'push-request';

/** RFC 9113 §8.2.2: connection-specific fields MUST NOT appear in HTTP/2. */
const CONNECTION_SPECIFIC = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
]);
const REQUEST_PSEUDO = new Set([':method', ':scheme', ':authority', ':path', ':protocol']);

/** Returns the reason a header section is malformed, or undefined (RFC 9113 §8.1.1). */
export function malformedReason(
  fields: readonly HeaderField[],
  kind: HeaderKind,
  connectProtocol: boolean,
): string | undefined {
  let regularSeen = false;
  const pseudo = new Map<string, string>();
  for (const { name, value } of fields) {
    // RFC 9113 §8.2.1: names are lowercase, without CTLs, SP, or separators we cannot carry.
    for (let i = 0; i < name.length; i++) {
      const c = name.charCodeAt(i);
      if ((c >= 0x41 && c <= 0x5a) || c <= 0x20 || c >= 0x7f || (c === 0x3a && i > 0))
        return `invalid character in field name '${name}'`;
    }
    if (name.length === 0) return 'empty field name';
    // RFC 9113 §8.2.1: values MUST NOT contain NUL, CR, LF nor start or end with whitespace.
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if (c === 0 || c === 0x0a || c === 0x0d) return `invalid character in the value of '${name}'`;
    }
    if (value.length > 0) {
      const f = value.charCodeAt(0);
      const l = value.charCodeAt(value.length - 1);
      if (f === 0x20 || f === 0x09 || l === 0x20 || l === 0x09)
        return `whitespace around the value of '${name}'`;
    }
    if (name.charCodeAt(0) === 0x3a) {
      // RFC 9113 §8.3: pseudo-header fields come first, appear once, and only defined ones.
      if (kind === 'trailers') return 'pseudo-header field in trailers';
      if (regularSeen) return `pseudo-header field ${name} after a regular field`;
      if (pseudo.has(name)) return `duplicate ${name}`;
      const isRequest = kind === 'request' || kind === 'push-request';
      if (isRequest ? !REQUEST_PSEUDO.has(name) : name !== ':status')
        return `pseudo-header field ${name} not allowed here`;
      pseudo.set(name, value);
      continue;
    }
    regularSeen = true;
    if (CONNECTION_SPECIFIC.has(name)) return `connection-specific field ${name}`;
    // RFC 9113 §8.2.2: TE may only carry "trailers".
    if (name === 'te' && value !== 'trailers') return 'TE other than "trailers"';
  }
  if (kind === 'request' || kind === 'push-request') {
    const method = pseudo.get(':method');
    if (method === undefined) return 'missing :method';
    const protocol = pseudo.get(':protocol');
    if (protocol !== undefined && (!connectProtocol || method !== 'CONNECT'))
      return ':protocol without extended CONNECT (RFC 8441 §4)';
    if (method === 'CONNECT' && protocol === undefined) {
      // RFC 9113 §8.5: CONNECT has :authority only.
      if (pseudo.has(':scheme') || pseudo.has(':path')) return 'CONNECT with :scheme or :path';
      if (!pseudo.has(':authority')) return 'CONNECT without :authority';
      return undefined;
    }
    // RFC 9113 §8.3.1: :method, :scheme and a non-empty :path are required.
    if (!pseudo.has(':scheme')) return 'missing :scheme';
    const path = pseudo.get(':path');
    if (path === undefined || path === '') return 'missing or empty :path';
    if (kind === 'push-request' && method !== 'GET' && method !== 'HEAD')
      return 'promised request is not safe and cacheable (RFC 9113 §8.4)';
  } else if (kind === 'response' || kind === 'informational') {
    const status = pseudo.get(':status');
    if (status === undefined || !/^[1-9][0-9][0-9]$/.test(status)) return 'missing or invalid :status';
  }
  return undefined;
}

/** The kind of a header section for a response: 1xx is informational (RFC 9113 §8.1). */
export function statusOf(fields: readonly HeaderField[]): number {
  for (const f of fields) if (f.name === ':status') return Number(f.value);
  return 0;
}

export function contentLengthOf(fields: readonly HeaderField[]): number | undefined {
  for (const f of fields) {
    if (f.name === 'content-length') {
      if (!/^[0-9]+$/.test(f.value)) return Number.NaN;
      return Number(f.value);
    }
  }
  return undefined;
}

/** node:http2's header object: names to strings, repeated fields as arrays (set-cookie) or joined. */
export type OutgoingHeaders = Record<string, string | number | readonly string[] | undefined>;
export type IncomingHeaders = Record<string, string | string[] | undefined>;

export function toHeaderObject(fields: readonly HeaderField[]): IncomingHeaders {
  const out: IncomingHeaders = {};
  for (const { name, value } of fields) {
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (name === 'set-cookie') out[name] = Array.isArray(prev) ? [...prev, value] : [prev, value];
    else if (name === 'cookie') out[name] = `${prev}; ${value}`;
    else out[name] = Array.isArray(prev) ? [...prev, value] : `${prev}, ${value}`;
  }
  return out;
}

/** Pseudo-header fields first (RFC 9113 §8.3), names lowercased; `sensitive` names never indexed. */
export function toHeaderList(headers: OutgoingHeaders, sensitive: readonly string[] = []): HeaderField[] {
  const pseudo: HeaderField[] = [];
  const regular: HeaderField[] = [];
  const never = new Set(sensitive.map((s) => s.toLowerCase()));
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue;
    const name = k.toLowerCase();
    const list = name.startsWith(':') ? pseudo : regular;
    const values = Array.isArray(v) ? v : [String(v)];
    for (const value of values) {
      // HPACK carries octets and we hold them one char each (latin1): a char above U+00FF
      // would be silently cut, so it is refused, as node:http2 refuses invalid characters.
      const v = String(value);
      if (/[^\x00-\xff]/.test(v) || /[^\x00-\xff]/.test(name))
        throw Object.assign(
          new TypeError(`Invalid character in header "${name}" (octets only; encode non-Latin-1 text first)`),
          {
            code: 'ERR_INVALID_CHAR',
          },
        );
      const f: HeaderField = { name, value: v };
      if (never.has(name)) f.sensitive = true;
      list.push(f);
    }
  }
  return [...pseudo, ...regular];
}
