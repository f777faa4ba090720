/**
 * `stepwire serve --loopback`: the same routes on the kernel's loopback, without TUN and
 * without root (unless the ports are below 1024): HTTP/1.1 + h2c on node:net, HTTPS (our
 * TLS 1.3, ALPN h2/http1.1) on node:net, and HTTP/3 (our QUIC) on node:dgram — the stack
 * above the transport is ours in each case. h1/h2 responses carry Alt-Svc for the h3 port.
 */
import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import net from 'node:net';
import { createServer, type SecureSocket } from '@stepwire/tls';
import { RealClock, type TraceBus } from '@stepwire/wire';
import { UsageError } from '../errors.ts';
import { h3OverDatagrams, serveAltSvc, withAltSvc } from './h3.ts';
import { createHttpApp } from './http-app.ts';
import type { TlsIdentity } from './https.ts';

export interface LoopbackServeOptions {
  /** 127.0.0.0/8 or ::1 only. */
  address: string;
  httpPort: number;
  /** TCP for HTTPS and UDP for HTTP/3. */
  httpsPort: number;
  identity: TlsIdentity;
  keylog?: (line: string) => void;
  trace?: TraceBus;
  /** A qlog per QUIC connection in this directory. */
  qlogDir?: string;
}

export interface LoopbackService {
  name: string;
  description: string;
  port: number;
  stats(): unknown;
  close(): void;
}

/** A loopback address: 127.0.0.0/8 (RFC 1122 §3.2.1.3) or ::1 (RFC 4291 §2.5.3). */
export function isLoopback(address: string): boolean {
  if (net.isIPv4(address)) return address.startsWith('127.');
  return net.isIPv6(address) && /^(0{0,4}:){2,7}0{0,3}1$|^::1$/.test(address);
}

function listenTcp(server: net.Server, port: number, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

/**
 * Starts every loopback service, or none. A port of 0 takes a free one (tests): the
 * services report the ports they got, and Alt-Svc names the UDP port actually bound.
 */
export async function serveLoopback(o: LoopbackServeOptions): Promise<LoopbackService[]> {
  if (!isLoopback(o.address))
    throw new UsageError(`--loopback serves on 127.0.0.0/8 or ::1 only, not '${o.address}'`);
  const started: LoopbackService[] = [];
  const open = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    open.add(s);
    s.once('close', () => open.delete(s));
    s.on('error', () => {});
  };
  try {
    // HTTP/3 first: its UDP port goes into the Alt-Svc of the other two.
    const udp: DgramSocket = createSocket(o.address.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(o.httpsPort, o.address, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    udp.on('error', () => {});
    const h3Port = udp.address().port;
    const h3 = h3OverDatagrams({
      socket: udp,
      clock: new RealClock(),
      port: h3Port,
      identity: o.identity,
      ...(o.keylog ? { keylog: o.keylog } : {}),
      ...(o.trace ? { trace: o.trace, traceHost: 'h3' } : {}),
      ...(o.qlogDir ? { qlogDir: o.qlogDir } : {}),
    });
    started.push({
      name: 'h3',
      description: 'HTTP/3: our QUIC on node:dgram, TLS 1.3 with ALPN h3 (RFC 9114)',
      port: h3Port,
      stats: () => h3.stats(),
      close: () => {
        h3.close();
        udp.close();
      },
    });
    const altSvc = serveAltSvc(h3Port);

    const app = createHttpApp({}, withAltSvc(altSvc));
    const plain = net.createServer((s) => {
      track(s);
      app.emit('connection', s);
    });
    const httpPort = await listenTcp(plain, o.httpPort, o.address);
    started.push({
      name: 'http',
      description: `HTTP/1.1 and h2c on node:net, our HTTP server; Alt-Svc: ${altSvc}`,
      port: httpPort,
      stats: () => app.stats(),
      close: () => plain.close(),
    });

    const tlsApp = createHttpApp({}, withAltSvc(altSvc));
    const secure = createServer(
      {
        certificates: [
          { cert: o.identity.certPem, key: o.identity.keyPem },
          ...(o.identity.more ?? []).map((m) => ({ cert: m.certPem, key: m.keyPem })),
        ],
        ALPNProtocols: ['h2', 'http/1.1'],
        ...(o.keylog ? { keylog: o.keylog } : {}),
      },
      (s: SecureSocket) => tlsApp.emit('connection', s),
    );
    secure.on('tlsClientError', () => {});
    const tcpTls = net.createServer((s) => {
      track(s);
      secure.emit('connection', s);
    });
    const httpsPort = await listenTcp(tcpTls, o.httpsPort, o.address);
    started.push({
      name: 'https',
      description: `HTTPS: our TLS 1.3 on node:net, ALPN h2 or http/1.1; Alt-Svc: ${altSvc}`,
      port: httpsPort,
      stats: () => ({ tls: secure.stats(), http: tlsApp.stats() }),
      close: () => {
        secure.close(true);
        tcpTls.close();
        for (const s of open) s.destroy();
        open.clear();
      },
    });
    return started;
  } catch (e) {
    for (const s of started.reverse()) s.close();
    for (const s of open) s.destroy();
    throw e;
  }
}
