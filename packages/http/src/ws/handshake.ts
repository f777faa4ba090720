import { createHash } from 'node:crypto';
import { ParseError } from '@stepwire/wire';

/**
 * The WebSocket opening handshake (RFC 6455 §4) as pure functions over header lists, so
 * the same rules serve node:http's 'upgrade' event, our own HTTP/1.1 server, and a client
 * that writes its request onto any byte stream.
 */

/** Field lines in wire order; names as sent (compare them case-insensitively). */
export type HeaderList = readonly (readonly [string, string])[];

/** RFC 6455 §1.3: the GUID appended to the key before hashing. */
export const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** RFC 6455 §4.1: the only version this document defines. */
export const WEBSOCKET_VERSION = '13';

const LAYER = 'websocket';

/** node:http's rawHeaders (name, value, name, value, ...) as a header list. */
export function fromRawHeaders(raw: readonly string[]): HeaderList {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i] as string, raw[i + 1] as string]);
  return out;
}

/** Every value of a field, in order (RFC 9110 §5.3: repeated lines form one list). */
export function headerValues(headers: HeaderList, name: string): string[] {
  const lower = name.toLowerCase();
  const out: string[] = [];
  for (const [n, v] of headers) if (n.toLowerCase() === lower) out.push(v);
  return out;
}

/** The comma-separated elements of every line of a list-valued field, trimmed, empties dropped. */
export function headerTokens(headers: HeaderList, name: string): string[] {
  return headerValues(headers, name)
    .flatMap((v) => v.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function hasToken(headers: HeaderList, name: string, token: string): boolean {
  return headerTokens(headers, name).some((t) => t.toLowerCase() === token);
}

/** RFC 6455 §4.2.2 step 5.4: base64(SHA-1(key + GUID)). */
export function acceptKey(key: string): string {
  return createHash('sha1')
    .update(key + WEBSOCKET_GUID)
    .digest('base64');
}

/** RFC 6455 §4.1: the key is 16 random bytes, base64-encoded. */
export function generateKey(random16: Uint8Array): string {
  if (random16.length !== 16) throw new RangeError('Sec-WebSocket-Key is 16 bytes (RFC 6455 §4.1)');
  return Buffer.from(random16).toString('base64');
}

/** A key is valid when it is base64 that decodes to exactly 16 bytes (RFC 6455 §4.2.1 item 5). */
export function isValidKey(key: string): boolean {
  return /^[A-Za-z0-9+/]{22}==$/.test(key);
}

// --- Sec-WebSocket-Extensions (RFC 6455 §9.1) -----------------------------------------

export interface ExtensionOffer {
  name: string;
  /** Parameters in order; `true` for a parameter without a value. */
  params: [string, string | true][];
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Parse the extension list (RFC 6455 §9.1):
 *   extension-list = 1#extension
 *   extension = extension-token *( ";" extension-param )
 *   extension-param = token [ "=" (token | quoted-string) ]
 * A quoted-string value must itself be a token once unquoted (§9.1).
 */
export function parseExtensions(values: readonly string[]): ExtensionOffer[] {
  const out: ExtensionOffer[] = [];
  let offset = 0;
  for (const value of values) {
    let i = 0;
    const s = value;
    const skipWs = () => {
      while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
    };
    const token = (what: string): string => {
      const start = i;
      while (i < s.length && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(s[i] as string)) i++;
      if (i === start) throw new ParseError(LAYER, what, offset + i, 'expected a token');
      return s.slice(start, i);
    };
    for (;;) {
      skipWs();
      if (i >= s.length) break;
      if (s[i] === ',') {
        i++;
        continue;
      }
      const name = token('extension-token');
      const params: [string, string | true][] = [];
      skipWs();
      while (s[i] === ';') {
        i++;
        skipWs();
        const pname = token('extension-param');
        skipWs();
        let pvalue: string | true = true;
        if (s[i] === '=') {
          i++;
          skipWs();
          if (s[i] === '"') {
            i++;
            let v = '';
            while (i < s.length && s[i] !== '"') {
              if (s[i] === '\\') i++;
              v += s[i] ?? '';
              i++;
            }
            if (s[i] !== '"') throw new ParseError(LAYER, 'quoted-string', offset + i, 'unterminated');
            i++;
            if (!TOKEN.test(v))
              throw new ParseError(LAYER, 'extension-param', offset + i, 'quoted value is not a token');
            pvalue = v;
          } else {
            pvalue = token('extension-param value');
          }
          skipWs();
        }
        params.push([pname, pvalue]);
      }
      out.push({ name, params });
      skipWs();
      if (i < s.length && s[i] !== ',')
        throw new ParseError(LAYER, 'extension-list', offset + i, `unexpected '${s[i]}'`);
    }
    offset += value.length + 1;
  }
  return out;
}

export function formatExtensions(list: readonly ExtensionOffer[]): string {
  return list
    .map((e) => [e.name, ...e.params.map(([n, v]) => (v === true ? n : `${n}=${v}`))].join('; '))
    .join(', ');
}

// --- The client's request (RFC 6455 §4.1) ----------------------------------------------

export interface ClientHandshakeOptions {
  /** Host header value: host[:port] (RFC 6455 §4.1 item 4). */
  host: string;
  /** Request target: path and query (RFC 6455 §3 resource name). */
  path: string;
  key: string;
  protocols?: readonly string[];
  origin?: string;
  /** Our extension offer, already formatted. */
  extensions?: string;
  headers?: HeaderList;
}

/** The request line and field lines of the opening handshake, as bytes ready to write. */
export function encodeClientHandshake(o: ClientHandshakeOptions): Uint8Array {
  const lines = [
    `GET ${o.path} HTTP/1.1`,
    `Host: ${o.host}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${o.key}`,
    `Sec-WebSocket-Version: ${WEBSOCKET_VERSION}`,
  ];
  if (o.origin !== undefined) lines.push(`Origin: ${o.origin}`);
  if (o.protocols && o.protocols.length > 0) lines.push(`Sec-WebSocket-Protocol: ${o.protocols.join(', ')}`);
  if (o.extensions) lines.push(`Sec-WebSocket-Extensions: ${o.extensions}`);
  for (const [n, v] of o.headers ?? []) {
    if (/[\r\n]/.test(n + v)) throw new RangeError(`header ${n} contains CR or LF`);
    lines.push(`${n}: ${v}`);
  }
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

// --- The server's checks and answer (RFC 6455 §4.2) -----------------------------------

export type ClientHandshake =
  | {
      ok: true;
      key: string;
      /** Sec-WebSocket-Protocol values, in the client's order of preference. */
      protocols: string[];
      origin: string | undefined;
      extensions: ExtensionOffer[];
    }
  | {
      ok: false;
      /** 400, or 426 with Sec-WebSocket-Version for an unsupported version (RFC 6455 §4.4). */
      status: 400 | 405 | 426;
      reason: string;
      headers: HeaderList;
    };

/** Check a client's opening handshake (RFC 6455 §4.2.1, items 1-6). */
export function checkClientHandshake(
  method: string,
  httpVersion: string,
  headers: HeaderList,
): ClientHandshake {
  const fail = (status: 400 | 405 | 426, reason: string, extra: HeaderList = []): ClientHandshake => ({
    ok: false,
    status,
    reason,
    headers: extra,
  });
  // Item 1: "An HTTP/1.1 or higher GET request".
  if (method !== 'GET') return fail(405, `method ${method} is not GET`, [['Allow', 'GET']]);
  const [major = 0, minor = 0] = httpVersion.split('.').map(Number);
  if (major < 1 || (major === 1 && minor < 1)) return fail(400, `HTTP/${httpVersion} is below 1.1`);
  // Item 2: Host.
  if (headerValues(headers, 'host').length !== 1) return fail(400, 'Host missing or repeated');
  // Items 3-4: Upgrade containing "websocket", Connection containing "Upgrade".
  if (!hasToken(headers, 'upgrade', 'websocket')) return fail(400, 'Upgrade does not name websocket');
  if (!hasToken(headers, 'connection', 'upgrade')) return fail(400, 'Connection does not name Upgrade');
  // Item 6 before 5, so a client speaking another version learns ours (RFC 6455 §4.4).
  const versions = headerValues(headers, 'sec-websocket-version');
  if (versions.length !== 1 || versions[0]?.trim() !== WEBSOCKET_VERSION) {
    return fail(426, `Sec-WebSocket-Version ${versions.join(',') || 'missing'}`, [
      ['Sec-WebSocket-Version', WEBSOCKET_VERSION],
    ]);
  }
  // Item 5: a base64 key of 16 bytes, exactly once.
  const keys = headerValues(headers, 'sec-websocket-key');
  const key = keys[0]?.trim();
  if (keys.length !== 1 || key === undefined || !isValidKey(key)) return fail(400, 'bad Sec-WebSocket-Key');
  let extensions: ExtensionOffer[];
  try {
    extensions = parseExtensions(headerValues(headers, 'sec-websocket-extensions'));
  } catch (e) {
    if (e instanceof ParseError) return fail(400, `Sec-WebSocket-Extensions: ${e.message}`);
    throw e;
  }
  const protocols = headerTokens(headers, 'sec-websocket-protocol');
  if (protocols.some((p) => !TOKEN.test(p))) return fail(400, 'Sec-WebSocket-Protocol is not a token list');
  const origins = headerValues(headers, 'origin');
  return { ok: true, key, protocols, origin: origins[0], extensions };
}

/** The 101 answer's field lines (RFC 6455 §4.2.2 step 5). */
export function serverHandshakeHeaders(o: {
  key: string;
  protocol?: string;
  extensions?: string;
}): HeaderList {
  const h: [string, string][] = [
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Accept', acceptKey(o.key)],
  ];
  if (o.protocol !== undefined) h.push(['Sec-WebSocket-Protocol', o.protocol]);
  if (o.extensions) h.push(['Sec-WebSocket-Extensions', o.extensions]);
  return h;
}

/** A status line and headers as bytes (for the 101 and for refusals written on a raw socket). */
export function encodeHandshakeResponse(status: number, reason: string, headers: HeaderList): Uint8Array {
  const lines = [`HTTP/1.1 ${status} ${reason}`, ...headers.map(([n, v]) => `${n}: ${v}`)];
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

// --- The client's checks of the answer (RFC 6455 §4.1, "the client MUST validate") ----

export type ServerHandshake =
  | { ok: true; protocol: string | undefined; extensions: ExtensionOffer[] }
  | { ok: false; reason: string };

export function checkServerHandshake(
  status: number,
  headers: HeaderList,
  offer: { key: string; protocols: readonly string[]; extensionNames: readonly string[] },
): ServerHandshake {
  const fail = (reason: string): ServerHandshake => ({ ok: false, reason });
  // Items 1-4 of the client's checks in RFC 6455 §4.1.
  if (status !== 101) return fail(`unexpected status ${status}`);
  if (!hasToken(headers, 'upgrade', 'websocket')) return fail('Upgrade does not name websocket');
  if (!hasToken(headers, 'connection', 'upgrade')) return fail('Connection does not name Upgrade');
  const accepts = headerValues(headers, 'sec-websocket-accept');
  if (accepts.length !== 1 || accepts[0]?.trim() !== acceptKey(offer.key)) {
    return fail('Sec-WebSocket-Accept does not match the key');
  }
  // Item 5: only extensions we offered.
  let extensions: ExtensionOffer[];
  try {
    extensions = parseExtensions(headerValues(headers, 'sec-websocket-extensions'));
  } catch (e) {
    if (e instanceof ParseError) return fail(`Sec-WebSocket-Extensions: ${e.message}`);
    throw e;
  }
  for (const e of extensions) {
    if (!offer.extensionNames.includes(e.name)) return fail(`extension ${e.name} was not offered`);
  }
  // Item 6: at most one subprotocol, one we offered.
  const protocols = headerTokens(headers, 'sec-websocket-protocol');
  if (protocols.length > 1) return fail('more than one subprotocol selected');
  const protocol = protocols[0];
  if (protocol !== undefined && !offer.protocols.includes(protocol)) {
    return fail(`subprotocol ${protocol} was not offered`);
  }
  if (protocol === undefined && headerValues(headers, 'sec-websocket-protocol').length > 0) {
    return fail('empty Sec-WebSocket-Protocol');
  }
  return { ok: true, protocol, extensions };
}

// --- A bounded response-head reader for the client ------------------------------------

export interface HandshakeResponse {
  status: number;
  reason: string;
  headers: HeaderList;
  /** Bytes the head took, including the empty line; what follows belongs to WebSocket. */
  length: number;
}

/** Longest response head the handshake reader accepts before giving up. */
export const MAX_HANDSHAKE_HEAD = 16 * 1024;

/**
 * Read an HTTP/1.1 status line and field section (RFC 9112 §4, §5) from the start of
 * `bytes`. Returns undefined until the empty line arrives; throws ParseError on malformed
 * input or a head past MAX_HANDSHAKE_HEAD. Enough for the handshake answer only: bodies of
 * refusals are not read.
 */
export function decodeHandshakeResponse(bytes: Uint8Array): HandshakeResponse | undefined {
  const text = Buffer.from(
    bytes.buffer,
    bytes.byteOffset,
    Math.min(bytes.length, MAX_HANDSHAKE_HEAD + 4),
  ).toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) {
    if (bytes.length > MAX_HANDSHAKE_HEAD)
      throw new ParseError(LAYER, 'response head', MAX_HANDSHAKE_HEAD, 'too long');
    return undefined;
  }
  const lines = text.slice(0, end).split('\r\n');
  const statusLine = lines[0] ?? '';
  const m = /^HTTP\/1\.[01] (\d{3}) ?([^\r\n]*)$/.exec(statusLine);
  if (!m) throw new ParseError(LAYER, 'status-line', 0, JSON.stringify(statusLine.slice(0, 40)));
  const headers: [string, string][] = [];
  let offset = statusLine.length + 2;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon);
    // RFC 9112 §5.1: no whitespace between name and colon; obs-fold rejected (§5.2).
    if (colon <= 0 || !TOKEN.test(name)) throw new ParseError(LAYER, 'field-line', offset, 'malformed');
    const value = line.slice(colon + 1).trim();
    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value))
      throw new ParseError(LAYER, 'field-value', offset, 'control character');
    headers.push([name, value]);
    offset += line.length + 2;
  }
  return { status: Number(m[1]), reason: m[2] ?? '', headers, length: end + 4 };
}
