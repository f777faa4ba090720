import type { Duplex } from 'node:stream';
import { h2cUpgradeSettings, h2RequestResponse, upgradeToH2c } from '../../h2/compat.ts';
import { CONNECTION_PREFACE } from '../../h2/frames.ts';
import { createServer as createHttp2Server } from '../../h2/session.ts';
import type { RequestHead } from '../codec.ts';
import type { HttpServer } from './server.ts';

/**
 * The HTTP/1.1 server's hand-off to HTTP/2: one port answers both. RFC 9113 §3.2: over TLS
 * the version is chosen by ALPN; in cleartext a client with prior knowledge starts with the
 * connection preface (§3.4), which no HTTP/1.1 request can.
 */

const PREFACE = Buffer.from(CONNECTION_PREFACE);

/** An h2 connection (ALPN h2, or the preface seen): the same 'request' handler, fed by h2 streams as IncomingMessage/ServerResponse. */
export function acceptHttp2(server: HttpServer, socket: Duplex): void {
  h2Side(server);
  server.counters.inc('accepted.h2');
  server.h2?.handle(socket);
}

/**
 * RFC 7540 §3.2 (what `curl --http2 http://…` sends): a cleartext request with `Upgrade:
 * h2c` and one HTTP2-Settings field, and no body, is answered 101 and continues in HTTP/2,
 * itself stream 1. `detach` makes the HTTP/1.1 driver let go and returns the octets read
 * past the request. Returns false (nothing done) to answer in HTTP/1.1 instead.
 */
export function upgradeToHttp2(
  server: HttpServer,
  socket: Duplex,
  head: RequestHead,
  detach: () => Uint8Array,
): boolean {
  if (server.options.http2 === false || (socket as { alpnProtocol?: unknown }).alpnProtocol !== undefined)
    return false;
  const settings = h2cUpgradeSettings(head.fields);
  if (!settings) return false;
  const h2 = h2Side(server);
  const rest = detach();
  server.counters.inc('accepted.h2c-upgrade');
  try {
    upgradeToH2c(h2, socket, head, settings, rest);
  } catch {
    // A SETTINGS value out of range (RFC 9113 §6.5.2): nothing was written yet.
    socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  }
  return true;
}

/** The server's h2 side, made on first use. */
function h2Side(server: HttpServer): NonNullable<HttpServer['h2']> {
  server.h2 ??= createHttp2Server(
    {
      ...(server.options.clock ? { clock: server.options.clock } : {}),
      ...(server.options.trace ? { trace: server.options.trace } : {}),
      ...(server.options.hostName ? { hostName: server.options.hostName } : {}),
    },
    (stream, headers) => {
      // A stream the application takes itself (gRPC, say) never becomes a (req, res).
      if (server.options.onHttp2Stream?.(stream, headers)) return;
      const { req, res } = h2RequestResponse(stream, headers);
      server.emit('request', req, res);
    },
  );
  return server.h2;
}

/** Octets of the h2 connection preface (RFC 9113 §3.4). */
export const PREFACE_LENGTH = PREFACE.length;

/** Whether `seen` is the h2 preface, or its beginning (more octets may tell otherwise). */
export function isPrefacePrefix(seen: Uint8Array): boolean {
  const n = Math.min(seen.length, PREFACE.length);
  for (let i = 0; i < n; i++) if (seen[i] !== PREFACE[i]) return false;
  return true;
}

/**
 * A cleartext connection opened with the h2 preface (prior knowledge, RFC 9113 §3.4): the
 * HTTP/1.1 driver, which read `seen` while it looked, has let go of the socket; the octets
 * go back in front of the stream and the socket to the h2 side.
 */
export function handOffToHttp2(server: HttpServer, socket: Duplex, seen: Buffer): void {
  socket.pause();
  if (seen.length > 0) socket.unshift(seen);
  acceptHttp2(server, socket);
  // pause() above left the stream paused; a reader that listens for 'data' wants it flowing.
  if (socket.listenerCount('data') > 0) socket.resume();
}
