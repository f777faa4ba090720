/**
 * node:tls (OpenSSL inside Node) over node:net on loopback: the stand-in stack the peer
 * harness is validated with, and a well-known peer for our own stack.
 */

import http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { handleRequest } from '../../packages/cli/src/services/http-app.ts';

/** Connects and resolves once the handshake is done; rejects with the handshake's error. */
export function nodeTlsConnect(opts: tls.ConnectionOptions & { timeoutMs?: number }): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', servername: 'stepwire.test', minVersion: 'TLSv1.3', ...opts });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('node:tls handshake timed out'));
    }, opts.timeoutMs ?? 10_000);
    s.once('secureConnect', () => {
      clearTimeout(timer);
      s.off('error', onError);
      // Later errors (a reset when a test tears its server down) surface through readUntil's
      // own listener; without any listener they would crash the worker.
      s.on('error', () => {});
      resolve(s);
    });
    const onError = (e: Error): void => {
      clearTimeout(timer);
      s.destroy();
      reject(e);
    };
    s.once('error', onError);
  });
}

/** Collects what a stream receives until `re` matches (or it ends when `re` is undefined). */
export function readUntil(s: Duplex, re?: RegExp, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const done = (err?: Error): void => {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('end', onEnd);
      s.off('close', onEnd);
      s.off('error', onErr);
      if (err) reject(err);
      else resolve(got);
    };
    const onData = (b: Buffer): void => {
      got += b.toString('latin1');
      if (re?.test(got)) done();
    };
    const onEnd = (): void =>
      re && !re.test(got) ? done(new Error(`stream ended before ${re}: ${got}`)) : done();
    const onErr = (e: Error): void => done(e);
    const timer = setTimeout(
      () => done(new Error(`timed out waiting for ${re ?? 'end'}; got ${got}`)),
      timeoutMs,
    );
    s.on('data', onData);
    s.once('end', onEnd);
    s.once('close', onEnd);
    s.once('error', onErr);
  });
}

/** Waits for the stream's 'session' events for a while and returns the last one (TLS 1.3 tickets come after the handshake). */
export function nextSession(s: tls.TLSSocket, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no session ticket arrived')), timeoutMs);
    s.once('session', (session: Buffer) => {
      clearTimeout(timer);
      resolve(session);
    });
  });
}

export interface NodeHandshake {
  cipher: string;
  protocol: string | null;
  reused: boolean;
  authorized: boolean;
  /** The client certificate's subject CN, when one was presented. */
  peerCN?: string;
}

export interface NodeTlsServer {
  port: number;
  server: tls.Server;
  /** Every TLS socket that completed a handshake, in order. */
  sockets: tls.TLSSocket[];
  /** What each handshake negotiated, recorded at once (a closed socket forgets). */
  handshakes: NodeHandshake[];
  /** Handshake errors the server saw (tlsClientError). */
  clientErrors: Error[];
  close(): Promise<void>;
}

/**
 * A node:tls server on 127.0.0.1: 'echo' sends every byte back; 'http' hands each TLS socket
 * to a node:http Server (emit('connection')) running stepwire's HTTP routes.
 */
export function startNodeTlsServer(
  opts: tls.TlsOptions & { mode?: 'echo' | 'http' },
): Promise<NodeTlsServer> {
  const sockets: tls.TLSSocket[] = [];
  const handshakes: NodeHandshake[] = [];
  const clientErrors: Error[] = [];
  const httpServer = http.createServer(handleRequest);
  const server = tls.createServer({ minVersion: 'TLSv1.3', ...opts }, (socket) => {
    sockets.push(socket);
    const peer = socket.getPeerCertificate();
    handshakes.push({
      cipher: socket.getCipher().standardName,
      protocol: socket.getProtocol(),
      reused: socket.isSessionReused(),
      authorized: socket.authorized,
      ...(peer?.subject ? { peerCN: String(peer.subject.CN) } : {}),
    });
    socket.on('error', () => {});
    if (opts.mode === 'http') httpServer.emit('connection', socket);
    else socket.pipe(socket);
  });
  server.on('tlsClientError', (e) => clientErrors.push(e));
  const raw = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    raw.add(s);
    s.on('close', () => raw.delete(s));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        server,
        sockets,
        handshakes,
        clientErrors,
        close: () =>
          new Promise((r) => {
            for (const s of raw) s.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}
