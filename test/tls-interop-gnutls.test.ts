/**
 * Our TLS 1.3 against GnuTLS, over kernel TCP on loopback: our client against
 * `gnutls-serv --echo`, our server against `gnutls-cli`. GnuTLS is a second, unrelated
 * implementation: its verdicts on cipher, group, resumption and certificates must match ours.
 */
import { nobleCrypto, nodeCrypto } from '@stepwire/tls';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually, ourConnect, ourConnectError, readUntil, startOurServer } from './support/tls-ours.ts';
import {
  GROUP_CODE,
  GROUPS,
  gnutlsPriority,
  KEY_KINDS,
  parseGnutlsConnections,
  runGnutlsClient,
  SUITE_CODE,
  SUITES,
  startGnutlsClient,
  startGnutlsServer,
  stopAllPeers,
  tlsFixtures,
  writeScratchFile,
} from './support/tls-peers.ts';

afterAll(stopAllPeers);

const fx = tlsFixtures();
const p256 = fx.server['P-256'];
/** Both crypto providers: the protocol must not depend on which one computes. */
const PROVIDERS = [
  ['noble', nobleCrypto],
  ['node', nodeCrypto],
] as const;

describe('our client vs gnutls-serv', () => {
  for (const [providerName, crypto] of PROVIDERS) {
    for (const suite of SUITES) {
      for (const group of GROUPS) {
        it(`${suite} over ${group} (${providerName} crypto): both sides agree, echo`, async () => {
          const srv = await startGnutlsServer({
            ...p256.leaf,
            priority: gnutlsPriority({ suites: [suite], groups: [group] }),
          });
          const c = await ourConnect({
            port: srv.port,
            ca: p256.ca,
            cipherSuites: [SUITE_CODE[suite]],
            groups: [GROUP_CODE[group]],
            crypto,
          });
          expect(c.handshake).toMatchObject({ cipher: suite, group, resumed: false });
          c.socket.write('stepwire over gnutls\n');
          expect(await readUntil(c.socket, /stepwire over gnutls/)).toContain('stepwire over gnutls');
          c.socket.end();
          await srv.process.waitFor(/Description/);
          expect(srv.facts()).toMatchObject({ protocol: 'TLSv1.3', cipher: suite, group, reused: false });
          await srv.stop();
        });
      }
    }
  }

  for (const kind of KEY_KINDS) {
    it(`verifies gnutls-serv's ${kind} certificate and CertificateVerify`, async () => {
      const srv = await startGnutlsServer({ ...fx.server[kind].leaf });
      const c = await ourConnect({ port: srv.port, ca: fx.server[kind].ca });
      c.socket.write('key types\n');
      expect(await readUntil(c.socket, /key types/)).toContain('key types');
      c.socket.destroy();
      await srv.stop();
    });
  }

  it('HelloRetryRequest: a P-256-only gnutls-serv, our x25519 share first', async () => {
    const srv = await startGnutlsServer({ ...p256.leaf, priority: gnutlsPriority({ groups: ['P-256'] }) });
    const c = await ourConnect({
      port: srv.port,
      ca: p256.ca,
      groups: [GROUP_CODE.x25519, GROUP_CODE['P-256']],
    });
    expect(c.handshake).toMatchObject({ group: 'P-256', helloRetry: true });
    c.socket.write('after retry\n');
    expect(await readUntil(c.socket, /after retry/)).toContain('after retry');
    c.socket.end();
    await srv.process.waitFor(/Description/);
    expect(srv.facts().group).toBe('P-256');
    await srv.stop();
  });

  it('resumption: gnutls-serv says "This is a resumed session"', async () => {
    const srv = await startGnutlsServer({ ...p256.leaf });
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
    await srv.process.waitFor(/resumed session/);
    expect(parseGnutlsConnections(srv.process.text()).map((c) => c.reused)).toEqual([false, true]);
    await srv.stop();
  });

  it('0-RTT: gnutls-serv --earlydata accepts our early data and the connection carries on', async () => {
    const srv = await startGnutlsServer({ ...p256.leaf, earlyData: true });
    const first = await ourConnect({ port: srv.port, ca: p256.ca });
    first.socket.write('one\n');
    await readUntil(first.socket, /one/);
    const session = await first.ticket();
    expect(session.maxEarlyDataSize).toBeGreaterThan(0);
    first.socket.end();
    const second = await ourConnect({
      port: srv.port,
      ca: p256.ca,
      session,
      earlyData: new TextEncoder().encode('early for gnutls\n'),
    });
    // gnutls-serv's echo mode neither prints nor echoes 0-RTT data: acceptance (its
    // EncryptedExtensions early_data) is what can be observed, and that the 1-RTT data after it flows.
    expect(second.earlyDataAccepted).toBe(true);
    expect(second.handshake.resumed).toBe(true);
    second.socket.write('after early\n');
    expect(await readUntil(second.socket, /after early/)).toContain('after early');
    second.socket.end();
    await srv.stop();
  });

  it('KeyUpdate from us (update_requested): GnuTLS answers with its own and keeps echoing', async () => {
    const srv = await startGnutlsServer({ ...p256.leaf });
    const c = await ourConnect({ port: srv.port, ca: p256.ca });
    const updates: string[] = [];
    c.socket.on('keyUpdate', (direction: string) => updates.push(direction));
    c.socket.write('before\n');
    await readUntil(c.socket, /before/);
    c.socket.updateKeys(true);
    c.socket.write('after\n');
    expect(await readUntil(c.socket, /after/)).toContain('after');
    expect(updates).toEqual(['write', 'read']);
    c.socket.destroy();
    await srv.stop();
  });

  it('mutual TLS: gnutls-serv --require-client-cert accepts our certificate', async () => {
    const srv = await startGnutlsServer({
      ...p256.leaf,
      requireClientCert: { caFile: fx.client.ca.certFile },
    });
    const c = await ourConnect({ port: srv.port, ca: p256.ca, cert: fx.client.leaf });
    c.socket.write('mutual\n');
    expect(await readUntil(c.socket, /mutual/)).toContain('mutual');
    c.socket.end();
    await srv.stop();
  });

  it('mutual TLS without a certificate: gnutls-serv refuses, we get a typed alert', async () => {
    const srv = await startGnutlsServer({
      ...p256.leaf,
      requireClientCert: { caFile: fx.client.ca.certFile },
    });
    const c = await ourConnect({ port: srv.port, ca: p256.ca });
    c.socket.write('no cert\n');
    const err = await new Promise<Error & { alert?: string; sentByUs?: boolean }>((resolve) =>
      c.socket.once('error', resolve),
    );
    expect(err).toMatchObject({ name: 'TlsError', sentByUs: false });
    expect(['certificate_required', 'handshake_failure']).toContain(err.alert);
    await srv.stop();
  });

  it('ALPN: gnutls-serv offers http/1.1', async () => {
    const srv = await startGnutlsServer({ ...p256.leaf, alpn: ['http/1.1'] });
    const c = await ourConnect({ port: srv.port, ca: p256.ca, alpn: ['h2', 'http/1.1'] });
    expect(c.handshake.alpn).toBe('http/1.1');
    c.socket.destroy();
    await srv.stop();
  });

  it('a server certificate from a CA we do not trust: we refuse with unknown_ca', async () => {
    const srv = await startGnutlsServer({ ...p256.leaf });
    const err = await ourConnectError({ port: srv.port, ca: fx.unrelatedCa });
    expect(err).toMatchObject({ name: 'TlsError', alert: 'unknown_ca', sentByUs: true });
    await srv.process.waitFor(/Error in handshake|Unknown CA|alert/i);
    await srv.stop();
  });
});

describe('gnutls-cli vs our server', () => {
  for (const [providerName, crypto] of PROVIDERS) {
    for (const suite of SUITES) {
      for (const group of GROUPS) {
        it(`${suite} over ${group} (${providerName} crypto): gnutls-cli's description and ours agree, echo`, async () => {
          const srv = await startOurServer({
            identity: p256.leaf,
            cipherSuites: [SUITE_CODE[suite]],
            groups: [GROUP_CODE[group]],
            crypto,
          });
          const run = await runGnutlsClient({
            port: srv.port,
            caFile: p256.ca.certFile,
            priority: gnutlsPriority({ groups: [group] }),
            input: 'ping\n',
            until: /^ping$/m,
          });
          expect(run.code, run.stdout + run.stderr).toBe(0);
          expect(run.facts).toMatchObject({ protocol: 'TLSv1.3', cipher: suite, group, verifyOk: true });
          expect(srv.handshakes[0]).toMatchObject({ cipher: suite, group, resumed: false });
          await srv.close();
        });
      }
    }
  }

  it('exporter (RFC 8446 §7.5): gnutls-cli --keymatexport and our server agree', async () => {
    const srv = await startOurServer({ identity: p256.leaf });
    const run = await runGnutlsClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      keymatExport: { label: 'EXPERIMENTAL-stepwire', length: 32 },
      input: 'x\n',
      until: /^x$/m,
    });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const ours = Buffer.from(srv.sockets[0]!.exportKeyingMaterial(32, 'EXPERIMENTAL-stepwire')).toString(
      'hex',
    );
    expect(run.facts.keyingMaterial).toBe(ours);
    await srv.close();
  });

  for (const kind of KEY_KINDS) {
    it(`gnutls-cli trusts our ${kind} certificate and CertificateVerify`, async () => {
      const srv = await startOurServer({ identity: fx.server[kind].leaf });
      const run = await runGnutlsClient({
        port: srv.port,
        caFile: fx.server[kind].ca.certFile,
        input: 'x\n',
        until: /^x$/m,
      });
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(run.facts.verifyOk).toBe(true);
      await srv.close();
    });
  }

  it('group negotiation: our server wants P-256, gnutls-cli prefers x25519', async () => {
    const srv = await startOurServer({ identity: p256.leaf, groups: [GROUP_CODE['P-256']] });
    const run = await runGnutlsClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      priority: gnutlsPriority({ groups: ['x25519', 'P-256'] }),
      input: 'x\n',
      until: /^x$/m,
    });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.facts.group).toBe('P-256');
    expect(srv.handshakes[0]?.group).toBe('P-256');
    // GnuTLS sends shares for its top two groups: when it offered a P-256 share, no retry is needed.
    const offeredBoth = srv.handshakes[0]?.helloRetry === false;
    expect(srv.handshakes[0]?.messages.filter((m) => m === 'in client_hello')).toHaveLength(
      offeredBoth ? 1 : 2,
    );
    await srv.close();
  });

  it('KeyUpdate from gnutls-cli (^rekey^, update_requested): our server updates both ways, echo continues', async () => {
    const srv = await startOurServer({ identity: p256.leaf });
    const client = startGnutlsClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      keepInputOpen: true,
      extraArgs: ['--inline-commands'],
    });
    await client.process.waitFor(/Simple Client Mode/);
    const updates: string[] = [];
    srv.sockets[0]!.on('keyUpdate', (d: string) => updates.push(d));
    client.process.write('one\n');
    await client.process.waitFor(/^one$/m);
    client.process.write('^rekey^\n');
    await client.process.waitFor(/Rekey was completed/);
    client.process.write('two\n');
    await client.process.waitFor(/^two$/m);
    client.process.endInput();
    const run = await client.result;
    expect(run.code).toBe(0);
    expect(updates).toEqual(['read', 'write']);
    await srv.close();
  });

  it('gnutls-cli --resume: the second connection resumes our ticket', async () => {
    const srv = await startOurServer({ identity: p256.leaf });
    const run = await runGnutlsClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      resume: true,
      input: 'again\n',
      until: /^again$/m,
    });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.connections.map((c) => c.reused)).toEqual([false, true]);
    expect(srv.handshakes.map((h) => h.resumed)).toEqual([false, true]);
    await srv.close();
  });

  it('gnutls-cli --earlydata: our server takes the 0-RTT data and the application echoes it', async () => {
    const srv = await startOurServer({ identity: p256.leaf, maxEarlyData: 16384 });
    const early = writeScratchFile('early.txt', 'gnutls zero rtt\n');
    const run = await runGnutlsClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      earlyDataFile: early,
      until: /^gnutls zero rtt$/m,
    });
    expect(run.connections.map((c) => c.reused)).toEqual([false, true]);
    expect(Buffer.concat(srv.earlyData).toString()).toBe('gnutls zero rtt\n');
    expect(run.stdout).toMatch(/^gnutls zero rtt$/m);
    expect(run.code).toBe(0);
    await srv.close();
  });

  it('client certificates: gnutls-cli --x509certfile, our server verifies the chain', async () => {
    const srv = await startOurServer({ identity: p256.leaf, clientAuth: { ca: fx.client.ca } });
    const run = await runGnutlsClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      certFile: fx.client.leaf.certFile,
      keyFile: fx.client.leaf.keyFile,
      input: 'mtls\n',
      until: /^mtls$/m,
    });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(srv.handshakes[0]?.peerCertificates).toBe(1);
    await srv.close();
  });

  it('our server with a certificate for another name: gnutls-cli does not trust it', async () => {
    const srv = await startOurServer({ identity: fx.wrongName });
    const run = await runGnutlsClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      input: 'x\n',
      until: /^x$/m,
    });
    expect(run.code).not.toBe(0);
    expect(run.facts.verifyOk).toBe(false);
    expect(run.facts.verifyMessage).toMatch(/name in the certificate does not match/);
    await eventually(() => expect(srv.errors.length).toBeGreaterThan(0));
    await srv.close();
  });
});
