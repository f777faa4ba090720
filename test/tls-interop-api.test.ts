/**
 * The node:tls-shaped face of our TLS (connect({ socket, ... }), createServer(...).listen())
 * against the independent peers over kernel TCP: PEM in, node:tls-style facts out, and those
 * facts checked against what OpenSSL, GnuTLS and curl say.
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import {
  type ConnectOptions,
  connect,
  createServer,
  type SecureServer,
  type SecureSocket,
  type ServerOptions,
} from '@stepwire/tls';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { handleRequest } from '../packages/cli/src/services/http-app.ts';
import { nextSession, nodeTlsConnect } from './support/tls-node.ts';
import { readUntil, tcpConnect } from './support/tls-ours.ts';
import {
  runCurl,
  runGnutlsClient,
  runOpensslClient,
  scratchDir,
  startOpensslServer,
  stopAllPeers,
  tlsFixtures,
  writeScratchFile,
} from './support/tls-peers.ts';

afterAll(stopAllPeers);

const fx = tlsFixtures();
const p256 = fx.server['P-256'];

/** Connects with the node:tls-style API over a fresh node:net socket; resolves on 'secureConnect'. */
async function apiConnect(port: number, options: Omit<ConnectOptions, 'socket'>): Promise<SecureSocket> {
  const socket = await tcpConnect(port);
  const s = connect({ socket, servername: 'stepwire.test', ...options });
  await new Promise<void>((resolve, reject) => {
    s.once('secureConnect', () => {
      s.off('error', reject);
      s.on('error', () => {});
      resolve();
    });
    s.once('error', reject);
  });
  return s;
}

async function apiConnectError(
  port: number,
  options: Omit<ConnectOptions, 'socket'>,
): Promise<Error & { alert?: string; sentByUs?: boolean }> {
  try {
    (await apiConnect(port, options)).destroy();
  } catch (e) {
    return e as Error;
  }
  throw new Error('the handshake succeeded but was expected to fail');
}

interface Listening {
  port: number;
  server: SecureServer;
  clientErrors: Error[];
}
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

/** createServer(options).listen(a node:net server on 127.0.0.1); echo unless `onSecure` is given. */
async function apiServer(options: ServerOptions, onSecure?: (s: SecureSocket) => void): Promise<Listening> {
  const server = createServer(
    options,
    onSecure ??
      ((s) => {
        s.on('error', () => {});
        s.pipe(s);
      }),
  );
  const clientErrors: Error[] = [];
  server.on('tlsClientError', (e: Error) => clientErrors.push(e));
  const tcp = net.createServer();
  const raw = new Set<net.Socket>();
  tcp.on('connection', (s: net.Socket) => {
    raw.add(s);
    s.on('error', () => {});
    s.on('close', () => raw.delete(s));
  });
  server.listen(tcp);
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  closers.push(
    () =>
      new Promise((r) => {
        server.close(true);
        for (const s of raw) s.destroy();
        tcp.close(() => r());
      }),
  );
  return { port: (tcp.address() as net.AddressInfo).port, server, clientErrors };
}

describe('connect({ socket, ... }) against openssl s_server', () => {
  it('PEM trust anchors, suite and group by name, node:tls-style accessors agree with OpenSSL', async () => {
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'rev' });
    const s = await apiConnect(srv.port, {
      ca: p256.ca.certPem,
      cipherSuites: 'TLS_CHACHA20_POLY1305_SHA256',
      groups: 'P-256',
      provider: 'node',
    });
    expect(s.authorized).toBe(true);
    expect(s.getProtocol()).toBe('TLSv1.3');
    expect(s.getCipher()?.standardName).toBe('TLS_CHACHA20_POLY1305_SHA256');
    const peer = s.getPeerCertificate()!;
    const fingerprint = execFileSync(
      'openssl',
      ['x509', '-in', p256.leaf.certFile, '-noout', '-fingerprint', '-sha256'],
      {
        encoding: 'utf8',
      },
    );
    expect(fingerprint.trim()).toBe(`sha256 Fingerprint=${peer.fingerprint256}`);
    const text = execFileSync(
      'openssl',
      ['x509', '-in', p256.leaf.certFile, '-noout', '-ext', 'subjectAltName'],
      {
        encoding: 'utf8',
      },
    );
    expect(text).toContain(peer.subjectaltname!.replace(/IP Address:::1/, 'IP Address:0:0:0:0:0:0:0:1'));
    expect(peer.subject.CN).toBe('stepwire.test');
    s.write('api\n');
    expect(await readUntil(s, /ipa/)).toContain('ipa');
    s.end();
    await srv.process.waitFor(/CONNECTION CLOSED/);
    expect(srv.facts().cipher).toBe('TLS_CHACHA20_POLY1305_SHA256');
    await srv.stop();
  });

  it('without `ca` the default trust store (node:tls root certificates) refuses our test CA: unknown_ca', async () => {
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'rev' });
    const err = await apiConnectError(srv.port, {});
    expect(err).toMatchObject({ name: 'TlsError', alert: 'unknown_ca', sentByUs: true });
    await srv.stop();
  });

  it('rejectUnauthorized: false connects to an untrusted server and says why in authorizationError', async () => {
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'rev' });
    const s = await apiConnect(srv.port, { ca: fx.unrelatedCa.certPem, rejectUnauthorized: false });
    expect(s.authorized).toBe(false);
    const ours = s.authorizationError;
    expect(s.authorizationDetail).toMatchObject({ code: 'unknown_issuer', alert: 'unknown_ca' });
    s.destroy();
    // Node's string code: node:tls itself, against the same server, is the oracle — and our
    // pki's verdict beside it.
    const nodeSays = await new Promise<string>((resolve, reject) => {
      const c = tls.connect(
        {
          port: srv.port,
          host: '127.0.0.1',
          servername: 'stepwire.test',
          ca: fx.unrelatedCa.certPem,
          rejectUnauthorized: false,
        },
        () => {
          resolve(String(c.authorizationError));
          c.destroy();
        },
      );
      c.on('error', reject);
    });
    expect(ours).toBe(nodeSays);
    await srv.stop();
  });

  it("keylog events: the lines equal s_server's -keylogfile", async () => {
    const keylogFile = join(scratchDir('keylog'), 'server.keys');
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'rev', keylogFile });
    const lines: string[] = [];
    const socket = await tcpConnect(srv.port);
    const s = connect({ socket, servername: 'stepwire.test', ca: p256.ca.certPem });
    s.on('keylog', (b: Buffer) => lines.push(b.toString()));
    await new Promise((r) => s.once('secureConnect', r));
    s.write('k\n');
    await readUntil(s, /k/);
    s.end();
    await srv.process.waitFor(/CONNECTION CLOSED/);
    const norm = (t: string) =>
      t
        .split('\n')
        .filter((l) => /^[A-Z_0-9]+ [0-9a-f]{64} /i.test(l))
        .map((l) => l.toLowerCase())
        .sort();
    expect(lines.every((l) => l.endsWith('\n'))).toBe(true);
    expect(norm(lines.join(''))).toEqual(norm(readFileSync(keylogFile, 'utf8')));
    await srv.stop();
  });

  it("'session' then { session, earlyData }: s_server -early_data accepts the 0-RTT data", async () => {
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'interactive', earlyData: true });
    const socket = await tcpConnect(srv.port);
    const first = connect({ socket, servername: 'stepwire.test', ca: p256.ca.certPem });
    const session = await new Promise<ConnectOptions['session']>((r) => first.once('session', r));
    first.end();
    await srv.process.waitFor(/DONE/);
    const mark = srv.process.mark();
    const second = await apiConnect(srv.port, {
      ca: p256.ca.certPem,
      session,
      earlyData: 'early via the api\n',
    });
    expect(second.isSessionReused()).toBe(true);
    expect(second.earlyDataAccepted).toBe(true);
    await srv.process.waitFor(/early via the api/, { since: mark });
    second.destroy();
    await srv.stop();
  });

  it('client certificate from PEM: s_server -Verify 1 sees it', async () => {
    const srv = await startOpensslServer({
      ...p256.leaf,
      mode: 'www',
      requireClientCert: { caFile: fx.client.ca.certFile },
    });
    const s = await apiConnect(srv.port, {
      ca: p256.ca.certPem,
      cert: fx.client.leaf.certPem,
      key: fx.client.leaf.keyPem,
      ALPNProtocols: ['http/1.1'],
    });
    s.write('GET / HTTP/1.0\r\n\r\n');
    const page = await readUntil(s);
    s.end();
    expect(page).toContain('stepwire test client');
    await srv.stop();
  });
});

describe('createServer(...).listen(net.Server) against peer clients', () => {
  it('s_client: our certificate from PEM (RSA), suite by name; the server side reports what s_client saw', async () => {
    let seen: SecureSocket | undefined;
    const srv = await apiServer(
      {
        cert: fx.server.rsa2048.leaf.certPem,
        key: fx.server.rsa2048.leaf.keyPem,
        cipherSuites: 'TLS_AES_256_GCM_SHA384',
        provider: 'noble',
      },
      (s) => {
        seen = s;
        s.on('error', () => {});
        s.pipe(s);
      },
    );
    const run = await runOpensslClient({
      port: srv.port,
      caFile: fx.server.rsa2048.ca.certFile,
      input: 'hi\n',
      until: /^hi$/m,
    });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.facts).toMatchObject({ cipher: 'TLS_AES_256_GCM_SHA384', verifyOk: true });
    expect(seen?.getCipher()?.standardName).toBe('TLS_AES_256_GCM_SHA384');
    expect(seen?.servername).toBe('stepwire.test');
  });

  it('requestCert: s_client -cert is verified, getPeerCertificate() on our side names it', async () => {
    let seen: SecureSocket | undefined;
    const srv = await apiServer(
      { cert: p256.leaf.certPem, key: p256.leaf.keyPem, requestCert: true, ca: fx.client.ca.certPem },
      (s) => {
        seen = s;
        s.on('error', () => {});
        s.pipe(s);
      },
    );
    const run = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      certFile: fx.client.leaf.certFile,
      keyFile: fx.client.leaf.keyFile,
      input: 'x\n',
      until: /^x$/m,
    });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(seen?.authorized).toBe(true);
    expect(seen?.getPeerCertificate()?.subject.CN).toBe('stepwire test client');
  });

  it('requestCert with rejectUnauthorized: false: an untrusted client certificate gets in, authorized is false', async () => {
    let seen: SecureSocket | undefined;
    const srv = await apiServer(
      {
        cert: p256.leaf.certPem,
        key: p256.leaf.keyPem,
        requestCert: true,
        rejectUnauthorized: false,
        ca: fx.unrelatedCa.certPem,
      },
      (s) => {
        seen = s;
        s.on('error', () => {});
        s.pipe(s);
      },
    );
    const run = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      certFile: fx.client.leaf.certFile,
      keyFile: fx.client.leaf.keyFile,
      input: 'x\n',
      until: /^x$/m,
    });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(seen?.authorized).toBe(false);
    expect(seen?.authorizationDetail?.alert).toBe('unknown_ca');
  });

  it('earlyData: true — s_client -early_data arrives as ordinary readable data and is echoed', async () => {
    const srv = await apiServer({ cert: p256.leaf.certPem, key: p256.leaf.keyPem, earlyData: true });
    const sess = join(scratchDir('sess'), 'session.pem');
    const first = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      sessOut: sess,
      input: 'first\n',
      until: /^first$/m,
      lingerMs: 100,
    });
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const early = writeScratchFile('early.txt', 'early through the api\n');
    const second = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      sessIn: sess,
      earlyDataFile: early,
      until: /^early through the api$/m,
    });
    expect(second.facts).toMatchObject({ reused: true, earlyData: 'accepted' });
    expect(second.stdout).toMatch(/^early through the api$/m);
  });

  it("curl: node:http on 'secureConnection' sockets, two fresh connections, the second resumed", async () => {
    const app = http.createServer(handleRequest);
    const srv = await apiServer(
      { cert: p256.leaf.certPem, key: p256.leaf.keyPem, ALPNProtocols: ['http/1.1'] },
      (s) => app.emit('connection', s),
    );
    const run = await runCurl({
      port: srv.port,
      caFile: p256.ca.certFile,
      paths: ['/', '/'],
      freshConnections: true,
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.transfers.map((t) => t.http_code)).toEqual([200, 200]);
    expect(run.connections.map((c) => c.reused)).toEqual([false, true]);
    expect(run.connections[0]?.alpn).toBe('http/1.1');
  });

  it('gnutls-cli --resume against createServer', async () => {
    const srv = await apiServer({ cert: fx.server.ed25519.leaf.certPem, key: fx.server.ed25519.leaf.keyPem });
    const run = await runGnutlsClient({
      port: srv.port,
      caFile: fx.server.ed25519.ca.certFile,
      resume: true,
      input: 'g\n',
      until: /^g$/m,
    });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.connections.map((c) => c.reused)).toEqual([false, true]);
  });

  it('node:tls resumes a ticket of createServer (one ticket key per server)', async () => {
    const srv = await apiServer({ cert: p256.leaf.certPem, key: p256.leaf.keyPem });
    const a = await nodeTlsConnect({ port: srv.port, ca: p256.ca.certPem });
    const ticket = nextSession(a);
    a.write('a\n');
    await readUntil(a, /a/);
    const session = await ticket;
    a.end();
    const b = await nodeTlsConnect({ port: srv.port, ca: p256.ca.certPem, session });
    expect(b.isSessionReused()).toBe(true);
    b.end();
  });

  it("a handshake that fails is a 'tlsClientError' with the alert", async () => {
    const srv = await apiServer({
      cert: p256.leaf.certPem,
      key: p256.leaf.keyPem,
      cipherSuites: 'TLS_AES_128_GCM_SHA256',
    });
    // Wait for the event itself rather than sleeping: it may come after s_client has exited.
    const failed = once(srv.server, 'tlsClientError');
    const run = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      ciphersuites: 'TLS_AES_256_GCM_SHA384',
      input: 'x\n',
      until: /^x$/m,
    });
    expect(run.facts.alertsReceived).toEqual(['handshake_failure']);
    const [error] = await failed;
    expect(srv.clientErrors).toEqual([error]);
    expect(error).toMatchObject({
      name: 'TlsError',
      alert: 'handshake_failure',
      sentByUs: true,
    });
  });
});
