/**
 * Self-tests of the TLS interop harness (test/support/tls-peers.ts), with Node's own TLS
 * (node:tls over node:net) standing in for our stack: if these pass, a failure in the
 * interop tests of our TLS is ours, not the harness's.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import type tls from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { nextSession, nodeTlsConnect, readUntil, startNodeTlsServer } from './support/tls-node.ts';
import {
  GROUPS,
  gnutlsPriority,
  KEY_KINDS,
  OPENSSL_GROUP,
  parseGnutlsConnections,
  parseOpensslOutput,
  requirePeer,
  runCurl,
  runGnutlsClient,
  runOpensslClient,
  SUITES,
  scratchDir,
  startGnutlsServer,
  startOpensslClient,
  startOpensslServer,
  stopAllPeers,
  tlsFixtures,
  writeScratchFile,
} from './support/tls-peers.ts';

afterAll(stopAllPeers);

const fx = tlsFixtures();
const p256 = fx.server['P-256'];
const NODE_GROUP: Record<string, string> = { x25519: 'X25519', 'P-256': 'prime256v1' };

/** node:tls client options trusting the P-256 CA. */
const trustP256 = { ca: p256.ca.certPem };

describe('fixtures', () => {
  it('has a CA and a server leaf per key type that openssl verifies for stepwire.test and 127.0.0.1', () => {
    for (const kind of KEY_KINDS) {
      const { ca, leaf } = fx.server[kind];
      for (const check of [
        ['-verify_hostname', 'stepwire.test'],
        ['-verify_ip', '127.0.0.1'],
        ['-verify_ip', '198.18.0.2'],
      ]) {
        const r = spawnSync('openssl', ['verify', '-CAfile', ca.certFile, ...check, leaf.certFile], {
          encoding: 'utf8',
        });
        expect(r.stdout + r.stderr, `${kind} ${check.join(' ')}`).toContain(': OK');
      }
    }
    expect(fx.server.ed25519.leaf.credentials.privateKey.type).toBe('ed25519');
    expect(fx.server.rsa2048.leaf.credentials.privateKey.type).toBe('rsa');
  });

  it('names a mismatch and an unrelated CA that openssl rejects', () => {
    const wrong = spawnSync(
      'openssl',
      ['verify', '-CAfile', p256.ca.certFile, '-verify_hostname', 'stepwire.test', fx.wrongName.certFile],
      { encoding: 'utf8' },
    );
    expect(wrong.stdout + wrong.stderr).toMatch(/hostname mismatch/);
    const unrelated = spawnSync(
      'openssl',
      ['verify', '-CAfile', fx.unrelatedCa.certFile, p256.leaf.certFile],
      {
        encoding: 'utf8',
      },
    );
    expect(unrelated.status).not.toBe(0);
  });

  it('is made once per run: a second call returns the same directory and files', () => {
    expect(tlsFixtures()).toBe(fx);
    expect(readFileSync(join(fx.dir, 'P-256-leaf.pem'), 'utf8')).toBe(p256.leaf.certPem);
    expect(readFileSync(fx.serverCaBundle, 'utf8').match(/BEGIN CERTIFICATE/g)).toHaveLength(3);
  });
});

describe('harness plumbing', () => {
  it('fails loudly, naming the install script, when a peer program is missing', () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      expect(() => requirePeer('gnutls-cli')).toThrow(/install-peers\.sh/);
    } finally {
      process.env.PATH = path;
    }
    expect(() => requirePeer('gnutls-cli')).not.toThrow();
  });

  it('kills a client by PID when its timeout runs out (a server that never answers)', async () => {
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    const running = startOpensslClient({ port, caFile: p256.ca.certFile, until: /never/, timeoutMs: 700 });
    const run = await running.result;
    expect(run.timedOut).toBe(true);
    expect(run.signal).toBe('SIGKILL');
    // The process is gone (signal 0 probes a PID without touching it); how fast is no test's business.
    expect(() => process.kill(running.process.pid, 0)).toThrow(/ESRCH/);
    silent.close();
  });

  it('stops a server by PID and the port is free again', async () => {
    const srv = await startOpensslServer({ ...p256.leaf });
    expect(srv.process.exitStatus).toBeUndefined();
    await srv.stop();
    expect(srv.process.exitStatus).toBeDefined();
    await expect(
      new Promise((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port: srv.port });
        s.once('connect', () => {
          s.destroy();
          resolve('connected');
        });
        s.once('error', reject);
      }),
    ).rejects.toThrow(/ECONNREFUSED/);
  });

  it('parses the facts OpenSSL and GnuTLS print', () => {
    const f = parseOpensslOutput(
      [
        '>>> TLS 1.3, Handshake [length 00cc], ClientHello',
        '<<< TLS 1.3, Handshake [length 0058], ServerHello',
        '>>> TLS 1.3, Handshake [length 00ed], ClientHello',
        'Server Temp Key: ECDH, prime256v1, 256 bits',
        'Reused, TLSv1.3, Cipher is TLS_CHACHA20_POLY1305_SHA256',
        'No ALPN negotiated',
        'Early data was rejected',
        'Verify return code: 0 (ok)',
        '<<< TLS 1.3, Handshake [length 0005], KeyUpdate',
        '>>> TLS 1.3, Alert [length 0002], fatal unknown_ca',
      ].join('\n'),
    );
    expect(f).toMatchObject({
      protocol: 'TLSv1.3',
      cipher: 'TLS_CHACHA20_POLY1305_SHA256',
      group: 'P-256',
      reused: true,
      helloRetry: true,
      alpn: null,
      earlyData: 'rejected',
      verifyOk: true,
      keyUpdatesReceived: 1,
      keyUpdatesSent: 0,
      alertsSent: ['unknown_ca'],
    });
    const [g] = parseGnutlsConnections(
      "Connecting to '127.0.0.1:1'...\n- Description: (TLS1.3-X.509)-(ECDHE-X25519)-(EdDSA-Ed25519)-(CHACHA20-POLY1305)\n",
    );
    expect(g).toMatchObject({ protocol: 'TLSv1.3', group: 'x25519', cipher: 'TLS_CHACHA20_POLY1305_SHA256' });
  });
});

describe('node:tls client vs openssl s_server', () => {
  for (const suite of SUITES) {
    for (const group of GROUPS) {
      it(`${suite} over ${group}: a line comes back reversed`, async () => {
        const srv = await startOpensslServer({
          ...p256.leaf,
          mode: 'rev',
          ciphersuites: suite,
          groups: OPENSSL_GROUP[group],
        });
        const s = await nodeTlsConnect({ port: srv.port, ...trustP256, ecdhCurve: OPENSSL_GROUP[group] });
        expect(s.getCipher().standardName).toBe(suite);
        expect(s.getEphemeralKeyInfo()).toMatchObject({ name: NODE_GROUP[group] });
        s.write('stepwire harness\n');
        expect(await readUntil(s, /ssenrah eriwpets/)).toContain('ssenrah eriwpets');
        s.destroy();
        await srv.process.waitFor(/CONNECTION CLOSED/);
        const facts = srv.facts();
        expect(facts.cipher).toBe(suite);
        expect(facts.protocol).toBe('TLSv1.3');
        expect(facts.helloRetry).toBe(false);
        await srv.stop();
      });
    }
  }

  for (const kind of KEY_KINDS) {
    it(`a ${kind} server certificate verifies`, async () => {
      const srv = await startOpensslServer({ ...fx.server[kind].leaf, mode: 'rev' });
      const s = await nodeTlsConnect({ port: srv.port, ca: fx.server[kind].ca.certPem });
      expect(s.authorized).toBe(true);
      s.destroy();
      await srv.stop();
    });
  }

  it('HelloRetryRequest: the server wants P-256, the client sends an x25519 share first', async () => {
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'rev', groups: 'P-256' });
    const s = await nodeTlsConnect({ port: srv.port, ...trustP256, ecdhCurve: 'X25519:P-256' });
    expect(s.getEphemeralKeyInfo()).toMatchObject({ name: 'prime256v1' });
    s.destroy();
    const facts = srv.facts();
    expect(facts.clientHellos).toBe(2);
    expect(facts.helloRetry).toBe(true);
    await srv.stop();
  });

  it('resumption: the second connection presents the ticket and the status page says Reused', async () => {
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'www' });
    const first = await nodeTlsConnect({ port: srv.port, ...trustP256 });
    const ticket = nextSession(first);
    first.write('GET / HTTP/1.0\r\n\r\n');
    const page1 = await readUntil(first);
    const session = await ticket;
    expect(parseOpensslOutput(page1).reused).toBe(false);
    const second = await nodeTlsConnect({ port: srv.port, ...trustP256, session });
    expect(second.isSessionReused()).toBe(true);
    second.write('GET / HTTP/1.0\r\n\r\n');
    const page2 = await readUntil(second);
    expect(parseOpensslOutput(page2)).toMatchObject({ reused: true, protocol: 'TLSv1.3' });
    await srv.stop();
  });

  it('mutual TLS: the server requires a client certificate and sees ours', async () => {
    const srv = await startOpensslServer({
      ...p256.leaf,
      mode: 'www',
      requireClientCert: { caFile: fx.client.ca.certFile },
    });
    const s = await nodeTlsConnect({
      port: srv.port,
      ...trustP256,
      cert: fx.client.leaf.certPem,
      key: fx.client.leaf.keyPem,
    });
    s.write('GET / HTTP/1.0\r\n\r\n');
    const page = await readUntil(s);
    expect(page).toMatch(/Client certificate/);
    expect(page).toContain('stepwire test client');

    // Without one, the server refuses: TLS 1.3 says certificate_required (RFC 8446 §4.4.2.4).
    const mark = srv.process.mark();
    const bare = await nodeTlsConnect({ port: srv.port, ...trustP256 });
    bare.write('GET / HTTP/1.0\r\n\r\n');
    await expect(readUntil(bare, /HTTP\/1\.0 200/)).rejects.toThrow(/certificate required|ended before/i);
    await srv.process.waitFor(/Alert \[length 0002\], fatal certificate_required/, { since: mark });
    expect(srv.facts(mark).alertsSent).toContain('certificate_required');
    await srv.stop();
  });

  it('KeyUpdate: s_server’s K command updates both directions and data still flows', async () => {
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'interactive' });
    const s = await nodeTlsConnect({ port: srv.port, ...trustP256 });
    s.write('before\n');
    await srv.process.waitFor(/^before$/m);
    const mark = srv.process.mark();
    srv.process.write('K\n');
    await srv.process.waitFor(/KeyUpdate/, { since: mark });
    s.write('after\n');
    await srv.process.waitFor(/^after$/m, { since: mark });
    srv.process.write('from the server\n');
    expect(await readUntil(s, /from the server/)).toContain('from the server');
    // update_requested: node's OpenSSL answers with its own KeyUpdate before the next data it
    // writes after reading the request. 'after' may have left before the request arrived;
    // 'again' is written once 'from the server' (sent after the KeyUpdate) has been read.
    s.write('again\n');
    await srv.process.waitFor(/^again$/m, { since: mark });
    await srv.process.waitFor(/^<<< [^\n]*, KeyUpdate$/m, { since: mark });
    const facts = srv.facts(mark);
    expect(facts.keyUpdatesSent).toBe(1);
    expect(facts.keyUpdatesReceived).toBe(1);
    s.destroy();
    await srv.stop();
  });

  it('a client trusting another CA fails with a typed error (node:tls just closes, sending no alert)', async () => {
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'rev' });
    const mark = srv.process.mark();
    const err = await nodeTlsConnect({ port: srv.port, ca: fx.unrelatedCa.certPem }).then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(err?.code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    await srv.process.waitFor(/CONNECTION FAILURE|unexpected eof/, { since: mark });
    expect(srv.facts(mark).alertsReceived).toEqual([]);
    await srv.stop();
  });

  it('s_client trusting another CA sends unknown_ca, and s_server reports receiving it', async () => {
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'rev' });
    const run = await runOpensslClient({
      port: srv.port,
      caFile: fx.unrelatedCa.certFile,
      input: 'x\n',
      until: /^x$/m,
    });
    expect(run.code).not.toBe(0);
    expect(run.facts).toMatchObject({ verifyOk: false, verifyCode: 20 });
    expect(run.facts.alertsSent).toEqual(['unknown_ca']);
    await srv.process.waitFor(/<<< [^\n]*Alert/);
    expect(srv.facts().alertsReceived).toEqual(['unknown_ca']);
    await srv.stop();
  });
});

describe('node:tls client vs gnutls-serv', () => {
  for (const suite of SUITES) {
    for (const group of GROUPS) {
      it(`${suite} over ${group}: echo`, async () => {
        const srv = await startGnutlsServer({
          ...p256.leaf,
          priority: gnutlsPriority({ suites: [suite], groups: [group] }),
        });
        const s = await nodeTlsConnect({ port: srv.port, ...trustP256, ecdhCurve: OPENSSL_GROUP[group] });
        expect(s.getCipher().standardName).toBe(suite);
        s.write('through gnutls\n');
        expect(await readUntil(s, /through gnutls/)).toContain('through gnutls');
        s.destroy();
        await srv.process.waitFor(/Description/);
        expect(srv.facts()).toMatchObject({ protocol: 'TLSv1.3', cipher: suite, group });
        await srv.stop();
      });
    }
  }

  it('HelloRetryRequest against a P-256-only gnutls-serv', async () => {
    const srv = await startGnutlsServer({ ...p256.leaf, priority: gnutlsPriority({ groups: ['P-256'] }) });
    const s = await nodeTlsConnect({ port: srv.port, ...trustP256, ecdhCurve: 'X25519:P-256' });
    expect(s.getEphemeralKeyInfo()).toMatchObject({ name: 'prime256v1' });
    s.write('retried\n');
    await readUntil(s, /retried/);
    s.destroy();
    await srv.process.waitFor(/Description/);
    expect(srv.facts().group).toBe('P-256');
    await srv.stop();
  });

  it('resumption: gnutls-serv says "This is a resumed session"', async () => {
    const srv = await startGnutlsServer({ ...fx.server.ed25519.leaf });
    const ca = fx.server.ed25519.ca.certPem;
    const first = await nodeTlsConnect({ port: srv.port, ca });
    const ticket = nextSession(first);
    first.write('one\n');
    await readUntil(first, /one/);
    const session = await ticket;
    first.end();
    const second = await nodeTlsConnect({ port: srv.port, ca, session });
    expect(second.isSessionReused()).toBe(true);
    second.write('two\n');
    await readUntil(second, /two/);
    second.end();
    await srv.process.waitFor(/resumed session/);
    const conns = parseGnutlsConnections(srv.process.stdout());
    expect(conns.map((c) => c.reused)).toEqual([false, true]);
    await srv.stop();
  });

  it('mutual TLS: --require-client-cert accepts our client certificate', async () => {
    const srv = await startGnutlsServer({
      ...fx.server.rsa2048.leaf,
      requireClientCert: { caFile: fx.client.ca.certFile },
    });
    const s = await nodeTlsConnect({
      port: srv.port,
      ca: fx.server.rsa2048.ca.certPem,
      cert: fx.client.leaf.certPem,
      key: fx.client.leaf.keyPem,
    });
    s.write('mtls\n');
    expect(await readUntil(s, /mtls/)).toContain('mtls');
    s.destroy();
    await srv.stop();
  });
});

describe('peer clients vs a node:tls server', () => {
  const serverOpts = (suite?: string, group?: string): tls.TlsOptions => ({
    cert: p256.leaf.certPem,
    key: p256.leaf.keyPem,
    ...(suite ? { ciphers: suite } : {}),
    ...(group ? { ecdhCurve: group } : {}),
  });

  for (const suite of SUITES) {
    for (const group of GROUPS) {
      it(`openssl s_client, ${suite} over ${group}`, async () => {
        const srv = await startNodeTlsServer(serverOpts(suite, OPENSSL_GROUP[group]));
        const run = await runOpensslClient({
          port: srv.port,
          caFile: p256.ca.certFile,
          input: 'ping\n',
          until: /^ping$/m,
        });
        expect(run.code, run.stdout + run.stderr).toBe(0);
        expect(run.facts).toMatchObject({
          protocol: 'TLSv1.3',
          cipher: suite,
          group,
          verifyOk: true,
          reused: false,
        });
        await srv.close();
      });

      it(`gnutls-cli, ${suite} over ${group}`, async () => {
        const srv = await startNodeTlsServer(serverOpts(suite, OPENSSL_GROUP[group]));
        const run = await runGnutlsClient({
          port: srv.port,
          caFile: p256.ca.certFile,
          input: 'ping\n',
          until: /^ping$/m,
        });
        expect(run.code, run.stdout + run.stderr).toBe(0);
        expect(run.facts).toMatchObject({ protocol: 'TLSv1.3', cipher: suite, group, verifyOk: true });
        await srv.close();
      });

      it(`curl over node:http, ${suite} over ${group}`, async () => {
        const srv = await startNodeTlsServer({ ...serverOpts(suite, OPENSSL_GROUP[group]), mode: 'http' });
        const run = await runCurl({ port: srv.port, caFile: p256.ca.certFile });
        expect(run.code, run.stderr).toBe(0);
        expect(run.stdout).toMatch(/^Hello from stepwire/);
        expect(run.transfers[0]).toMatchObject({ http_code: 200, ssl_verify_result: 0 });
        expect(run.facts).toMatchObject({ protocol: 'TLSv1.3', cipher: suite, verifyOk: true });
        await srv.close();
      });
    }
  }

  it('s_client resumption with -sess_out / -sess_in: New, then Reused', async () => {
    const srv = await startNodeTlsServer(serverOpts());
    const sess = join(scratchDir('sess'), 'session.pem');
    const first = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      sessOut: sess,
      until: /Post-Handshake New Session Ticket arrived/,
      lingerMs: 100,
    });
    expect(first.facts.reused).toBe(false);
    expect(first.facts.ticketsReceived).toBeGreaterThan(0);
    const second = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      sessIn: sess,
      input: 'again\n',
      until: /^again$/m,
    });
    expect(second.code, second.stdout).toBe(0);
    expect(second.facts.reused).toBe(true);
    expect(srv.handshakes.map((h) => h.reused)).toEqual([false, true]);
    await srv.close();
  });

  it('gnutls-cli --resume: the second connection is resumed', async () => {
    const srv = await startNodeTlsServer(serverOpts());
    const run = await runGnutlsClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      resume: true,
      input: 'x\n',
      until: /^x$/m,
    });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.connections.map((c) => c.reused)).toEqual([false, true]);
    await srv.close();
  });

  it('curl: two fresh connections, the second one resumed (no Certificate message)', async () => {
    const srv = await startNodeTlsServer({ ...serverOpts(), mode: 'http' });
    const run = await runCurl({
      port: srv.port,
      caFile: p256.ca.certFile,
      paths: ['/', '/bytes/1000'],
      freshConnections: true,
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.transfers.map((t) => t.http_code)).toEqual([200, 200]);
    expect(run.connections.map((c) => c.reused)).toEqual([false, true]);
    await srv.close();
  });

  it('s_client with a client certificate: the server sees and verifies it', async () => {
    const srv = await startNodeTlsServer({
      ...serverOpts(),
      requestCert: true,
      rejectUnauthorized: true,
      ca: fx.client.ca.certPem,
    });
    const run = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      certFile: fx.client.leaf.certFile,
      keyFile: fx.client.leaf.keyFile,
      input: 'with cert\n',
      until: /^with cert$/m,
    });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(srv.handshakes[0]).toMatchObject({ authorized: true, peerCN: 'stepwire test client' });
    await srv.close();
  });

  it('a server certificate for another name: s_client reports a hostname mismatch and aborts', async () => {
    const srv = await startNodeTlsServer({ cert: fx.wrongName.certPem, key: fx.wrongName.keyPem });
    const run = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      input: 'x\n',
      until: /^x$/m,
    });
    expect(run.code).not.toBe(0);
    expect(run.facts.verifyOk).toBe(false);
    expect(run.facts.verifyCode).toBe(62); // X509_V_ERR_HOSTNAME_MISMATCH
    expect(run.facts.alertsSent).toContain('bad_certificate');
    await srv.close();
  });

  it('s_client and gnutls-cli against a server of another CA: the verdict is "not trusted"', async () => {
    const srv = await startNodeTlsServer(serverOpts());
    const o = await runOpensslClient({
      port: srv.port,
      caFile: fx.unrelatedCa.certFile,
      input: 'x\n',
      until: /^x$/m,
    });
    expect(o.code).not.toBe(0);
    expect(o.facts).toMatchObject({ verifyOk: false, verifyCode: 20 }); // unable to get local issuer
    expect(o.facts.alertsSent).toContain('unknown_ca');
    const g = await runGnutlsClient({
      port: srv.port,
      caFile: fx.unrelatedCa.certFile,
      input: 'x\n',
      until: /^x$/m,
    });
    expect(g.code).not.toBe(0);
    expect(g.facts.verifyOk).toBe(false);
    await srv.close();
  });
});

describe('peer vs peer: the 0-RTT and KeyUpdate plumbing', () => {
  it('s_client -early_data against s_server -early_data: accepted, and the server printed it', async () => {
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'interactive', earlyData: true });
    const sess = join(scratchDir('sess'), 'session.pem');
    const first = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      sessOut: sess,
      until: /Max Early Data: 16384/,
      lingerMs: 100,
    });
    expect(first.facts.earlyData).toBe('not sent');
    const mark = srv.process.mark();
    const early = writeScratchFile('early.txt', 'zero round trip\n');
    const second = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      sessIn: sess,
      earlyDataFile: early,
      until: /Early data was/,
      lingerMs: 200,
    });
    expect(second.facts).toMatchObject({ reused: true, earlyData: 'accepted' });
    await srv.process.waitFor(/zero round trip/, { since: mark });
    await srv.process.waitFor(/Early data received/, { since: mark });
    expect(srv.facts(mark).earlyDataReceived).toBe(true);
    await srv.stop();
  });

  it('gnutls-cli --earlydata against s_server -early_data', async () => {
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'interactive', earlyData: true });
    const early = writeScratchFile('early.txt', 'gnutls early\n');
    const run = await runGnutlsClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      earlyDataFile: early,
      lingerMs: 500,
    });
    expect(run.connections.map((c) => c.reused)).toEqual([false, true]);
    await srv.process.waitFor(/gnutls early/);
    expect(srv.facts().earlyDataReceived).toBe(true);
    await srv.stop();
  });

  it('s_client K command: a KeyUpdate with update_requested, and the server answers with its own', async () => {
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'interactive' });
    const client = startOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      commands: true,
      keepInputOpen: true,
    });
    await client.process.waitFor(/Verify return code: 0/);
    const mark = client.process.mark();
    client.process.write('K\n');
    await client.process.waitFor(/KEYUPDATE/, { since: mark });
    await srv.process.waitFor(/<<< [^\n]*KeyUpdate/);
    client.process.write('data after update\n');
    await srv.process.waitFor(/data after update/);
    srv.process.write('reply after update\n');
    await client.process.waitFor(/reply after update/);
    client.process.endInput();
    const run = await client.result;
    expect(run.code).toBe(0);
    expect(run.facts.keyUpdatesSent).toBe(1);
    expect(run.facts.keyUpdatesReceived).toBe(1);
    await srv.stop();
  });
});
