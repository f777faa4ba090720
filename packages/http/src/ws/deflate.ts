import zlib from 'node:zlib';
import type { ExtensionOffer } from './handshake.ts';

/**
 * permessage-deflate (RFC 7692): negotiation (§7.1) and the per-message transform
 * (§7.2), over node:zlib.
 *
 * Why one-shot zlib calls with a preset dictionary instead of a long-lived stream: the
 * WebSocket core is sans-I/O and synchronous (bytes in, messages out), but node:zlib's only
 * synchronous API compresses one buffer and closes its engine. Context takeover (§7.1.1)
 * means "the next message may refer back into the previous ones' plaintext"; a DEFLATE
 * back-reference can reach at most the window (2^windowBits bytes), so carrying the last
 * window of plaintext and handing it to zlib as the preset dictionary produces exactly the
 * stream a long-lived compressor would be allowed to produce, and decodes exactly what a
 * long-lived peer compressor produced. Every message ends with a sync flush, whose trailing
 * 00 00 ff ff is removed on send and appended on receive (§7.2.1, §7.2.2).
 */

export const PERMESSAGE_DEFLATE = 'permessage-deflate';

export interface PerMessageDeflateOptions {
  /** Ask the server not to carry context between its messages (RFC 7692 §7.1.1.1). */
  serverNoContextTakeover?: boolean;
  /** Ask or require the client not to carry context (RFC 7692 §7.1.1.2). */
  clientNoContextTakeover?: boolean;
  /** Limit on the server's LZ77 window, 9..15 (RFC 7692 §7.1.2.1). */
  serverMaxWindowBits?: number;
  /** Limit on the client's window, 9..15 (RFC 7692 §7.1.2.2). */
  clientMaxWindowBits?: number;
  /** Messages shorter than this are sent uncompressed (as the ws package does). Default 1024. */
  threshold?: number;
  /** zlib level, default zlib's. */
  level?: number;
}

/** The agreed parameters, the same value on both sides. */
export interface DeflateParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number;
  clientMaxWindowBits: number;
}

/** zlib's raw deflate cannot honour an 8-bit window (it silently widens it to 9). */
const MIN_BITS = 9;

function bitsValue(v: string | true): number | undefined {
  if (v === true || !/^(?:[89]|1[0-5])$/.test(v)) return undefined;
  return Number(v);
}

/** The client's offer (RFC 7692 §7.1). */
export function offerDeflate(o: PerMessageDeflateOptions): ExtensionOffer {
  const params: [string, string | true][] = [];
  if (o.serverNoContextTakeover) params.push(['server_no_context_takeover', true]);
  if (o.clientNoContextTakeover) params.push(['client_no_context_takeover', true]);
  if (o.serverMaxWindowBits !== undefined)
    params.push(['server_max_window_bits', String(o.serverMaxWindowBits)]);
  // Without a value: "the client supports the parameter", the server may then limit us.
  params.push([
    'client_max_window_bits',
    o.clientMaxWindowBits !== undefined ? String(o.clientMaxWindowBits) : true,
  ]);
  return { name: PERMESSAGE_DEFLATE, params };
}

/**
 * The server picks the first acceptable offer and answers it (RFC 7692 §5, §7.1). An offer
 * with an unknown or repeated parameter or a bad value is declined (§7.1 "MUST decline").
 */
export function acceptDeflate(
  offers: readonly ExtensionOffer[],
  o: PerMessageDeflateOptions,
): { params: DeflateParams; response: ExtensionOffer } | undefined {
  for (const offer of offers) {
    if (offer.name !== PERMESSAGE_DEFLATE) continue;
    const seen = new Set<string>();
    let bad = false;
    let serverNct = false;
    let clientNct = false;
    let serverBits: number | undefined;
    let clientBits: number | true | undefined;
    for (const [name, value] of offer.params) {
      if (seen.has(name)) bad = true;
      seen.add(name);
      if (name === 'server_no_context_takeover' && value === true) serverNct = true;
      else if (name === 'client_no_context_takeover' && value === true) clientNct = true;
      else if (name === 'server_max_window_bits') {
        serverBits = bitsValue(value);
        if (serverBits === undefined || serverBits < MIN_BITS) bad = true;
      } else if (name === 'client_max_window_bits') {
        clientBits = value === true ? true : bitsValue(value);
        if (clientBits === undefined) bad = true;
      } else bad = true;
    }
    if (bad) continue;
    const params: DeflateParams = {
      serverNoContextTakeover: serverNct || !!o.serverNoContextTakeover,
      clientNoContextTakeover: clientNct || !!o.clientNoContextTakeover,
      serverMaxWindowBits: Math.min(serverBits ?? 15, o.serverMaxWindowBits ?? 15),
      clientMaxWindowBits: 15,
    };
    // §7.1.2.2: we may limit the client only if it said it supports the parameter.
    if (clientBits !== undefined) {
      params.clientMaxWindowBits = Math.min(
        clientBits === true ? 15 : clientBits,
        o.clientMaxWindowBits ?? 15,
      );
    }
    const response: [string, string | true][] = [];
    if (params.serverNoContextTakeover) response.push(['server_no_context_takeover', true]);
    if (params.clientNoContextTakeover) response.push(['client_no_context_takeover', true]);
    if (serverBits !== undefined || o.serverMaxWindowBits !== undefined) {
      response.push(['server_max_window_bits', String(params.serverMaxWindowBits)]);
    }
    if (clientBits !== undefined && (clientBits !== true || o.clientMaxWindowBits !== undefined)) {
      response.push(['client_max_window_bits', String(params.clientMaxWindowBits)]);
    }
    // A client window below 9 cannot be honoured by zlib: decline rather than break it.
    if (params.clientMaxWindowBits < MIN_BITS) continue;
    return { params, response: { name: PERMESSAGE_DEFLATE, params: response } };
  }
  return undefined;
}

/** The client checks the server's answer against its offer (RFC 7692 §7.1). */
export function checkDeflateResponse(
  response: ExtensionOffer,
  offered: PerMessageDeflateOptions,
): DeflateParams | string {
  const seen = new Set<string>();
  const p: DeflateParams = {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: 15,
    clientMaxWindowBits: 15,
  };
  for (const [name, value] of response.params) {
    if (seen.has(name)) return `repeated ${name}`;
    seen.add(name);
    if (name === 'server_no_context_takeover' && value === true) p.serverNoContextTakeover = true;
    else if (name === 'client_no_context_takeover' && value === true) p.clientNoContextTakeover = true;
    else if (name === 'server_max_window_bits') {
      const b = bitsValue(value);
      if (b === undefined) return `bad server_max_window_bits ${String(value)}`;
      if (offered.serverMaxWindowBits !== undefined && b > offered.serverMaxWindowBits) {
        return 'server_max_window_bits above our offer';
      }
      p.serverMaxWindowBits = b;
    } else if (name === 'client_max_window_bits') {
      const b = bitsValue(value);
      if (b === undefined) return `bad client_max_window_bits ${String(value)}`;
      if (offered.clientMaxWindowBits !== undefined && b > offered.clientMaxWindowBits) {
        return 'client_max_window_bits above our offer';
      }
      if (b < MIN_BITS) return 'client_max_window_bits=8 cannot be honoured';
      p.clientMaxWindowBits = b;
    } else return `unknown parameter ${name}`;
  }
  if (offered.serverNoContextTakeover && !p.serverNoContextTakeover) {
    return 'server_no_context_takeover requested but not agreed';
  }
  if (offered.clientNoContextTakeover) p.clientNoContextTakeover = true;
  if (offered.clientMaxWindowBits !== undefined) {
    p.clientMaxWindowBits = Math.min(p.clientMaxWindowBits, offered.clientMaxWindowBits);
  }
  return p;
}

const TAIL = new Uint8Array([0x00, 0x00, 0xff, 0xff]);
const SYNC = zlib.constants.Z_SYNC_FLUSH;

/** Keep the last `size` bytes of `window` followed by `data`. */
function slide(window: Uint8Array, data: Uint8Array, size: number): Uint8Array {
  if (data.length >= size) return data.slice(data.length - size);
  const keep = Math.min(window.length, size - data.length);
  const out = new Uint8Array(keep + data.length);
  out.set(window.subarray(window.length - keep));
  out.set(data, keep);
  return out;
}

/** One direction's compressor and the other's decompressor, for one role. */
export class PerMessageDeflate {
  private sendWindow: Uint8Array = new Uint8Array(0);
  private receiveWindow: Uint8Array = new Uint8Array(0);
  private readonly sendBits: number;
  private readonly sendTakeover: boolean;
  private readonly receiveTakeover: boolean;

  constructor(
    readonly params: DeflateParams,
    role: 'client' | 'server',
    readonly threshold = 1024,
    readonly level: number | undefined = undefined,
  ) {
    const server = role === 'server';
    this.sendBits = server ? params.serverMaxWindowBits : params.clientMaxWindowBits;
    this.sendTakeover = !(server ? params.serverNoContextTakeover : params.clientNoContextTakeover);
    this.receiveTakeover = !(server ? params.clientNoContextTakeover : params.serverNoContextTakeover);
  }

  /** RFC 7692 §7.2.1: compress with a sync flush, drop the trailing 00 00 ff ff. */
  compress(message: Uint8Array): Uint8Array {
    const opts: zlib.ZlibOptions = { windowBits: this.sendBits, finishFlush: SYNC };
    if (this.level !== undefined) opts.level = this.level;
    if (this.sendTakeover && this.sendWindow.length > 0) opts.dictionary = this.sendWindow;
    const out = zlib.deflateRawSync(message, opts);
    if (this.sendTakeover) this.sendWindow = slide(this.sendWindow, message, 1 << this.sendBits);
    const end =
      out.length >= 4 && out.subarray(out.length - 4).every((b, i) => b === TAIL[i])
        ? out.length - 4
        : out.length;
    // An empty message still needs one byte: §7.2.3.6 says "a single 0x00 octet".
    if (end === 0) return new Uint8Array([0x00]);
    return new Uint8Array(out.buffer, out.byteOffset, end);
  }

  /**
   * RFC 7692 §7.2.2: append 00 00 ff ff and inflate. Throws RangeError when the output
   * would pass `maxOutput` (the caller closes with 1009), Error for corrupt data (1007).
   */
  decompress(payload: Uint8Array, maxOutput: number): Uint8Array {
    const input = new Uint8Array(payload.length + 4);
    input.set(payload);
    input.set(TAIL, payload.length);
    const opts: zlib.ZlibOptions = {
      windowBits: 15,
      finishFlush: SYNC,
      maxOutputLength: Math.max(1, maxOutput),
    };
    if (this.receiveTakeover && this.receiveWindow.length > 0) opts.dictionary = this.receiveWindow;
    const out = zlib.inflateRawSync(input, opts);
    const data = new Uint8Array(out.buffer, out.byteOffset, out.length);
    if (this.receiveTakeover) this.receiveWindow = slide(this.receiveWindow, data, 1 << 15);
    return data;
  }
}
