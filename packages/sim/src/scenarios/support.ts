/** What the scenarios share: echo servers, a TLS exchange, HTTP server and client on the simulated hosts, ladder notes. */
import type { Duplex } from 'node:stream';
import { Agent, createHttpServer, type HttpServer, type RequestListener } from '@stepwire/http';
import type { SecureSocket, SessionTicket } from '@stepwire/tls';
import { TraceBus } from '@stepwire/wire';
import type { NetHost, Network } from '../network.ts';

/** Resolves with everything a stream delivers until it ends. */
export function readAll(s: Duplex): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('end', () => resolve(Buffer.concat(parts)));
    s.on('error', reject);
  });
}

/** An echo server on B's TCP port: every byte back, then close when the client does. */
export function tcpEcho(b: NetHost, port: number) {
  const server = b.tcp.createServer((s) => {
    s.on('data', (d: Buffer) => s.write(d));
    s.on('end', () => s.end());
    s.on('error', () => {});
  });
  server.listen(port);
  return server;
}

/** A TLS echo server on B, the first line back prefixed with what the server saw. */
export function tlsEcho(b: NetHost, options: Parameters<NetHost['tls']['createServer']>[0] = {}) {
  return b.tls.createServer({ port: 443, ...options }, (s) => {
    s.on('data', (d: Buffer) => s.write(d));
    s.on('end', () => s.end());
    s.on('error', () => {});
  });
}

/** A's TLS client: send `text` once secure, read until the server closes. */
export async function tlsExchange(
  net: Network,
  a: NetHost,
  b: NetHost,
  text: string,
  options: Partial<Parameters<NetHost['tls']['connect']>[0]> = {},
  during?: (s: SecureSocket) => void,
): Promise<{ reply: string; socket: SecureSocket; ticket?: SessionTicket }> {
  const socket = a.tls.connect({ host: b.ipv4, port: 443, servername: 'b.test', ...options });
  let ticket: SessionTicket | undefined;
  socket.on('session', (t: SessionTicket) => {
    ticket = t;
  });
  const reply = new Promise<string>((resolve, reject) => {
    let got = '';
    socket.on('secureConnect', () => {
      during?.(socket);
      socket.end(text);
    });
    socket.on('data', (d: Buffer) => (got += d));
    socket.on('end', () => resolve(got));
    socket.on('error', reject);
  });
  const r = await net.run(reply);
  return { reply: r, socket, ...(ticket ? { ticket } : {}) };
}

/**
 * A trace bus for our HTTP and WebSocket code that puts what they write on the ladder as
 * notes, the way TLS handshake messages show: each request, response and frame where it
 * is written ('http → GET /a HTTP/1.1 on #1'), pool decisions ('http pool …: reuse
 * connection #1'), what the server does ('http process GET /a'). Per-byte reads and the
 * core's state changes stay out: they would bury the packets.
 */
export function appTrace(net: Network): TraceBus {
  const bus = new TraceBus();
  bus.on((e) => {
    if (e.state && e.layer === 'http') return;
    if (e.dir === 'in') return;
    if (e.state && e.layer === 'h2') {
      // The ladder would print only 'from → to'; HTTP/2's summary names the stream too.
      const { state: _state, ...rest } = e;
      net.trace.emit({ ...rest, dir: 'local' });
      return;
    }
    net.trace.emit(e.dir === 'out' ? { ...e, dir: 'local', summary: `→ ${e.summary}` } : e);
  });
  return bus;
}

/** A note of the scenario's own on the ladder (what the application did, not the stack). */
export function note(net: Network, host: string, layer: string, text: string): void {
  net.trace.emit({ t: net.clock.now(), host, layer, dir: 'local', summary: text });
}

/** Our HTTP/1.1 server on `port` of B's TCP. */
export function httpServer(
  net: Network,
  b: NetHost,
  port: number,
  listener: RequestListener,
  options: { keepAliveTimeout?: number } = {},
): { server: HttpServer; close(): void } {
  const server = createHttpServer(
    {
      clock: net.clock,
      trace: appTrace(net),
      hostName: b.name,
      timeouts: { keepAliveTimeout: options.keepAliveTimeout ?? 5_000 },
    },
    listener,
  );
  const listener4 = b.tcp.createServer();
  server.listen(listener4);
  listener4.listen(port);
  return {
    server,
    close() {
      server.close();
      listener4.close();
    },
  };
}

/** Our HTTP client on A: a pool per origin over A's TCP. */
export function httpAgent(net: Network, a: NetHost, idleTimeout = 4_000): Agent {
  return new Agent({
    clock: net.clock,
    trace: appTrace(net),
    traceHost: a.name,
    idleTimeout,
    connect: (o) => a.tcp.connect({ host: o.hostname, port: o.port }),
  });
}
