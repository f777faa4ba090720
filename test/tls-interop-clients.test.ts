/**
 * Our TLS 1.3 server behind node:http (stepwire's HTTP routes) against real clients — curl
 * and node:tls — and our client against a node:tls server, all over kernel TCP on loopback.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { patternChunk } from '../packages/cli/src/services/http-app.ts';
import { nextSession, nodeTlsConnect, startNodeTlsServer } from './support/tls-node.ts';
import { eventually, ourConnect, ourConnectError, readUntil, startOurServer } from './support/tls-ours.ts';
import {
  GROUP_CODE,
  GROUPS,
  KEY_KINDS,
  OPENSSL_GROUP,
  runCurl,
  SUITE_CODE,
  SUITES,
  stopAllPeers,
  tlsFixtures,
} from './support/tls-peers.ts';

afterAll(stopAllPeers);

const fx = tlsFixtures();
const p256 = fx.server['P-256'];
const HELLO = /^Hello from stepwire/;
const NODE_GROUP: Record<string, string> = { x25519: 'X25519', 'P-256': 'prime256v1' };

describe('curl --tlsv1.3 vs our server (node:http on our TLS socket)', () => {
  for (const suite of SUITES) {
    for (const group of GROUPS) {
      it(`${suite} over ${group}: GET / is 200`, async () => {
        const srv = await startOurServer({
          identity: p256.leaf,
          mode: 'http',
          cipherSuites: [SUITE_CODE[suite]],
          groups: [GROUP_CODE[group]],
        });
        const run = await runCurl({
          port: srv.port,
          caFile: p256.ca.certFile,
          ciphersuites: suite,
          curves: OPENSSL_GROUP[group],
        });
        expect(run.code, run.stderr).toBe(0);
        expect(run.stdout).toMatch(HELLO);
        expect(run.transfers[0]).toMatchObject({ http_code: 200, ssl_verify_result: 0 });
        expect(run.facts).toMatchObject({
          protocol: 'TLSv1.3',
          cipher: suite,
          verifyOk: true,
          helloRetry: false,
        });
        expect(srv.handshakes[0]).toMatchObject({ cipher: suite, group });
        await srv.close();
      });
    }
  }

  for (const kind of KEY_KINDS) {
    it(`curl verifies our ${kind} certificate`, async () => {
      const srv = await startOurServer({ identity: fx.server[kind].leaf, mode: 'http' });
      const run = await runCurl({ port: srv.port, caFile: fx.server[kind].ca.certFile });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(HELLO);
      await srv.close();
    });
  }

  it('HelloRetryRequest: curl offers x25519 first, our server wants P-256', async () => {
    const srv = await startOurServer({ identity: p256.leaf, mode: 'http', groups: [GROUP_CODE['P-256']] });
    const run = await runCurl({ port: srv.port, caFile: p256.ca.certFile, curves: 'X25519:P-256' });
    expect(run.code, run.stderr).toBe(0);
    expect(run.facts.helloRetry).toBe(true);
    expect(srv.handshakes[0]).toMatchObject({ group: 'P-256', helloRetry: true });
    await srv.close();
  });

  it('resumption: a second connection in the same curl run resumes (no Certificate message)', async () => {
    const srv = await startOurServer({ identity: p256.leaf, mode: 'http' });
    const run = await runCurl({
      port: srv.port,
      caFile: p256.ca.certFile,
      paths: ['/', '/'],
      freshConnections: true,
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.transfers.map((t) => t.http_code)).toEqual([200, 200]);
    expect(run.connections.map((c) => c.reused)).toEqual([false, true]);
    expect(srv.handshakes.map((h) => h.resumed)).toEqual([false, true]);
    await srv.close();
  });

  it('bulk: 4 MB from /bytes arrive intact (many full records, backpressure)', async () => {
    const srv = await startOurServer({ identity: p256.leaf, mode: 'http' });
    const n = 4 * 1024 * 1024;
    const run = await runCurl({
      port: srv.port,
      caFile: p256.ca.certFile,
      paths: [`/bytes/${n}`],
      extraArgs: ['-o', '-'],
      timeoutMs: 30_000,
    });
    expect(run.code, run.stderr.slice(-2000)).toBe(0);
    const body = Buffer.from(run.stdout, 'latin1');
    expect(body.length).toBe(n);
    expect(body.equals(patternChunk(0, n))).toBe(true);
    await srv.close();
  });

  it('POST /sha256: a 1 MB request body crosses our server intact', async () => {
    const srv = await startOurServer({ identity: p256.leaf, mode: 'http' });
    const body = 'stepwire!'.repeat(116_509);
    const run = await runCurl({
      port: srv.port,
      caFile: p256.ca.certFile,
      paths: ['/sha256'],
      data: body,
      timeoutMs: 30_000,
    });
    expect(run.code, run.stderr.slice(-2000)).toBe(0);
    expect(run.stdout.trim()).toBe(createHash('sha256').update(body).digest('hex'));
    await srv.close();
  });

  it('client certificate: curl --cert/--key, our server verifies it', async () => {
    const srv = await startOurServer({ identity: p256.leaf, mode: 'http', clientAuth: { ca: fx.client.ca } });
    const run = await runCurl({
      port: srv.port,
      caFile: p256.ca.certFile,
      certFile: fx.client.leaf.certFile,
      keyFile: fx.client.leaf.keyFile,
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(HELLO);
    expect(srv.handshakes[0]?.peerCertificates).toBe(1);
    await srv.close();
  });

  it('a certificate for another name: curl refuses (exit 60) and names the mismatch', async () => {
    const srv = await startOurServer({ identity: fx.wrongName, mode: 'http' });
    const run = await runCurl({ port: srv.port, caFile: p256.ca.certFile });
    expect(run.code).toBe(60);
    expect(run.stderr).toMatch(/no alternative certificate subject name matches|does not match/);
    expect(run.transfers[0]?.http_code).toBe(0);
    await srv.close();
  });
});

describe('node:tls client vs our server', () => {
  for (const suite of SUITES) {
    for (const group of GROUPS) {
      it(`${suite} over ${group}: echo`, async () => {
        const srv = await startOurServer({
          identity: p256.leaf,
          cipherSuites: [SUITE_CODE[suite]],
          groups: [GROUP_CODE[group]],
        });
        const s = await nodeTlsConnect({
          port: srv.port,
          ca: p256.ca.certPem,
          ecdhCurve: OPENSSL_GROUP[group],
        });
        expect(s.getCipher().standardName).toBe(suite);
        expect(s.getEphemeralKeyInfo()).toMatchObject({ name: NODE_GROUP[group] });
        s.write('node to stepwire\n');
        expect(await readUntil(s, /node to stepwire/)).toContain('node to stepwire');
        s.end();
        expect(srv.handshakes[0]).toMatchObject({ cipher: suite, group });
        await srv.close();
      });
    }
  }

  it('resumption: node offers our ticket and isSessionReused()', async () => {
    const srv = await startOurServer({ identity: p256.leaf });
    const first = await nodeTlsConnect({ port: srv.port, ca: p256.ca.certPem });
    const ticket = nextSession(first);
    first.write('one\n');
    await readUntil(first, /one/);
    const session = await ticket;
    first.end();
    const second = await nodeTlsConnect({ port: srv.port, ca: p256.ca.certPem, session });
    expect(second.isSessionReused()).toBe(true);
    second.write('two\n');
    expect(await readUntil(second, /two/)).toContain('two');
    second.end();
    expect(srv.handshakes.map((h) => h.resumed)).toEqual([false, true]);
    await srv.close();
  });

  it('HelloRetryRequest: node offers an x25519 share, our server wants P-256', async () => {
    const srv = await startOurServer({ identity: p256.leaf, groups: [GROUP_CODE['P-256']] });
    const s = await nodeTlsConnect({ port: srv.port, ca: p256.ca.certPem, ecdhCurve: 'X25519:P-256' });
    expect(s.getEphemeralKeyInfo()).toMatchObject({ name: 'prime256v1' });
    s.write('x\n');
    await readUntil(s, /x/);
    s.end();
    expect(srv.handshakes[0]).toMatchObject({ helloRetry: true, group: 'P-256' });
    await srv.close();
  });

  it('KeyUpdate from our server (update_requested): node answers and data keeps flowing', async () => {
    const srv = await startOurServer({ identity: p256.leaf });
    const s = await nodeTlsConnect({ port: srv.port, ca: p256.ca.certPem });
    s.write('before\n');
    await readUntil(s, /before/);
    const ours = srv.sockets[0]!;
    const updates: string[] = [];
    ours.on('keyUpdate', (d: string) => updates.push(d));
    ours.updateKeys(true);
    s.write('after\n');
    expect(await readUntil(s, /after/)).toContain('after');
    // Node's OpenSSL read our KeyUpdate with the echo and sends its own before its next record.
    s.write('again\n');
    expect(await readUntil(s, /again/)).toContain('again');
    expect(updates).toEqual(['write', 'read']);
    s.end();
    await srv.close();
  });

  it('client certificate: node presents one, our server verifies it', async () => {
    const srv = await startOurServer({ identity: p256.leaf, clientAuth: { ca: fx.client.ca } });
    const s = await nodeTlsConnect({
      port: srv.port,
      ca: p256.ca.certPem,
      cert: fx.client.leaf.certPem,
      key: fx.client.leaf.keyPem,
    });
    s.write('mtls\n');
    expect(await readUntil(s, /mtls/)).toContain('mtls');
    s.end();
    expect(srv.handshakes[0]?.peerCertificates).toBe(1);
    await srv.close();
  });

  it('https.get through node:tls reaches the HTTP routes behind our server', async () => {
    const srv = await startOurServer({ identity: fx.server.ed25519.leaf, mode: 'http' });
    const s = await nodeTlsConnect({ port: srv.port, ca: fx.server.ed25519.ca.certPem });
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request(
        { createConnection: () => s, path: '/bytes/100000', host: 'stepwire.test' },
        resolve,
      );
      req.on('error', reject);
      req.end();
    });
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    expect(res.statusCode).toBe(200);
    expect(Buffer.concat(chunks).equals(patternChunk(0, 100_000))).toBe(true);
    s.destroy();
    await srv.close();
  });
});

describe('our client vs a node:tls server', () => {
  for (const suite of SUITES) {
    for (const group of GROUPS) {
      it(`${suite} over ${group}: echo`, async () => {
        const srv = await startNodeTlsServer({
          cert: p256.leaf.certPem,
          key: p256.leaf.keyPem,
          ciphers: suite,
          ecdhCurve: OPENSSL_GROUP[group],
        });
        const c = await ourConnect({
          port: srv.port,
          ca: p256.ca,
          cipherSuites: [SUITE_CODE[suite]],
          groups: [GROUP_CODE[group]],
        });
        expect(c.handshake).toMatchObject({ cipher: suite, group });
        c.socket.write('stepwire to node\n');
        expect(await readUntil(c.socket, /stepwire to node/)).toContain('stepwire to node');
        c.socket.end();
        expect(srv.handshakes[0]).toMatchObject({ cipher: suite, protocol: 'TLSv1.3' });
        await srv.close();
      });
    }
  }

  it('resumption: node:tls resumes our ticket', async () => {
    const srv = await startNodeTlsServer({ cert: p256.leaf.certPem, key: p256.leaf.keyPem });
    const first = await ourConnect({ port: srv.port, ca: p256.ca });
    first.socket.write('one\n');
    await readUntil(first.socket, /one/);
    const session = await first.ticket();
    first.socket.end();
    const second = await ourConnect({ port: srv.port, ca: p256.ca, session });
    expect(second.handshake.resumed).toBe(true);
    second.socket.write('two\n');
    expect(await readUntil(second.socket, /two/)).toContain('two');
    second.socket.end();
    expect(srv.handshakes.map((h) => h.reused)).toEqual([false, true]);
    await srv.close();
  });

  it('mutual TLS: node:tls requires and verifies our client certificate', async () => {
    const srv = await startNodeTlsServer({
      cert: p256.leaf.certPem,
      key: p256.leaf.keyPem,
      requestCert: true,
      rejectUnauthorized: true,
      ca: fx.client.ca.certPem,
    });
    const c = await ourConnect({ port: srv.port, ca: p256.ca, cert: fx.client.leaf });
    c.socket.write('m\n');
    await readUntil(c.socket, /m/);
    c.socket.end();
    expect(srv.handshakes[0]).toMatchObject({ authorized: true, peerCN: 'stepwire test client' });
    await srv.close();
  });

  it('the wrong CA: our client refuses with unknown_ca and node:tls hears it', async () => {
    const srv = await startNodeTlsServer({ cert: p256.leaf.certPem, key: p256.leaf.keyPem });
    const err = await ourConnectError({ port: srv.port, ca: fx.unrelatedCa });
    expect(err).toMatchObject({ name: 'TlsError', alert: 'unknown_ca', sentByUs: true });
    await eventually(() => expect(srv.clientErrors[0]?.message).toMatch(/unknown ca/i));
    await srv.close();
  });
});
