import type { Duplex } from 'node:stream';
import { h2RequestResponse } from '../../h2/compat.ts';
import { CONNECTION_PREFACE } from '../../h2/frames.ts';
import { createServer as createHttp2Server } from '../../h2/session.ts';
import { DEFAULT_TIMEOUTS } from '../connection.ts';
import type { HttpServer } from './server.ts';

/**
 * The HTTP/1.1 server's hand-off to HTTP/2: one port answers both. RFC 9113 §3.2: over TLS
 * the version is chosen by ALPN; in cleartext a client with prior knowledge starts with the
 * connection preface (§3.4), which no HTTP/1.1 request can.
 */

const PREFACE = Buffer.from(CONNECTION_PREFACE);

/** An h2 connection (ALPN h2, or the preface seen): the same 'request' handler, fed by h2 streams as IncomingMessage/ServerResponse. */
export function acceptHttp2(server: HttpServer, socket: Duplex): void {
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
  server.counters.inc('accepted.h2');
  server.h2.handle(socket);
}

/**
 * Read until the first octets match or rule out the h2 preface, put them back, and hand the
 * socket on. A client that sends nothing is cut at the headers timeout, as HTTP/1.1's is.
 */
export function sniffPreface(server: HttpServer, socket: Duplex): void {
  const preface = PREFACE;
  const acceptedAt = server.timers.now();
  let seen: Buffer = Buffer.alloc(0);
  const limit = server.options.timeouts?.headersTimeout ?? DEFAULT_TIMEOUTS.headersTimeout;
  // Silence until the headers timeout is HTTP/1.1's case: its connection, created with the
  // accept time, finds its deadline passed and answers 408 as usual.
  const timer = limit > 0 ? server.timers.setTimer(acceptedAt + limit, () => done(false)) : undefined;
  const done = (h2: boolean) => {
    timer?.cancel();
    server.sniffing.delete(socket);
    socket.off('data', onData);
    socket.off('close', onClose);
    socket.off('error', onError);
    if (!h2) {
      // HTTP/1.1 (nearly every cleartext connection): the bytes seen go straight to the
      // new connection's parser. Putting them back with unshift() and resuming would
      // re-deliver them a tick later through the stream's read machinery, a measurable
      // part of a one-request connection's cost.
      const c = server.acceptHttp1(socket, acceptedAt);
      if (seen.length > 0) c.receiveFirst(seen);
      return;
    }
    socket.pause();
    if (seen.length > 0) socket.unshift(seen);
    acceptHttp2(server, socket);
    // pause() above left the stream paused; a reader that listens for 'data' wants it flowing.
    if (socket.listenerCount('data') > 0) socket.resume();
  };
  const onData = (chunk: Buffer) => {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, preface.length);
    const match = seen.subarray(0, n).equals(preface.subarray(0, n));
    if (match && seen.length < preface.length) return;
    done(match);
  };
  const onClose = () => {
    timer?.cancel();
    server.sniffing.delete(socket);
  };
  // A peer that resets before its first byte (ECONNRESET) must not become an unhandled
  // 'error' that takes the whole server down.
  const onError = () => {
    server.counters.inc('error.before-first-byte');
    socket.destroy();
  };
  server.sniffing.add(socket);
  socket.on('data', onData);
  socket.on('error', onError);
  socket.once('close', onClose);
}
