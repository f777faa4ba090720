/**
 * HTTP/2 streams as node:http-style (req, res) pairs, so the HTTP/1.1 server's request
 * handler answers HTTP/2 too. The h1 module's IncomingMessage and ServerResponse are
 * protocol-independent: they write through a ResponseChannel, which here is one stream.
 *
 *   const h2 = createServer();
 *   h2.on('stream', (stream, headers) => {
 *     const { req, res } = h2RequestResponse(stream, headers);
 *     handler(req, res);            // the same (req, res) => … the HTTP/1.1 server runs
 *   });
 */
import type { Duplex } from 'node:stream';
import type { Field } from '../h1/codec.ts';
import { IncomingMessage, type ResponseChannel, ServerResponse } from '../h1/messages.ts';
import { Http2Connection } from './connection.ts';
import { ErrorCode } from './errors.ts';
import { CONNECTION_PREFACE } from './frames.ts';
import type { IncomingHeaders, OutgoingHeaders } from './message.ts';
import {
  createServer,
  type Http2Server,
  type Http2Session,
  type Http2Stream,
  type SessionOptions,
} from './session.ts';

/** RFC 9113 §8.2.2: fields that mean something only to an HTTP/1.1 connection. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

function fieldsOf(headers: IncomingHeaders): Field[] {
  const out: Field[] = [];
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue;
    // RFC 9113 §8.3.1: :authority stands for Host.
    const name = k === ':authority' ? 'host' : k;
    if (name.startsWith(':')) continue;
    for (const value of Array.isArray(v) ? v : [v]) out.push([name, value]);
  }
  return out;
}

/**
 * What `res` gains over HTTP/2, as node:http2's compat Http2ServerResponse: the stream it
 * writes to, and server push (RFC 9113 §8.4).
 */
export interface Http2ResponseExtras {
  /** The HTTP/2 stream under this response (node:http2's `response.stream`). */
  readonly stream: Http2Stream;
  /**
   * Promises a request (`:path`, and optionally `:method`, `:authority`, `:scheme` and other
   * fields) on this response's stream and hands `callback` the (req, res)-style response for
   * the pushed stream. Refused with ERR_HTTP2_PUSH_DISABLED when the client's
   * SETTINGS_ENABLE_PUSH is 0 (RFC 9113 §6.5.2), and with ERR_HTTP2_INVALID_STREAM once this
   * response has ended (§8.4: a promise travels on an open stream).
   */
  createPushResponse(
    headers: OutgoingHeaders,
    callback: (err: Error | null, res?: ServerResponse & Http2ResponseExtras) => void,
  ): void;
}

/** The `res` of an h2 stream: node:http's ServerResponse plus `stream` and push. */
export type Http2CompatResponse = ServerResponse & Http2ResponseExtras;

/** Whether `res` answers an HTTP/2 stream (and so has `stream` and `createPushResponse`). */
export function isHttp2Response(res: ServerResponse): res is Http2CompatResponse {
  return typeof (res as Partial<Http2ResponseExtras>).createPushResponse === 'function';
}

function codedError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** Wraps a server stream and its request headers as node:http's (req, res). */
export function h2RequestResponse(
  stream: Http2Stream,
  headers: IncomingHeaders,
): { req: IncomingMessage; res: Http2CompatResponse } {
  const one = (n: string) => {
    const v = headers[n];
    return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
  };
  const req = new IncomingMessage(stream, {
    method: one(':method'),
    url: one(':path') || one(':authority'),
    httpVersionMajor: 2,
    httpVersionMinor: 0,
    fields: fieldsOf(headers),
    onRead: () => stream.resume(),
  });
  stream.on('data', (chunk: Buffer) => {
    if (!req.push(chunk)) stream.pause();
  });
  stream.on('trailers', (t: IncomingHeaders) => req.setTrailers(fieldsOf(t)));
  stream.on('end', () => {
    req.complete = true;
    req.push(null);
  });
  stream.on('error', (e) => req.destroy(e));
  let trailersWanted: Field[] = [];
  const channel: ResponseChannel = {
    sendHead(status, _reason, fields, knownLength) {
      const h: OutgoingHeaders = { ':status': status };
      for (const [name, value] of fields) {
        const n = name.toLowerCase();
        if (HOP_BY_HOP.has(n)) continue;
        const prev = h[n];
        h[n] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [String(prev)]), value];
      }
      if (knownLength !== undefined && h['content-length'] === undefined) h['content-length'] = knownLength;
      stream.respond(h, { waitForTrailers: true });
      stream.once('wantTrailers', () => {
        if (trailersWanted.length > 0) {
          const t: OutgoingHeaders = {};
          for (const [n, v] of trailersWanted) t[n.toLowerCase()] = v;
          stream.sendTrailers(t);
        } else stream.sendTrailers({});
      });
    },
    sendInformational(status, _reason, fields) {
      const h: OutgoingHeaders = { ':status': status };
      for (const [n, v] of fields) h[n.toLowerCase()] = v;
      stream.additionalHeaders(h);
    },
    sendData(chunk, done) {
      // The chunk is queued on the stream at once; when the stream takes more without
      // backpressure, the response hears so in the same tick. Waiting for the stream's own
      // write callback (a tick later) let the session's flush after a batch of requests
      // write this DATA without END_STREAM, and the END_STREAM that res.end() adds came
      // later in an empty frame queued behind the other streams' data.
      let called = false;
      const once = (e?: Error | null) => {
        if (called) return;
        called = true;
        done(e ?? null);
      };
      if (stream.write(chunk, once)) once(null);
    },
    sendEnd(trailers, done) {
      trailersWanted = trailers;
      stream.end(() => done(null));
    },
    abort() {
      stream.close(ErrorCode.INTERNAL_ERROR);
    },
  };
  const res = new ServerResponse(req, channel);
  const extras: Http2ResponseExtras = {
    stream,
    createPushResponse(pushHeaders, callback) {
      // RFC 9113 §8.4: only when the client allows push, and only while our side is open.
      if (!stream.pushAllowed) {
        const err = stream.session.remoteSettings.enablePush
          ? codedError('ERR_HTTP2_INVALID_STREAM', 'the response has ended: nothing to push on')
          : codedError('ERR_HTTP2_PUSH_DISABLED', 'the client disabled push (SETTINGS_ENABLE_PUSH = 0)');
        process.nextTick(callback, err);
        return;
      }
      stream.pushStream(pushHeaders, (err, pushed, promised) => {
        if (err || !pushed) {
          callback(err ?? codedError('ERR_HTTP2_INVALID_STREAM', 'push failed'));
          return;
        }
        const pair = h2RequestResponse(pushed, { ...(promised ?? pushHeaders) } as IncomingHeaders);
        // A pushed stream carries no request body: its request is complete as promised.
        pair.req.complete = true;
        pair.req.push(null);
        callback(null, pair.res);
      });
    },
  };
  return { req, res: Object.assign(res, extras) };
}

/** The HTTP/1.1 server's handler shape: node:http's (req, res). */
export type CompatRequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/** An h2 server whose streams run an HTTP/1.1-style (req, res) handler. */
export function createCompatHttp2Server(
  listener: CompatRequestListener,
  options: SessionOptions = {},
): Http2Server {
  return createServer(options, (stream, headers) => {
    const { req, res } = h2RequestResponse(stream, headers);
    listener(req, res);
  });
}

/**
 * Cleartext connections on one port for both versions (RFC 9113 §3.3, prior knowledge):
 * reads until the first octets match or rule out the client preface, puts them back, and
 * hands the socket to the h2 server or to the HTTP/1.1 server (anything with handle()).
 */
export function routeByPreface(
  socket: Duplex,
  h2: { handle(socket: Duplex): unknown },
  h1: { handle(socket: Duplex): unknown },
): void {
  let seen: Buffer = Buffer.alloc(0);
  const preface = Buffer.from(CONNECTION_PREFACE);
  const onData = (chunk: Buffer) => {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, preface.length);
    const match = seen.subarray(0, n).equals(preface.subarray(0, n));
    if (match && seen.length < preface.length) return;
    socket.off('data', onData);
    socket.pause();
    socket.unshift(seen);
    (match ? h2 : h1).handle(socket);
    // The chosen server reads with 'data' listeners (flowing mode) or 'readable'.
    if (socket.listenerCount('data') > 0) socket.resume();
  };
  socket.on('data', onData);
}

// ---- h2c upgrade from HTTP/1.1 (RFC 7540 §3.2) ------------------------------------------

/** The 101 that switches an HTTP/1.1 connection to h2c (RFC 7540 §3.2). */
export const H2C_SWITCHING_PROTOCOLS =
  'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n';

const tokens = (fields: readonly Field[], name: string): string[] =>
  fields
    .filter(([n]) => n.toLowerCase() === name)
    .flatMap(([, v]) => v.split(','))
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t.length > 0);

/**
 * Whether an HTTP/1.1 request asks to continue in h2c and can (RFC 7540 §3.2): `Upgrade`
 * names h2c, exactly one `HTTP2-Settings` field holds a base64url SETTINGS payload
 * (§3.2.1), and the request has no body (ours are only upgraded when complete at their
 * head; others are answered in HTTP/1.1, which §3.2 allows). Returns the decoded payload,
 * or undefined to answer in HTTP/1.1 as if no upgrade were asked.
 */
export function h2cUpgradeSettings(fields: readonly Field[]): Uint8Array | undefined {
  if (!tokens(fields, 'upgrade').includes('h2c')) return undefined;
  const settings = fields.filter(([n]) => n.toLowerCase() === 'http2-settings');
  const value = settings[0]?.[1].trim();
  if (settings.length !== 1 || value === undefined || !/^[A-Za-z0-9_-]*=*$/.test(value)) return undefined;
  if (fields.some(([n]) => n.toLowerCase() === 'transfer-encoding')) return undefined;
  const length = fields.find(([n]) => n.toLowerCase() === 'content-length')?.[1].trim();
  if (length !== undefined && length !== '0') return undefined;
  const payload = new Uint8Array(Buffer.from(value, 'base64url'));
  return payload.length % 6 === 0 ? payload : undefined;
}

/**
 * Switches `socket` to h2c: writes the 101, puts back the octets read past the request
 * (`rest`, usually the client preface), and hands the socket to `h2` with the request as
 * stream 1 (RFC 7540 §3.2). The caller has stopped reading the socket as HTTP/1.1.
 * Throws Http2Error (and writes nothing) when the settings payload is malformed.
 */
export function upgradeToH2c(
  h2: Http2Server,
  socket: Duplex,
  request: { method: string; target: string; fields: readonly Field[] },
  settingsPayload: Uint8Array,
  rest: Uint8Array = new Uint8Array(0),
): Http2Session {
  // RFC 9113 §8.3.1: the request's control data as pseudo-header fields; the fields that
  // only meant something to the HTTP/1.1 connection (and the upgrade) are dropped.
  const skip = new Set([
    ...HOP_BY_HOP,
    'host',
    'http2-settings',
    'te',
    ...tokens(request.fields, 'connection'),
  ]);
  const host = request.fields.find(([n]) => n.toLowerCase() === 'host')?.[1] ?? '';
  const headers: OutgoingHeaders = {
    ':method': request.method,
    ':scheme': 'http',
    ':authority': host,
    ':path': request.target,
  };
  for (const [n, v] of request.fields) {
    const name = n.toLowerCase();
    if (skip.has(name)) continue;
    const prev = headers[name];
    headers[name] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [String(prev)]), v];
  }
  // A malformed payload throws here, before the socket is touched.
  new Http2Connection({ role: 'server' }).acceptUpgrade(settingsPayload, []);
  if (rest.length > 0) socket.unshift(Buffer.from(rest.buffer, rest.byteOffset, rest.byteLength));
  const session = h2.handleUpgrade(socket, settingsPayload, headers, H2C_SWITCHING_PROTOCOLS);
  if (socket.listenerCount('data') > 0) socket.resume();
  return session;
}
