/**
 * Our TLS 1.3 stack (@stepwire/tls TlsSocket over the sans-I/O machines, our pki for
 * certificates) on kernel TCP: node:net sockets on loopback. The interop tests talk to the
 * peers through these two functions, so they read like a node:tls program:
 *
 *   const s = await ourConnect({ port, ca: fx.server['P-256'].ca, cipherSuites: [0x1301] });
 *   const srv = await startOurServer({ identity: fx.server.ed25519.leaf, mode: 'http' });
 *
 * The glue from pki to the handshake's CertificateVerifier/CertificateSigner seams is in
 * tls-pki.ts (re-exported here).
 */
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import {
  AntiReplayCache,
  accept,
  type CryptoProvider,
  connect,
  type SessionTicket,
  type TlsSocket,
} from '@stepwire/tls';
import { TraceBus } from '@stepwire/wire';
import { handleRequest } from '../../packages/cli/src/services/http-app.ts';
import type { Credentials } from '../../packages/tls/src/pki/index.ts';
import { normalizeGroup, type PemIdentity, SERVER_NAME } from './tls-peers.ts';
import { pkiSigner, pkiVerifier, type Trust } from './tls-pki.ts';

export { pkiSigner, pkiVerifier };

/** Opens a node:net connection to 127.0.0.1:port and resolves once it is connected. */
export function tcpConnect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

export interface OurClientOptions {
  port: number;
  /** SNI and the name checked against the certificate; default 'stepwire.test'. */
  servername?: string;
  /** The CA (or CAs) to trust. */
  ca: Trust;
  cipherSuites?: readonly number[];
  groups?: readonly number[];
  alpn?: readonly string[];
  session?: SessionTicket;
  earlyData?: Uint8Array;
  /** Our client certificate, for servers that ask for one. */
  cert?: PemIdentity | Credentials;
  /** An external PSK (RFC 8446 §2.2); the hash defaults to SHA-256. */
  externalPsk?: { identity: Uint8Array; key: Uint8Array };
  crypto?: CryptoProvider;
  keyLog?: (line: string) => void;
  timeoutMs?: number;
}

/** Facts our side reports about a connection, in the harness's vocabulary. */
export interface OurHandshake {
  cipher: string;
  group?: string;
  resumed: boolean;
  alpn?: string;
  peerCertificates: number;
  /** A HelloRetryRequest was sent (server) or received (client), from our trace. */
  helloRetry: boolean;
  /** Handshake messages in order, e.g. 'out client_hello', 'in server_hello', from our trace. */
  messages: string[];
}

/** A trace bus that records the handshake messages one connection sent and received. */
function messageLog(): { trace: TraceBus; messages: string[] } {
  const trace = new TraceBus();
  const messages: string[] = [];
  trace.on((e) => {
    const type = e.fields?.msgType;
    if (e.layer === 'tls' && typeof type === 'string' && (e.dir === 'in' || e.dir === 'out')) {
      messages.push(`${e.dir} ${type}`);
    }
  });
  return { trace, messages };
}

export interface OurClient {
  socket: TlsSocket;
  tcp: net.Socket;
  handshake: OurHandshake;
  /** Every session ticket received so far (they arrive after the handshake). */
  tickets: SessionTicket[];
  /** Resolves with the next ticket (or the latest one if one already arrived). */
  ticket(timeoutMs?: number): Promise<SessionTicket>;
  /** With `earlyData`: whether the server accepted it (RFC 8446 §4.2.10); undefined when none was offered. */
  earlyDataAccepted?: boolean;
}

function describe(h: NonNullable<TlsSocket['handshake']>, messages: string[]): OurHandshake {
  return {
    helloRetry: messages.some((m) => m.endsWith(' hello_retry_request')),
    messages,
    cipher: h.cipherSuite,
    ...(h.group ? { group: normalizeGroup(h.group) } : {}),
    resumed: h.resumed,
    ...(h.alpn ? { alpn: h.alpn } : {}),
    peerCertificates: h.peerCertificates.length,
  };
}

/** Our client over kernel TCP; resolves after the handshake, rejects with the TlsError. */
export async function ourConnect(opts: OurClientOptions): Promise<OurClient> {
  const tcp = await tcpConnect(opts.port);
  const log = messageLog();
  const socket = connect(tcp, {
    trace: log.trace,
    serverName: opts.servername ?? SERVER_NAME,
    verifier: pkiVerifier(opts.ca),
    ...(opts.cipherSuites ? { cipherSuites: opts.cipherSuites } : {}),
    ...(opts.groups ? { groups: opts.groups } : {}),
    ...(opts.alpn ? { alpnProtocols: opts.alpn } : {}),
    ...(opts.session ? { session: opts.session } : {}),
    ...(opts.earlyData ? { earlyData: opts.earlyData } : {}),
    ...(opts.cert ? { certificate: pkiSigner(opts.cert) } : {}),
    ...(opts.externalPsk ? { externalPsk: opts.externalPsk } : {}),
    ...(opts.crypto ? { crypto: opts.crypto } : {}),
    ...(opts.keyLog ? { keyLog: opts.keyLog } : {}),
  });
  let earlyDataAccepted: boolean | undefined;
  socket.on('earlyDataStatus', (accepted: boolean) => {
    earlyDataAccepted = accepted;
  });
  const tickets: SessionTicket[] = [];
  const ticketWaiters: ((t: SessionTicket) => void)[] = [];
  socket.on('session', (t: SessionTicket) => {
    tickets.push(t);
    for (const w of ticketWaiters.splice(0)) w(t);
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`our TLS handshake to port ${opts.port} timed out`));
    }, opts.timeoutMs ?? 10_000);
    socket.once('secure', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      // As with node:tls above: later errors reach the test through readUntil or its own listener.
      socket.on('error', () => {});
      resolve();
    });
    const onError = (e: Error): void => {
      clearTimeout(timer);
      reject(e);
    };
    socket.once('error', onError);
  });
  return {
    socket,
    tcp,
    handshake: describe(socket.handshake!, log.messages),
    tickets,
    get earlyDataAccepted() {
      return earlyDataAccepted;
    },
    ticket: (timeoutMs = 5000) =>
      tickets.length > 0
        ? Promise.resolve(tickets.at(-1)!)
        : new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error('no session ticket arrived')), timeoutMs);
            ticketWaiters.push((t) => {
              clearTimeout(timer);
              resolve(t);
            });
          }),
  };
}

/** Our client's handshake failure, for negative tests: the TlsError (alert, sentByUs) or the error thrown. */
export async function ourConnectError(
  opts: OurClientOptions,
): Promise<Error & { alert?: string; sentByUs?: boolean }> {
  try {
    const c = await ourConnect(opts);
    c.socket.destroy();
  } catch (e) {
    return e as Error;
  }
  throw new Error('the handshake succeeded but was expected to fail');
}

export interface OurServerOptions {
  identity: PemIdentity | Credentials;
  /** 'echo': every byte back; 'http': node:http with stepwire's routes over our TLS socket. */
  mode?: 'echo' | 'http';
  cipherSuites?: readonly number[];
  groups?: readonly number[];
  alpn?: readonly string[];
  /** Ask for a client certificate chaining to this CA. */
  clientAuth?: { ca: Trust; required?: boolean };
  /** Allow 0-RTT (max_early_data_size in our tickets) with a shared anti-replay cache. */
  maxEarlyData?: number;
  ticketsToSend?: number;
  /** External PSKs by identity (RFC 8446 §2.2). */
  externalPsks?: ReadonlyMap<string, Uint8Array>;
  /** 'preference': our group order wins even when the client's share is another group we support. */
  groupSelection?: 'shares' | 'preference';
  crypto?: CryptoProvider;
  keyLog?: (line: string) => void;
}

export interface OurServer {
  port: number;
  /** What each completed handshake negotiated, in order. */
  handshakes: OurHandshake[];
  /** Every accepted TLS socket, in order. */
  sockets: TlsSocket[];
  /** 0-RTT data the server accepted, per chunk, in order of arrival. */
  earlyData: Uint8Array[];
  /** Handshake and connection errors (TlsError carries the alert). */
  errors: (Error & { alert?: string; sentByUs?: boolean })[];
  close(): Promise<void>;
}

/**
 * Our server on 127.0.0.1 (a free port) over kernel TCP. Every connection shares one ticket
 * key (so tickets from one connection resume on the next) and one anti-replay cache.
 */
export function startOurServer(opts: OurServerOptions): Promise<OurServer> {
  const handshakes: OurHandshake[] = [];
  const sockets: TlsSocket[] = [];
  const errors: OurServer['errors'] = [];
  const earlyData: Uint8Array[] = [];
  const ticketKey = crypto.getRandomValues(new Uint8Array(32));
  const antiReplay = new AntiReplayCache();
  const app = http.createServer(handleRequest);
  const tcpSockets = new Set<net.Socket>();
  const server = net.createServer((tcp) => {
    tcpSockets.add(tcp);
    tcp.on('close', () => tcpSockets.delete(tcp));
    tcp.on('error', () => {});
    const log = messageLog();
    const socket = accept(tcp as Duplex, {
      trace: log.trace,
      signer: pkiSigner(opts.identity),
      ticketKey,
      ...(opts.cipherSuites ? { cipherSuites: opts.cipherSuites } : {}),
      ...(opts.groups ? { groups: opts.groups } : {}),
      ...(opts.alpn ? { alpnProtocols: opts.alpn } : {}),
      ...(opts.clientAuth
        ? {
            clientAuth: {
              verifier: pkiVerifier(opts.clientAuth.ca, 'clientAuth'),
              required: opts.clientAuth.required ?? true,
            },
          }
        : {}),
      ...(opts.maxEarlyData ? { maxEarlyData: opts.maxEarlyData, antiReplay } : {}),
      ...(opts.ticketsToSend !== undefined ? { ticketsToSend: opts.ticketsToSend } : {}),
      ...(opts.groupSelection ? { groupSelection: opts.groupSelection } : {}),
      ...(opts.externalPsks
        ? {
            externalPsk: (identity: Uint8Array) => {
              const key = opts.externalPsks!.get(Buffer.from(identity).toString('latin1'));
              return key ? { key } : undefined;
            },
          }
        : {}),
      ...(opts.crypto ? { crypto: opts.crypto } : {}),
      ...(opts.keyLog ? { keyLog: opts.keyLog } : {}),
    });
    sockets.push(socket);
    socket.on('error', (e) => errors.push(e));
    socket.once('secure', () => {
      handshakes.push(describe(socket.handshake!, log.messages));
    });
    socket.on('earlyData', (d: Uint8Array) => earlyData.push(d));
    if (opts.mode === 'http') {
      app.emit('connection', socket);
    } else {
      // 0-RTT data comes as an event, not in the stream: the echo answers it too (queued until
      // the handshake completes).
      socket.on('earlyData', (d: Uint8Array) => socket.write(d));
      socket.on('data', (d: Buffer) => socket.write(d));
      socket.on('end', () => socket.end());
    }
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        handshakes,
        sockets,
        errors,
        earlyData,
        close: () =>
          new Promise((r) => {
            for (const s of tcpSockets) s.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}

/** Reads from our socket until `re` matches (or the stream ends when `re` is undefined). */
export { readUntil } from './tls-node.ts';

/** Retries an assertion until it passes or `timeoutMs` runs out (then throws its last error). */
export async function eventually(check: () => void, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      check();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
