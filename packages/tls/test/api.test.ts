/**
 * The node:tls-shaped API (api.ts) and the pki glue (credentials.ts): our client against
 * our server over an in-memory pair and over node:net on loopback, both against node:tls
 * (OpenSSL) in each direction and with each crypto provider, node:http over our TLS both
 * ways, certificate failures as typed alerts (unknown_ca, bad_certificate for a wrong
 * host, certificate_expired), rejectUnauthorized: false, client certificates, resumption
 * through the 'session' event, ALPN, and key log lines that agree between the two ends.
 */
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { type Duplex, duplexPair } from 'node:stream';
import tls from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type ConnectOptions,
  connect,
  createServer,
  decodeSession,
  type SecureServer,
  type SecureSocket,
  type ServerOptions,
} from '../src/api.ts';
import { TlsClient } from '../src/client.ts';
import type { SessionTicket } from '../src/connection.ts';
import { certificateSigner, certificateVerifier } from '../src/credentials.ts';
import {
  type Credentials,
  createCertificateAuthority,
  createLeafCertificate,
  createStepwireCredentials,
} from '../src/pki/index.ts';
import { TlsError } from '../src/socket.ts';

const DAY = 86_400_000;
let ca: Credentials;
let leaf: Credentials;
let otherCa: Credentials;
let expired: Credentials;
let oldCa: Credentials;
let client: Credentials;

beforeAll(() => {
  const now = new Date();
  ({ ca, leaf } = createStepwireCredentials(now));
  otherCa = createCertificateAuthority({ now, commonName: 'someone else' });
  // Issued 30 days ago for 2 days by a CA from 60 days ago: expired 28 days ago.
  oldCa = createCertificateAuthority({ now: new Date(now.getTime() - 60 * DAY), commonName: 'old CA' });
  expired = createLeafCertificate(oldCa, {
    now: new Date(now.getTime() - 30 * DAY),
    dnsNames: ['stepwire.test'],
    validDays: 2,
  });
  client = createLeafCertificate(ca, {
    now,
    dnsNames: ['client.stepwire.test'],
    extKeyUsage: ['clientAuth'],
  });
});

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function serverOpts(extra: Partial<ServerOptions> = {}): ServerOptions {
  return { cert: leaf.certificatePem, key: leaf.privateKeyPem, ...extra };
}

function secureConnect(s: SecureSocket): Promise<SecureSocket> {
  return new Promise((resolve, reject) => {
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
}

/** One in-memory connection between our client and our server. */
async function pair(copts: Omit<ConnectOptions, 'socket'>, server: SecureServer) {
  const [a, b] = duplexPair();
  const accepted = once(server, 'secureConnection') as Promise<[SecureSocket]>;
  server.emit('connection', b);
  const c = connect({ socket: a, ...copts });
  cleanups.push(() => c.destroy());
  await secureConnect(c);
  const [s] = await accepted;
  return { c, s };
}

/** The client's error and the error the server saw in its handshake. */
async function failure(copts: Omit<ConnectOptions, 'socket'>, server: SecureServer) {
  const [a, b] = duplexPair();
  const serverErr = once(server, 'tlsClientError') as Promise<[TlsError]>;
  server.emit('connection', b);
  const c = connect({ socket: a, ...copts });
  const [clientErr] = (await once(c, 'error').catch((e) => [e])) as [TlsError];
  const [sErr] = await serverErr;
  return { clientErr, serverErr: sErr };
}

/** The ticket the server sent after the handshake (it may already have arrived). */
async function nextSession(s: SecureSocket): Promise<Buffer> {
  return s.getSession() ?? ((await once(s, 'session')) as [Buffer])[0];
}

function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
  });
}

function listenNet(onConn?: (s: net.Socket) => void): Promise<net.Server> {
  const srv = net.createServer(onConn);
  cleanups.push(() => srv.close());
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

function tcp(port: number): Promise<net.Socket> {
  const s = net.connect({ port, host: '127.0.0.1' });
  cleanups.push(() => s.destroy());
  return once(s, 'connect').then(() => s);
}

const portOf = (s: net.Server | tls.Server) => (s.address() as net.AddressInfo).port;

describe('connect/createServer over an in-memory pair', () => {
  it('handshake, peer certificate, ALPN, echo both ways, close', async () => {
    const server = createServer(serverOpts({ ALPNProtocols: ['h2', 'http/1.1'] }), (s) => s.pipe(s));
    const { c, s } = await pair(
      { servername: 'stepwire.test', ca: ca.certificatePem, ALPNProtocols: ['http/1.1'] },
      server,
    );
    expect(c.authorized).toBe(true);
    expect(c.authorizationError).toBeUndefined();
    expect(c.getProtocol()).toBe('TLSv1.3');
    expect(c.alpnProtocol).toBe('http/1.1');
    expect(s.alpnProtocol).toBe('http/1.1');
    expect(s.servername).toBe('stepwire.test');
    const peer = c.getPeerCertificate()!;
    expect(peer.subject.CN).toBe('stepwire.test');
    expect(peer.issuer.CN).toBe('stepwire test CA');
    expect(peer.subjectaltname).toBe('DNS:stepwire.test, IP Address:198.18.0.2, IP Address:fd00:5757::2');
    expect(peer.raw.equals(Buffer.from(leaf.certificateDer))).toBe(true);
    // As node:tls: an empty object when the peer sent no certificate.
    expect(s.getPeerCertificate()).toEqual({});
    const back = readAll(c);
    c.end('hello over our TLS');
    expect((await back).toString()).toBe('hello over our TLS');
  });

  it('an IP address as servername: no SNI sent, the certificate matched against its IP SAN', async () => {
    const server = createServer(serverOpts());
    for (const ip of ['198.18.0.2', 'fd00:5757::2']) {
      const { c, s } = await pair({ servername: ip, ca: [ca.certificateDer] }, server);
      expect(c.authorized).toBe(true);
      expect(s.servername).toBeUndefined();
    }
  });

  it('wrong CA: unknown_ca sent by the client, received by the server', async () => {
    const server = createServer(serverOpts());
    const { clientErr, serverErr } = await failure(
      { servername: 'stepwire.test', ca: otherCa.certificatePem },
      server,
    );
    expect(clientErr).toBeInstanceOf(TlsError);
    expect(clientErr).toMatchObject({ alert: 'unknown_ca', sentByUs: true });
    expect(serverErr).toMatchObject({ alert: 'unknown_ca', sentByUs: false });
    // Without `ca`, node:tls's bundled roots are the anchors: our test CA is not among them.
    const noCa = await failure({ servername: 'stepwire.test' }, server);
    expect(noCa.clientErr).toMatchObject({ alert: 'unknown_ca', sentByUs: true });
  });

  it('wrong host: bad_certificate', async () => {
    const server = createServer(serverOpts());
    const { clientErr } = await failure({ servername: 'other.test', ca: ca.certificatePem }, server);
    expect(clientErr).toMatchObject({ alert: 'bad_certificate', sentByUs: true });
    expect(clientErr.reason).toMatch(/hostname_mismatch/);
  });

  it('expired certificate: certificate_expired', async () => {
    const server = createServer({ cert: expired.certificatePem, key: expired.privateKeyPem });
    const { clientErr, serverErr } = await failure(
      { servername: 'stepwire.test', ca: oldCa.certificatePem },
      server,
    );
    expect(clientErr).toMatchObject({ alert: 'certificate_expired', sentByUs: true });
    expect(serverErr).toMatchObject({ alert: 'certificate_expired', sentByUs: false });
  });

  it('the connection clock decides validity: the expired leaf verifies at a time inside its window', async () => {
    const server = createServer({ cert: expired.certificatePem, key: expired.privateKeyPem });
    const then = expired.certificate.notBefore.getTime() + DAY;
    const { c } = await pair(
      { servername: 'stepwire.test', ca: oldCa.certificatePem, now: () => then },
      server,
    );
    expect(c.authorized).toBe(true);
  });

  it('rejectUnauthorized: false connects and reports why the chain is not trusted', async () => {
    const server = createServer(serverOpts());
    const { c } = await pair(
      { servername: 'stepwire.test', ca: otherCa.certificatePem, rejectUnauthorized: false },
      server,
    );
    expect(c.authorized).toBe(false);
    // node:tls's code for a lone leaf whose issuer we do not have; our pki's verdict beside it.
    expect(c.authorizationError).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(c.authorizationDetail).toMatchObject({ code: 'unknown_issuer', alert: 'unknown_ca' });
  });

  it('resumption: the ticket from the session event resumes on a new connection of the same server', async () => {
    const server = createServer(serverOpts({ ALPNProtocols: ['x'] }), (s) => s.resume());
    const first = await pair(
      { servername: 'stepwire.test', ca: ca.certificatePem, ALPNProtocols: ['x'] },
      server,
    );
    const ticket = await nextSession(first.c);
    expect(first.c.isSessionReused()).toBe(false);
    const second = await pair(
      { servername: 'stepwire.test', ca: ca.certificatePem, ALPNProtocols: ['x'], session: ticket },
      server,
    );
    expect(second.c.isSessionReused()).toBe(true);
    expect(second.c.authorized).toBe(true);
    expect(second.s.isSessionReused()).toBe(true);
    expect(second.c.alpnProtocol).toBe('x');
  });

  it('0-RTT: early data with the ticket arrives first in the server stream', async () => {
    const server = createServer(serverOpts({ earlyData: true }), (s) => s.pipe(s));
    const first = await pair({ servername: 'stepwire.test', ca: ca.certificatePem }, server);
    const ticket = await nextSession(first.c);
    expect(decodeSession(ticket).maxEarlyDataSize).toBeGreaterThan(0);
    const { c } = await pair(
      { servername: 'stepwire.test', ca: ca.certificatePem, session: ticket, earlyData: 'early;' },
      server,
    );
    expect(c.earlyDataAccepted).toBe(true);
    const back = readAll(c);
    c.end('late');
    expect((await back).toString()).toBe('early;late');
  });

  it('0-RTT refused or impossible: the early data is sent again after the handshake, ahead of later writes', async () => {
    const issuing = createServer(serverOpts({ earlyData: true }), (s) => s.resume());
    const first = await pair({ servername: 'stepwire.test', ca: ca.certificatePem }, issuing);
    const ticket = await nextSession(first.c);
    // Another server (another ticket key) cannot open the ticket: full handshake, 0-RTT refused.
    const other = createServer(serverOpts({ earlyData: true }), (s) => s.pipe(s));
    const refused = await pair(
      { servername: 'stepwire.test', ca: ca.certificatePem, session: ticket, earlyData: 'early;' },
      other,
    );
    expect(refused.c.earlyDataAccepted).toBe(false);
    expect(refused.c.isSessionReused()).toBe(false);
    const back = readAll(refused.c);
    refused.c.end('late');
    expect((await back).toString()).toBe('early;late');
    // No ticket at all: nothing goes early, the data simply leads the stream.
    const [a, b] = duplexPair();
    other.emit('connection', b);
    const c = connect({ socket: a, servername: 'stepwire.test', ca: ca.certificatePem, earlyData: 'first;' });
    c.write('second;');
    const all = readAll(c);
    c.end('third');
    expect((await all).toString()).toBe('first;second;third');
    expect(c.earlyDataAccepted).toBeUndefined();
  });

  it('client certificates: required and given, required and missing (certificate_required)', async () => {
    const server = createServer(serverOpts({ requestCert: true, ca: ca.certificatePem }));
    const ok = await pair(
      {
        servername: 'stepwire.test',
        ca: ca.certificatePem,
        cert: client.certificatePem,
        key: client.privateKeyPem,
      },
      server,
    );
    expect(ok.s.authorized).toBe(true);
    expect(ok.s.getPeerCertificate().subject?.CN).toBe('client.stepwire.test');
    const { serverErr } = await failure({ servername: 'stepwire.test', ca: ca.certificatePem }, server);
    expect(serverErr).toMatchObject({ alert: 'certificate_required', sentByUs: true });
  });

  it('key log: both ends log the same secrets, as lines and as keylog events', async () => {
    const clientLines: string[] = [];
    const serverLines: string[] = [];
    const events: string[] = [];
    const server = createServer(serverOpts({ keylog: (l) => serverLines.push(l) }));
    server.on('keylog', (line: Buffer) => events.push(line.toString()));
    await pair(
      { servername: 'stepwire.test', ca: ca.certificatePem, keylog: (l) => clientLines.push(l) },
      server,
    );
    const labels = (ls: string[]) => ls.map((l) => l.split(' ')[0]).sort();
    expect(labels(clientLines)).toEqual([
      'CLIENT_HANDSHAKE_TRAFFIC_SECRET',
      'CLIENT_TRAFFIC_SECRET_0',
      'EXPORTER_SECRET',
      'SERVER_HANDSHAKE_TRAFFIC_SECRET',
      'SERVER_TRAFFIC_SECRET_0',
    ]);
    expect([...serverLines].sort()).toEqual([...clientLines].sort());
    expect(events).toEqual(serverLines.map((l) => `${l}\n`));
  });

  it('a client that never finishes its handshake is cut off after handshakeTimeout', async () => {
    const server = createServer(serverOpts({ handshakeTimeout: 100 }));
    const [a, b] = duplexPair();
    const started = Date.now();
    const err = once(server, 'tlsClientError') as Promise<[Error & { code?: string }]>;
    server.emit('connection', b);
    a.write(Buffer.from([22, 3, 1])); // the start of a record header, and then nothing
    expect(server.stats()).toMatchObject({ connections: 1, handshaking: 1, timersArmed: 1 });
    const [e] = await err;
    expect(e.code).toBe('ERR_TLS_HANDSHAKE_TIMEOUT');
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    expect(b.destroyed).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(server.stats()).toEqual({ connections: 0, handshaking: 0, timersArmed: 0, handshakeTimeouts: 1 });
  });

  it('stats: a finished handshake holds no timer, and a closed session leaves nothing behind (issue 15)', async () => {
    const server = createServer(serverOpts({ handshakeTimeout: 60_000 }));
    const [a, b] = duplexPair();
    const accepted = once(server, 'secureConnection') as Promise<[SecureSocket]>;
    server.emit('connection', b);
    const c = connect({ socket: a, servername: 'stepwire.test', ca: ca.certificatePem });
    await once(c, 'secureConnect');
    const [serverSide] = await accepted;
    expect(server.stats()).toMatchObject({ connections: 1, handshaking: 0, timersArmed: 0 });
    const closed = once(serverSide, 'close');
    c.destroy();
    b.destroy();
    await closed;
    expect(server.stats()).toEqual({ connections: 0, handshaking: 0, timersArmed: 0, handshakeTimeouts: 0 });
  });

  it('the onSecureConnect callback already sees the verdict', async () => {
    const server = createServer(serverOpts());
    const [a, b] = duplexPair();
    server.emit('connection', b);
    const seen = await new Promise<[boolean, string | undefined]>((resolve) => {
      const c = connect({ socket: a, servername: 'stepwire.test', ca: ca.certificatePem }, () =>
        resolve([c.authorized, c.getPeerCertificate().subject?.CN]),
      );
      cleanups.push(() => c.destroy());
    });
    expect(seen).toEqual([true, 'stepwire.test']);
  });

  it('refuses what it does not implement instead of ignoring it', () => {
    const [a] = duplexPair();
    expect(() => connect({ socket: a, maxVersion: 'TLSv1.2' })).toThrow(/only TLSv1.3/);
    expect(() => connect({ socket: a, cipherSuites: 'TLS_RSA_WITH_RC4_128_SHA' })).toThrow(/unknown/);
    expect(() => createServer({ cert: leaf.certificatePem, key: otherCa.privateKeyPem })).toThrow(
      /does not belong/,
    );
  });

  it('the low-level form connect(transport, TlsClientOptions) still works, with the pki seams', async () => {
    const [a, b] = duplexPair();
    const server = createServer(serverOpts(), (s) => s.pipe(s));
    server.emit('connection', b);
    const c = connect(a as Duplex, {
      serverName: 'stepwire.test',
      verifier: certificateVerifier({ ca: ca.certificatePem }),
      certificate: certificateSigner(client),
    });
    expect(c.machine).toBeInstanceOf(TlsClient);
    const back = readAll(c);
    c.end('low level');
    expect((await back).toString()).toBe('low level');
  });
});

describe.each(['noble', 'node'] as const)('over node:net on loopback (%s provider)', (provider) => {
  it('our client against our server, listen() on a node:net server', async () => {
    const server = createServer(serverOpts({ provider, cipherSuites: 'TLS_CHACHA20_POLY1305_SHA256' }), (s) =>
      s.pipe(s),
    );
    const srv = await listenNet();
    server.listen(srv);
    cleanups.push(() => server.close(true));
    const c = connect({
      socket: await tcp(portOf(srv)),
      servername: 'stepwire.test',
      ca: ca.certificatePem,
      provider,
      groups: 'P-256',
    });
    await secureConnect(c);
    expect(c.getCipher()?.name).toBe('TLS_CHACHA20_POLY1305_SHA256');
    expect(c.handshake?.group).toBe('secp256r1');
    const body = Buffer.alloc(300_000, 7);
    const back = readAll(c);
    c.end(body);
    expect((await back).equals(body)).toBe(true);
  });

  it('our client against a node:tls server (ALPN, resumption through session)', async () => {
    const srv = tls.createServer(
      {
        cert: leaf.certificatePem,
        key: leaf.privateKeyPem,
        ALPNProtocols: ['http/1.1'],
        minVersion: 'TLSv1.3',
      },
      (s) => s.end(`${s.getProtocol()} ${s.alpnProtocol} ${s.isSessionReused()}`),
    );
    cleanups.push(() => srv.close());
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const opts = {
      servername: 'stepwire.test',
      ca: ca.certificatePem,
      provider,
      ALPNProtocols: ['http/1.1'],
    };
    const c = connect({ socket: await tcp(portOf(srv)), ...opts });
    const ticket = once(c, 'session') as Promise<[SessionTicket]>;
    expect((await readAll(c)).toString()).toBe('TLSv1.3 http/1.1 false');
    const c2 = connect({ socket: await tcp(portOf(srv)), ...opts, session: (await ticket)[0] });
    expect((await readAll(c2)).toString()).toBe('TLSv1.3 http/1.1 true');
    expect(c2.isSessionReused()).toBe(true);
  });

  it('a node:tls client against our server (ALPN, client certificate, resumption)', async () => {
    const server = createServer(
      serverOpts({ provider, ALPNProtocols: ['http/1.1'], requestCert: true, ca: ca.certificatePem }),
      (s) => s.end(`${s.authorized} ${s.getPeerCertificate().subject?.CN} ${s.isSessionReused()}`),
    );
    const srv = await listenNet();
    server.listen(srv);
    const opts: tls.ConnectionOptions = {
      port: portOf(srv),
      host: '127.0.0.1',
      servername: 'stepwire.test',
      ca: ca.certificatePem,
      cert: client.certificatePem,
      key: client.privateKeyPem,
      ALPNProtocols: ['http/1.1'],
    };
    const n = tls.connect(opts);
    cleanups.push(() => n.destroy());
    const session = once(n, 'session') as Promise<[Buffer]>;
    const body = (await readAll(n)).toString();
    expect(n.authorized).toBe(true);
    expect(n.alpnProtocol).toBe('http/1.1');
    expect(n.getProtocol()).toBe('TLSv1.3');
    expect(body).toBe('true client.stepwire.test false');
    const n2 = tls.connect({ ...opts, session: (await session)[0] });
    cleanups.push(() => n2.destroy());
    expect((await readAll(n2)).toString()).toBe('true undefined true');
    expect(n2.isSessionReused()).toBe(true);
  });

  it('node:http over our TLS both ways: an https client to our server, our client to an https server', async () => {
    const app = http.createServer((req, res) => {
      expect(req.socket.remoteAddress).toBe('127.0.0.1');
      res.end(`${req.method} ${req.url} via ${req.headers.host}`);
    });
    const server = createServer(serverOpts({ provider, ALPNProtocols: ['http/1.1'] }), (s) =>
      app.emit('connection', s),
    );
    const srv = await listenNet();
    server.listen(srv);
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      https
        .get(
          {
            port: portOf(srv),
            host: '127.0.0.1',
            servername: 'stepwire.test',
            ca: ca.certificatePem,
            path: '/a',
            agent: false,
          },
          resolve,
        )
        .on('error', reject);
    });
    expect((await readAll(res)).toString()).toBe(`GET /a via 127.0.0.1:${portOf(srv)}`);
    // node:http times idle keep-alive connections through the TLS socket's setTimeout.
    app.keepAliveTimeout = 150;
    const idle = connect({
      socket: await tcp(portOf(srv)),
      servername: 'stepwire.test',
      ca: ca.certificatePem,
      provider,
    });
    const all = readAll(idle);
    idle.write('GET /k HTTP/1.1\r\nhost: stepwire.test\r\n\r\n');
    const started = Date.now();
    expect((await all).toString()).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*GET \/k via stepwire\.test$/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);

    const hs = https.createServer({ cert: leaf.certificatePem, key: leaf.privateKeyPem }, (req, r) =>
      r.end(`${req.url} over ${(req.socket as tls.TLSSocket).getProtocol()}`),
    );
    cleanups.push(() => hs.close());
    await new Promise<void>((r) => hs.listen(0, '127.0.0.1', r));
    const sock = await tcp(portOf(hs));
    const res2 = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http
        .request(
          {
            createConnection: () =>
              connect({ socket: sock, servername: 'stepwire.test', ca: ca.certificatePem, provider }),
            path: '/b',
            host: 'stepwire.test',
          },
          resolve,
        )
        .on('error', reject)
        .end();
    });
    expect(res2.statusCode).toBe(200);
    expect((await readAll(res2)).toString()).toBe('/b over TLSv1.3');
  });
});
