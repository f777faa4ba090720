/**
 * Our TLS 1.3 against OpenSSL, over kernel TCP on loopback: our client against
 * `openssl s_server`, our server against `openssl s_client`. What OpenSSL prints about each
 * handshake (cipher, group, New/Reused, HelloRetryRequest, KeyUpdate, alerts, early data) is
 * the independent verdict; our own handshake event must agree with it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { nobleCrypto, nodeCrypto } from '@stepwire/tls';
import { afterAll, describe, expect, it } from 'vitest';
import { patternChunk } from '../packages/cli/src/services/http-app.ts';
import { eventually, ourConnect, ourConnectError, readUntil, startOurServer } from './support/tls-ours.ts';
import {
  GROUP_CODE,
  GROUPS,
  KEY_KINDS,
  OPENSSL_GROUP,
  parseOpensslOutput,
  runOpensslClient,
  SUITE_CODE,
  SUITES,
  scratchDir,
  startOpensslClient,
  startOpensslServer,
  stopAllPeers,
  tlsFixtures,
  writeScratchFile,
} from './support/tls-peers.ts';

afterAll(stopAllPeers);

const fx = tlsFixtures();
const p256 = fx.server['P-256'];
const GET = 'GET / HTTP/1.0\r\n\r\n';
/** Both crypto providers: the protocol must not depend on which one computes. */
const PROVIDERS = [
  ['noble', nobleCrypto],
  ['node', nodeCrypto],
] as const;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const PSK = {
  identity: 'stepwire-psk',
  keyHex: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
};
const PSK_BYTES = {
  identity: new TextEncoder().encode(PSK.identity),
  key: new Uint8Array(Buffer.from(PSK.keyHex, 'hex')),
};
/** NSS key log lines as a sorted list (order differs between implementations). */
const keyLogLines = (text: string): string[] =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^[A-Z_0-9]+ [0-9a-f]{64} [0-9a-f]+$/i.test(l))
    .map((l) => l.toLowerCase())
    .sort();

/**
 * An on-path recorder on 127.0.0.1 in front of `port`: every byte each way, so a test can read
 * the TLS records that really crossed the wire rather than trust either endpoint's account.
 */
async function recordingProxy(port: number): Promise<{
  port: number;
  toServer: Buffer[];
  toClient: Buffer[];
  close(): void;
}> {
  const toServer: Buffer[] = [];
  const toClient: Buffer[] = [];
  const proxy = net.createServer((down) => {
    const up = net.connect({ host: '127.0.0.1', port });
    down.on('data', (d: Buffer) => {
      toServer.push(d);
      up.write(d);
    });
    up.on('data', (d: Buffer) => {
      toClient.push(d);
      down.write(d);
    });
    down.on('error', () => up.destroy());
    up.on('error', () => down.destroy());
    down.on('close', () => up.end());
    up.on('close', () => down.end());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  return { port: (proxy.address() as net.AddressInfo).port, toServer, toClient, close: () => proxy.close() };
}

/** The TLSPlaintext/TLSCiphertext headers in a byte stream (RFC 8446 §5.1): type and length. */
function recordsOnWire(chunks: Buffer[]): { type: number; length: number }[] {
  const bytes = Buffer.concat(chunks);
  const out: { type: number; length: number }[] = [];
  for (let at = 0; at + 5 <= bytes.length; at += 5 + bytes.readUInt16BE(at + 3)) {
    out.push({ type: bytes[at]!, length: bytes.readUInt16BE(at + 3) });
  }
  return out;
}

/**
 * With -max_send_frag 512 every protected record carries at most 512 bytes of content, plus
 * the inner content type byte and the 16-byte AEAD tag (RFC 8446 §5.2; OpenSSL adds no padding
 * by default): at most 529 bytes on the wire, and a full fragment is exactly 529.
 */
const SPLIT_512_MAX = 512 + 1 + 16;

describe('our client vs openssl s_server', () => {
  for (const [providerName, crypto] of PROVIDERS) {
    for (const suite of SUITES) {
      for (const group of GROUPS) {
        it(`${suite} over ${group} (${providerName} crypto): both sides agree, a line comes back reversed`, async () => {
          const srv = await startOpensslServer({
            ...p256.leaf,
            mode: 'rev',
            ciphersuites: suite,
            groups: OPENSSL_GROUP[group],
          });
          const c = await ourConnect({
            port: srv.port,
            ca: p256.ca,
            cipherSuites: [SUITE_CODE[suite]],
            groups: [GROUP_CODE[group]],
            crypto,
          });
          expect(c.handshake).toMatchObject({ cipher: suite, group, resumed: false });
          c.socket.write('stepwire over openssl\n');
          expect(await readUntil(c.socket, /lssnepo revo eriwpets/)).toContain('lssnepo revo eriwpets');
          c.socket.end();
          await srv.process.waitFor(/CONNECTION CLOSED/);
          expect(srv.facts()).toMatchObject({ protocol: 'TLSv1.3', cipher: suite, helloRetry: false });
          await srv.stop();
        });
      }
    }
  }

  it("key schedule: our client's NSS key log equals s_server's -keylogfile, line for line", async () => {
    const keylogFile = join(scratchDir('keylog'), 'server.keys');
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'rev', keylogFile });
    const ours: string[] = [];
    const c = await ourConnect({ port: srv.port, ca: p256.ca, keyLog: (l) => ours.push(l) });
    c.socket.write('keys\n');
    await readUntil(c.socket, /syek/);
    c.socket.end();
    await srv.process.waitFor(/CONNECTION CLOSED/);
    const theirs = keyLogLines(readFileSync(keylogFile, 'utf8'));
    expect(theirs.map((l) => l.split(' ')[0])).toEqual([
      'client_handshake_traffic_secret',
      'client_traffic_secret_0',
      'exporter_secret',
      'server_handshake_traffic_secret',
      'server_traffic_secret_0',
    ]);
    expect(keyLogLines(ours.join('\n'))).toEqual(theirs);
    await srv.stop();
  });

  it('exporter (RFC 8446 §7.5): s_server -keymatexport and ours agree', async () => {
    const srv = await startOpensslServer({
      ...p256.leaf,
      // s_server prints exported keying material only in its interactive mode.
      mode: 'interactive',
      keymatExport: { label: 'EXPERIMENTAL-stepwire', length: 32 },
    });
    const c = await ourConnect({ port: srv.port, ca: p256.ca });
    await srv.process.waitFor(/Keying material: [0-9A-F]+/);
    expect(srv.facts().keyingMaterial).toBe(hex(c.socket.exportKeyingMaterial(32, 'EXPERIMENTAL-stepwire')));
    c.socket.destroy();
    await srv.stop();
  });

  it('bulk: a 2 MB file from s_server -WWW arrives intact (many full records from OpenSSL)', async () => {
    const docRoot = scratchDir('www');
    const n = 2 * 1024 * 1024;
    writeFileSync(join(docRoot, 'blob.bin'), patternChunk(0, n));
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'WWW', docRoot, msg: false });
    const c = await ourConnect({ port: srv.port, ca: p256.ca });
    const chunks: Buffer[] = [];
    c.socket.on('data', (d: Buffer) => chunks.push(d));
    const ended = new Promise((r) => c.socket.once('end', r));
    c.socket.write('GET /blob.bin HTTP/1.0\r\n\r\n');
    await ended;
    c.socket.end();
    const all = Buffer.concat(chunks);
    const body = all.subarray(all.indexOf('\r\n\r\n') + 4);
    expect(all.subarray(0, 15).toString()).toBe('HTTP/1.0 200 ok');
    expect(body.length).toBe(n);
    expect(body.equals(patternChunk(0, n))).toBe(true);
    await srv.stop();
  });

  for (const kind of KEY_KINDS) {
    it(`verifies a ${kind} server certificate and its CertificateVerify`, async () => {
      const srv = await startOpensslServer({ ...fx.server[kind].leaf, mode: 'rev' });
      const c = await ourConnect({ port: srv.port, ca: fx.server[kind].ca });
      expect(c.handshake.peerCertificates).toBe(1);
      c.socket.write('abc\n');
      expect(await readUntil(c.socket, /cba/)).toContain('cba');
      c.socket.destroy();
      await srv.stop();
    });
  }

  it('connecting by IP address: no SNI (RFC 6066 §3), the certificate matched on its iPAddress SAN', async () => {
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'rev', msg: false, trace: true });
    // Control: by name, s_server's trace shows our server_name extension.
    const byName = await ourConnect({ port: srv.port, ca: p256.ca });
    byName.socket.end();
    await srv.process.waitFor(/CONNECTION CLOSED/);
    expect(srv.process.text()).toMatch(/extension_type=server_name\(0\)/);
    const mark = srv.process.mark();
    const c = await ourConnect({ port: srv.port, ca: p256.ca, servername: '127.0.0.1' });
    c.socket.write('by address\n');
    expect(await readUntil(c.socket, /sserdda yb/)).toContain('sserdda yb');
    c.socket.end();
    await srv.process.waitFor(/CONNECTION CLOSED/, { since: mark });
    expect(srv.process.text(mark)).toMatch(/ClientHello/);
    expect(srv.process.text(mark)).not.toMatch(/extension_type=server_name/);
    const wrongIp = await ourConnectError({ port: srv.port, ca: p256.ca, servername: '127.0.0.2' });
    expect(wrongIp).toMatchObject({ name: 'TlsError', alert: 'bad_certificate', sentByUs: true });
    await srv.stop();
  });

  it('HelloRetryRequest: s_server wants P-256, we offered an x25519 share first', async () => {
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'rev', groups: 'P-256' });
    const c = await ourConnect({
      port: srv.port,
      ca: p256.ca,
      groups: [GROUP_CODE.x25519, GROUP_CODE['P-256']],
    });
    expect(c.handshake).toMatchObject({ group: 'P-256', helloRetry: true });
    c.socket.write('retry\n');
    expect(await readUntil(c.socket, /yrter/)).toContain('yrter');
    c.socket.end();
    await srv.process.waitFor(/CONNECTION CLOSED/);
    expect(srv.facts()).toMatchObject({ clientHellos: 2, helloRetry: true });
    await srv.stop();
  });

  it('resumption through a HelloRetryRequest: the retried ClientHello carries the PSK again, s_server says Reused', async () => {
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'www', groups: 'P-256' });
    const first = await ourConnect({ port: srv.port, ca: p256.ca, groups: [GROUP_CODE['P-256']] });
    first.socket.write(GET);
    await readUntil(first.socket);
    first.socket.end();
    const session = await first.ticket();
    const second = await ourConnect({
      port: srv.port,
      ca: p256.ca,
      session,
      groups: [GROUP_CODE.x25519, GROUP_CODE['P-256']],
    });
    expect(second.handshake).toMatchObject({ helloRetry: true, resumed: true, peerCertificates: 0 });
    second.socket.write(GET);
    expect(parseOpensslOutput(await readUntil(second.socket))).toMatchObject({ reused: true });
    second.socket.end();
    await srv.stop();
  });

  it('resumption: the second connection presents our ticket and s_server says Reused', async () => {
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'www' });
    const first = await ourConnect({ port: srv.port, ca: p256.ca });
    const ticket = first.ticket();
    first.socket.write(GET);
    expect(parseOpensslOutput(await readUntil(first.socket)).reused).toBe(false);
    // s_server -www waits for our close_notify before it accepts the next connection.
    first.socket.end();
    const session = await ticket;
    const second = await ourConnect({ port: srv.port, ca: p256.ca, session });
    expect(second.handshake.resumed).toBe(true);
    expect(second.handshake.peerCertificates).toBe(0);
    second.socket.write(GET);
    expect(parseOpensslOutput(await readUntil(second.socket))).toMatchObject({ reused: true });
    second.socket.end();
    await srv.stop();
  });

  it('0-RTT: s_server -early_data accepts our early data and prints it', async () => {
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'interactive', earlyData: true });
    const first = await ourConnect({ port: srv.port, ca: p256.ca });
    const session = await first.ticket();
    expect(session.maxEarlyDataSize).toBeGreaterThan(0);
    first.socket.end();
    await srv.process.waitFor(/DONE/);
    const mark = srv.process.mark();
    const second = await ourConnect({
      port: srv.port,
      ca: p256.ca,
      session,
      earlyData: new TextEncoder().encode('zero round trip from stepwire\n'),
    });
    expect(second.handshake.resumed).toBe(true);
    expect(second.earlyDataAccepted).toBe(true);
    await srv.process.waitFor(/zero round trip from stepwire/, { since: mark });
    await srv.process.waitFor(/Early data received/, { since: mark });
    await srv.process.waitFor(/Reused session-id/, { since: mark });
    expect(srv.facts(mark)).toMatchObject({ reused: true, earlyDataReceived: true });
    // And what the server's user types comes back to us afterwards.
    srv.process.write('echoed after 0-RTT\n');
    expect(await readUntil(second.socket, /echoed after 0-RTT/)).toContain('echoed after 0-RTT');
    second.socket.destroy();
    await srv.stop();
  });

  it("0-RTT replayed: s_server accepts a ticket's early data once, rejects it the second time; we carry on", async () => {
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'interactive', earlyData: true });
    const first = await ourConnect({ port: srv.port, ca: p256.ca });
    const session = await first.ticket();
    first.socket.end();
    await srv.process.waitFor(/DONE/);
    const early = new TextEncoder().encode('replayable\n');
    const a = await ourConnect({ port: srv.port, ca: p256.ca, session, earlyData: early });
    expect(a.earlyDataAccepted).toBe(true);
    a.socket.end();
    await srv.process.waitFor(/DONE[\s\S]*DONE/);
    const mark = srv.process.mark();
    const b = await ourConnect({ port: srv.port, ca: p256.ca, session, earlyData: early });
    // OpenSSL's anti-replay (RFC 8446 §8): the same ticket carries early data only once.
    expect(b.earlyDataAccepted).toBe(false);
    b.socket.write('in 1-RTT instead\n');
    await srv.process.waitFor(/in 1-RTT instead/, { since: mark });
    expect(srv.process.text(mark)).not.toMatch(/replayable/);
    b.socket.destroy();
    await srv.stop();
  });

  it('0-RTT meets a HelloRetryRequest: the early data is rejected (RFC 8446 §4.1.2) and the connection goes on', async () => {
    const srv = await startOpensslServer({
      ...p256.leaf,
      mode: 'interactive',
      earlyData: true,
      groups: 'P-256',
    });
    const first = await ourConnect({ port: srv.port, ca: p256.ca, groups: [GROUP_CODE['P-256']] });
    const session = await first.ticket();
    first.socket.end();
    await srv.process.waitFor(/DONE/);
    const mark = srv.process.mark();
    // Our first key share is x25519: s_server, P-256 only, must ask again.
    const second = await ourConnect({
      port: srv.port,
      ca: p256.ca,
      session,
      groups: [GROUP_CODE.x25519, GROUP_CODE['P-256']],
      earlyData: new TextEncoder().encode('lost to the retry\n'),
    });
    // With -early_data OpenSSL keeps single-use tickets (RFC 8446 §8.1) and spends ours on the
    // first ClientHello, so the retried one is a full handshake: resumed or not is its choice.
    expect(second.handshake).toMatchObject({ helloRetry: true, group: 'P-256' });
    expect(second.earlyDataAccepted).toBe(false);
    second.socket.write('after the retry\n');
    await srv.process.waitFor(/after the retry/, { since: mark });
    expect(srv.process.text(mark)).not.toMatch(/lost to the retry/);
    second.socket.destroy();
    await srv.stop();
  });

  it('KeyUpdate from us (update_requested): s_server takes it, answers with its own, data flows both ways', async () => {
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'interactive' });
    const c = await ourConnect({ port: srv.port, ca: p256.ca });
    c.socket.write('before update\n');
    await srv.process.waitFor(/before update/);
    const mark = srv.process.mark();
    const updates: string[] = [];
    c.socket.on('keyUpdate', (direction: string) => updates.push(direction));
    c.socket.updateKeys(true);
    c.socket.write('after our update\n');
    await srv.process.waitFor(/after our update/, { since: mark });
    // OpenSSL sends its own KeyUpdate before the next record it writes (RFC 8446 §4.6.3).
    srv.process.write('server data after update\n');
    expect(await readUntil(c.socket, /server data after update/)).toContain('server data after update');
    await srv.process.waitFor(/>>> [^\n]*KeyUpdate/, { since: mark });
    expect(srv.facts(mark)).toMatchObject({ keyUpdatesReceived: 1, keyUpdatesSent: 1 });
    expect(updates).toEqual(['write', 'read']);
    c.socket.destroy();
    await srv.stop();
  });

  it("KeyUpdate from s_server ('K': update_requested): we update our reading and our writing keys", async () => {
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'interactive' });
    const c = await ourConnect({ port: srv.port, ca: p256.ca });
    c.socket.write('hello\n');
    await srv.process.waitFor(/^hello$/m);
    const updates: string[] = [];
    c.socket.on('keyUpdate', (direction: string) => updates.push(direction));
    const mark = srv.process.mark();
    srv.process.write('K\n');
    // s_server reads a command only as a whole line of its own: wait until it has acted on it.
    await srv.process.waitFor(/>>> [^\n]*KeyUpdate/, { since: mark });
    srv.process.write('from the server after K\n');
    expect(await readUntil(c.socket, /from the server after K/)).toContain('from the server after K');
    c.socket.write('from us after K\n');
    await srv.process.waitFor(/from us after K/, { since: mark });
    expect(srv.facts(mark)).toMatchObject({ keyUpdatesSent: 1, keyUpdatesReceived: 1 });
    expect(updates).toEqual(['read', 'write']);
    c.socket.destroy();
    await srv.stop();
  });

  it("three KeyUpdates from s_server ('k': update_not_requested): we update only our reading keys", async () => {
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'interactive' });
    const c = await ourConnect({ port: srv.port, ca: p256.ca });
    const updates: string[] = [];
    c.socket.on('keyUpdate', (direction: string) => updates.push(direction));
    c.socket.write('start\n');
    await srv.process.waitFor(/^start$/m);
    for (let i = 1; i <= 3; i++) {
      const mark = srv.process.mark();
      srv.process.write('k\n');
      await srv.process.waitFor(/>>> [^\n]*KeyUpdate/, { since: mark });
      srv.process.write(`generation ${i}\n`);
      expect(await readUntil(c.socket, new RegExp(`generation ${i}`))).toContain(`generation ${i}`);
    }
    c.socket.write('still here\n');
    await srv.process.waitFor(/still here/);
    expect(updates).toEqual(['read', 'read', 'read']);
    expect(srv.facts().keyUpdatesReceived).toBe(0);
    c.socket.destroy();
    await srv.stop();
  });

  it('mutual TLS: s_server -Verify 1 gets and verifies our client certificate', async () => {
    const srv = await startOpensslServer({
      ...p256.leaf,
      mode: 'www',
      requireClientCert: { caFile: fx.client.ca.certFile },
    });
    const c = await ourConnect({ port: srv.port, ca: p256.ca, cert: fx.client.leaf });
    c.socket.write(GET);
    const page = await readUntil(c.socket);
    c.socket.end();
    expect(page).toMatch(/Client certificate/);
    expect(page).toContain('stepwire test client');
    await srv.stop();
  });

  it('small records: s_server -max_send_frag 512 splits its certificate flight, we reassemble it', async () => {
    const srv = await startOpensslServer({
      ...fx.server.rsa2048.leaf,
      mode: 'rev',
      extraArgs: ['-max_send_frag', '512'],
    });
    const wire = await recordingProxy(srv.port);
    const c = await ourConnect({ port: wire.port, ca: fx.server.rsa2048.ca });
    const line = `${'0123456789'.repeat(150)}\n`;
    c.socket.write(line);
    const reversed = [...line.trimEnd()].reverse().join('');
    expect(await readUntil(c.socket, new RegExp(reversed))).toContain(reversed);
    c.socket.destroy();
    wire.close();
    await srv.stop();
    // The records s_server really sent: the protected ones (application_data on the wire) are
    // all within the 512-byte split, full fragments among them, and the certificate flight
    // (an RSA-2048 certificate and its 256-byte signature) and the 1500-byte line need several.
    const records = recordsOnWire(wire.toClient);
    const protectedLengths = records.filter((r) => r.type === 23).map((r) => r.length);
    expect(records[0]?.type).toBe(22);
    expect(Math.max(...protectedLengths)).toBeLessThanOrEqual(SPLIT_512_MAX);
    // One full fragment for the ~940-byte Certificate message (continued in the next record),
    // two for the line; the rest (EncryptedExtensions, CertificateVerify, Finished, tickets) fit.
    expect(protectedLengths.filter((n) => n === SPLIT_512_MAX).length).toBeGreaterThanOrEqual(3);
  });

  it('external PSK: s_server -psk -nocert and our client agree on the key, no certificates', async () => {
    const srv = await startOpensslServer({ mode: 'rev', psk: PSK });
    const c = await ourConnect({ port: srv.port, ca: p256.ca, externalPsk: PSK_BYTES });
    expect(c.handshake.peerCertificates).toBe(0);
    c.socket.write('shared key\n');
    expect(await readUntil(c.socket, /yek derahs/)).toContain('yek derahs');
    c.socket.end();
    await srv.process.waitFor(/CONNECTION CLOSED/);
    expect(srv.process.text()).not.toMatch(/Alert \[length 0002\], fatal/);
    await srv.stop();
  });

  it('external PSK with the wrong key: the handshake fails on our side with a typed alert', async () => {
    const srv = await startOpensslServer({ mode: 'rev', psk: PSK });
    const wrong = { identity: PSK_BYTES.identity, key: PSK_BYTES.key.map((b) => b ^ 1) };
    const err = await ourConnectError({ port: srv.port, ca: p256.ca, externalPsk: wrong });
    expect(err).toMatchObject({ name: 'TlsError' });
    expect(['decrypt_error', 'bad_record_mac', 'illegal_parameter']).toContain(err.alert);
    await srv.stop();
  });

  it('mutual TLS without a certificate: s_server refuses with certificate_required', async () => {
    const srv = await startOpensslServer({
      ...p256.leaf,
      mode: 'www',
      requireClientCert: { caFile: fx.client.ca.certFile },
    });
    const c = await ourConnect({ port: srv.port, ca: p256.ca });
    c.socket.write(GET);
    const err = await new Promise<Error & { alert?: string; sentByUs?: boolean }>((resolve) =>
      c.socket.once('error', resolve),
    );
    expect(err).toMatchObject({ alert: 'certificate_required', sentByUs: false });
    await srv.process.waitFor(/>>> [^\n]*Alert/);
    expect(srv.facts().alertsSent).toContain('certificate_required');
    await srv.stop();
  });

  it('ALPN: s_server offers h2 and http/1.1, we ask for http/1.1', async () => {
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'www', alpn: ['h2', 'http/1.1'] });
    const c = await ourConnect({ port: srv.port, ca: p256.ca, alpn: ['http/1.1'] });
    expect(c.handshake.alpn).toBe('http/1.1');
    c.socket.destroy();
    await srv.stop();
  });

  it('no cipher suite in common: s_server refuses, we get a typed handshake_failure', async () => {
    const srv = await startOpensslServer({
      ...p256.leaf,
      mode: 'rev',
      ciphersuites: 'TLS_AES_256_GCM_SHA384',
    });
    const err = await ourConnectError({
      port: srv.port,
      ca: p256.ca,
      cipherSuites: [SUITE_CODE.TLS_AES_128_GCM_SHA256],
    });
    expect(err).toMatchObject({ name: 'TlsError', alert: 'handshake_failure', sentByUs: false });
    await srv.stop();
  });

  it('a TLS 1.2-only s_server: it refuses our 1.3-only ClientHello, we get a typed protocol_version', async () => {
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'rev', version: 'tls1_2' });
    const err = await ourConnectError({ port: srv.port, ca: p256.ca });
    expect(err).toMatchObject({ name: 'TlsError', alert: 'protocol_version', sentByUs: false });
    await srv.stop();
  });

  it('no group in common (s_server only ffdhe2048, which we do not offer): s_server refuses, we get a typed alert', async () => {
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'rev', groups: 'ffdhe2048' });
    const err = await ourConnectError({ port: srv.port, ca: p256.ca });
    expect(err).toMatchObject({ name: 'TlsError', sentByUs: false });
    expect(['handshake_failure', 'insufficient_security']).toContain(err.alert);
    await srv.stop();
  });

  it('a server certificate from a CA we do not trust: we send unknown_ca, s_server receives it', async () => {
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'rev' });
    const err = await ourConnectError({ port: srv.port, ca: fx.unrelatedCa });
    expect(err).toMatchObject({ name: 'TlsError', alert: 'unknown_ca', sentByUs: true });
    await srv.process.waitFor(/<<< [^\n]*Alert/);
    expect(srv.facts().alertsReceived).toEqual(['unknown_ca']);
    await srv.stop();
  });

  it('a server certificate for another name: we send bad_certificate', async () => {
    const srv = await startOpensslServer({ ...fx.wrongName, mode: 'rev' });
    const err = await ourConnectError({ port: srv.port, ca: p256.ca });
    expect(err).toMatchObject({ name: 'TlsError', alert: 'bad_certificate', sentByUs: true });
    await srv.process.waitFor(/<<< [^\n]*Alert/);
    expect(srv.facts().alertsReceived).toEqual(['bad_certificate']);
    await srv.stop();
  });
});

describe('openssl s_client vs our server', () => {
  for (const [providerName, crypto] of PROVIDERS) {
    for (const suite of SUITES) {
      for (const group of GROUPS) {
        it(`${suite} over ${group} (${providerName} crypto): s_client's summary and our handshake agree, echo`, async () => {
          const srv = await startOurServer({
            identity: p256.leaf,
            cipherSuites: [SUITE_CODE[suite]],
            groups: [GROUP_CODE[group]],
            crypto,
          });
          const run = await runOpensslClient({
            port: srv.port,
            caFile: p256.ca.certFile,
            groups: OPENSSL_GROUP[group],
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
            helloRetry: false,
          });
          expect(srv.handshakes[0]).toMatchObject({ cipher: suite, group, resumed: false });
          await srv.close();
        });
      }
    }
  }

  it("key schedule: s_client's -keylogfile equals our server's NSS key log, and the exporters agree", async () => {
    const keylogFile = join(scratchDir('keylog'), 'client.keys');
    const ours: string[] = [];
    const srv = await startOurServer({ identity: p256.leaf, keyLog: (l) => ours.push(l) });
    const run = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      keylogFile,
      keymatExport: { label: 'EXPERIMENTAL-stepwire', length: 48 },
      input: 'k\n',
      until: /^k$/m,
    });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const theirs = keyLogLines(readFileSync(keylogFile, 'utf8'));
    expect(theirs).toHaveLength(5);
    expect(keyLogLines(ours.join('\n'))).toEqual(theirs);
    expect(run.facts.keyingMaterial).toBe(
      hex(srv.sockets[0]!.exportKeyingMaterial(48, 'EXPERIMENTAL-stepwire')),
    );
    await srv.close();
  });

  for (const kind of KEY_KINDS) {
    it(`s_client verifies our ${kind} certificate and CertificateVerify`, async () => {
      const srv = await startOurServer({ identity: fx.server[kind].leaf });
      const run = await runOpensslClient({
        port: srv.port,
        caFile: fx.server[kind].ca.certFile,
        input: 'x\n',
        until: /^x$/m,
      });
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(run.facts).toMatchObject({ verifyOk: true, peerSubject: 'CN = stepwire.test' });
      await srv.close();
    });
  }

  it('s_client by IP address without SNI: -verify_ip 127.0.0.1 accepts our certificate', async () => {
    const srv = await startOurServer({ identity: p256.leaf });
    const run = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      servername: null,
      extraArgs: ['-verify_ip', '127.0.0.1'],
      input: 'x\n',
      until: /^x$/m,
    });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.facts.verifyOk).toBe(true);
    await srv.close();
  });

  it('HelloRetryRequest: our server wants P-256, s_client sends an x25519 share first', async () => {
    const srv = await startOurServer({ identity: p256.leaf, groups: [GROUP_CODE['P-256']] });
    const run = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      groups: 'X25519:P-256',
      input: 'x\n',
      until: /^x$/m,
    });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.facts).toMatchObject({ helloRetry: true, clientHellos: 2, group: 'P-256' });
    expect(srv.handshakes[0]).toMatchObject({ group: 'P-256', helloRetry: true });
    await srv.close();
  });

  it('resumption with -sess_out / -sess_in: New, then Reused', async () => {
    const srv = await startOurServer({ identity: p256.leaf });
    const sess = join(scratchDir('sess'), 'session.pem');
    const first = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      sessOut: sess,
      input: 'one\n',
      until: /^one$/m,
      lingerMs: 100,
    });
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.facts).toMatchObject({ reused: false });
    expect(first.facts.ticketsReceived).toBeGreaterThan(0);
    const second = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      sessIn: sess,
      input: 'two\n',
      until: /^two$/m,
    });
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect(second.facts.reused).toBe(true);
    expect(srv.handshakes.map((h) => h.resumed)).toEqual([false, true]);
    await srv.close();
  });

  it('0-RTT: s_client -early_data is accepted and our server delivers the early data', async () => {
    const srv = await startOurServer({ identity: p256.leaf, maxEarlyData: 16384 });
    const sess = join(scratchDir('sess'), 'session.pem');
    const first = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      sessOut: sess,
      // The ticket comes before the echo; s_client's own status lines are stdio-buffered.
      input: 'first\n',
      until: /^first$/m,
      lingerMs: 100,
    });
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toMatch(/Max Early Data: 16384/);
    const early = writeScratchFile('early.txt', 'early words for stepwire\n');
    const second = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      sessIn: sess,
      earlyDataFile: early,
      until: /^early words for stepwire$/m,
    });
    expect(second.facts).toMatchObject({ reused: true, earlyData: 'accepted' });
    // The early data reaches our application (which echoes it).
    expect(Buffer.concat(srv.earlyData).toString()).toBe('early words for stepwire\n');
    expect(second.stdout).toMatch(/^early words for stepwire$/m);
    expect(second.code).toBe(0);
    await srv.close();
  });

  it("0-RTT replayed by an attacker: s_client's captured first flight, sent again, brings no early data (RFC 8446 §8.2)", async () => {
    const srv = await startOurServer({ identity: p256.leaf, maxEarlyData: 16384 });
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
    // An on-path recorder: what the client sends before the server has said anything is its
    // ClientHello and the 0-RTT records.
    const flight: Buffer[] = [];
    const proxy = net.createServer((down) => {
      const up = net.connect({ host: '127.0.0.1', port: srv.port });
      let serverSpoke = false;
      down.on('data', (d: Buffer) => {
        if (!serverSpoke) flight.push(d);
        up.write(d);
      });
      up.on('data', (d: Buffer) => {
        serverSpoke = true;
        down.write(d);
      });
      down.on('error', () => up.destroy());
      up.on('error', () => down.destroy());
      down.on('close', () => up.end());
      up.on('close', () => down.end());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const early = writeScratchFile('early.txt', 'transfer 100 coins\n');
    const once = await runOpensslClient({
      port: (proxy.address() as net.AddressInfo).port,
      caFile: p256.ca.certFile,
      sessIn: sess,
      earlyDataFile: early,
      until: /^transfer 100 coins$/m,
    });
    expect(once.facts.earlyData).toBe('accepted');
    expect(Buffer.concat(srv.earlyData).toString()).toBe('transfer 100 coins\n');
    proxy.close();
    // The recorded flight really holds the 0-RTT data: records after the ClientHello that are
    // application_data on the wire (RFC 8446 §5.2), beyond a compatibility change_cipher_spec.
    const bytes = Buffer.concat(flight);
    const types: number[] = [];
    for (let at = 0; at + 5 <= bytes.length; at += 5 + bytes.readUInt16BE(at + 3)) types.push(bytes[at]!);
    expect(types[0]).toBe(22);
    expect(types.filter((t) => t === 23).length).toBeGreaterThanOrEqual(1);
    // The attacker's replay: the same bytes on a new connection.
    const before = srv.sockets.length;
    const replay = net.connect({ host: '127.0.0.1', port: srv.port });
    replay.on('error', () => {});
    const answer: Buffer[] = [];
    replay.on('data', (d: Buffer) => answer.push(d));
    await new Promise((r) => replay.once('connect', r));
    replay.write(Buffer.concat(flight));
    // EOF right after the flight: the server handles every replayed record before it reads the
    // end, then fails the unfinished handshake (truncated transport) and closes. Waiting for that
    // close, rather than a fixed sleep, means the early records were seen and skipped.
    replay.end();
    await eventually(() => expect(srv.sockets.length).toBe(before + 1));
    const replayed = srv.sockets[before]!;
    if (!replayed.destroyed) await new Promise((r) => replayed.once('close', r));
    // Our side closes once it has read everything the server wrote before closing.
    if (!replay.destroyed) await new Promise((r) => replay.once('close', r));
    // The server did take the replayed ClientHello (it answered with a handshake record, a
    // ServerHello) but no handshake completed and no early data was delivered twice.
    expect(srv.errors.at(-1)?.message).toMatch(/truncated/);
    expect(Buffer.concat(answer)[0]).toBe(22);
    expect(srv.handshakes).toHaveLength(2);
    expect(Buffer.concat(srv.earlyData).toString()).toBe('transfer 100 coins\n');
    await srv.close();
  });

  it('s_client 0-RTT into a HelloRetryRequest: our server skips the early records (RFC 8446 §4.2.10), s_client sees "rejected"', async () => {
    const srv = await startOurServer({
      identity: p256.leaf,
      maxEarlyData: 16384,
      groups: [GROUP_CODE['P-256'], GROUP_CODE.x25519],
      groupSelection: 'preference',
    });
    const sess = join(scratchDir('sess'), 'session.pem');
    const first = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      sessOut: sess,
      groups: 'P-256',
      input: 'first\n',
      until: /^first$/m,
      lingerMs: 100,
    });
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const early = writeScratchFile('early.txt', 'too early\n');
    const second = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      sessIn: sess,
      groups: 'X25519:P-256',
      earlyDataFile: early,
      input: 'in 1-RTT\n',
      until: /^in 1-RTT$/m,
    });
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect(second.facts).toMatchObject({ helloRetry: true, reused: true, earlyData: 'rejected' });
    expect(srv.earlyData).toEqual([]);
    await srv.close();
  });

  it("KeyUpdate from s_client ('K'): our server updates and keeps echoing", async () => {
    const srv = await startOurServer({ identity: p256.leaf });
    const client = startOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      commands: true,
      keepInputOpen: true,
    });
    await client.process.waitFor(/Verify return code: 0/);
    client.process.write('before\n');
    await client.process.waitFor(/^before$/m);
    const mark = client.process.mark();
    client.process.write('K\n');
    // s_client takes a command only as a line of its own: wait until it has acted on it.
    await client.process.waitFor(/KEYUPDATE/, { since: mark });
    client.process.write('after\n');
    await client.process.waitFor(/^after$/m);
    client.process.endInput();
    const run = await client.result;
    expect(run.code).toBe(0);
    // Ours answered update_requested with a KeyUpdate of its own (RFC 8446 §4.6.3).
    expect(run.facts).toMatchObject({ keyUpdatesSent: 1, keyUpdatesReceived: 1 });
    await srv.close();
  });

  it('client certificates: s_client -cert/-key, our server verifies the chain', async () => {
    const srv = await startOurServer({ identity: p256.leaf, clientAuth: { ca: fx.client.ca } });
    const run = await runOpensslClient({
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

  it('small records: s_client -max_send_frag 512 splits its certificate flight, our server reassembles it', async () => {
    const srv = await startOurServer({ identity: p256.leaf, clientAuth: { ca: fx.client.ca } });
    const wire = await recordingProxy(srv.port);
    const line = `${'abcdefghij'.repeat(200)}`;
    const run = await runOpensslClient({
      port: wire.port,
      caFile: p256.ca.certFile,
      // An RSA certificate (about 800 bytes) and a 256-byte signature: the flight spans records.
      certFile: fx.client.rsaLeaf.certFile,
      keyFile: fx.client.rsaLeaf.keyFile,
      extraArgs: ['-max_send_frag', '512'],
      // Without -msg, whose lines would land between the pieces of the echoed line.
      msg: false,
      input: `${line}\n`,
      until: new RegExp(`^${line}$`, 'm'),
    });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(srv.handshakes[0]?.peerCertificates).toBe(1);
    wire.close();
    await srv.close();
    // The records s_client really sent: its ClientHello in the clear, then protected records
    // all within the 512-byte split, full ones among them (its certificate flight and the
    // 2000-byte line both need several).
    const records = recordsOnWire(wire.toServer);
    const protectedLengths = records.filter((r) => r.type === 23).map((r) => r.length);
    expect(records[0]?.type).toBe(22);
    expect(Math.max(...protectedLengths)).toBeLessThanOrEqual(SPLIT_512_MAX);
    expect(protectedLengths.filter((n) => n === SPLIT_512_MAX).length).toBeGreaterThanOrEqual(4);
  });

  it('external PSK: s_client -psk against our server, "Reused" in s_client\'s words', async () => {
    const srv = await startOurServer({
      identity: p256.leaf,
      externalPsks: new Map([[PSK.identity, PSK_BYTES.key]]),
    });
    const run = await runOpensslClient({
      port: srv.port,
      servername: null,
      psk: PSK,
      input: 'psk\n',
      until: /^psk$/m,
    });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.facts.reused).toBe(true);
    expect(srv.handshakes[0]?.peerCertificates).toBe(0);
    await srv.close();
  });

  it("group preference: our server insists on P-256 and retries s_client's x25519 share", async () => {
    const srv = await startOurServer({
      identity: p256.leaf,
      groups: [GROUP_CODE['P-256'], GROUP_CODE.x25519],
      groupSelection: 'preference',
    });
    const run = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      groups: 'X25519:P-256',
      input: 'x\n',
      until: /^x$/m,
    });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.facts).toMatchObject({ helloRetry: true, group: 'P-256' });
    await srv.close();
  });

  it('no cipher suite in common: our server sends handshake_failure, s_client reports it', async () => {
    const srv = await startOurServer({
      identity: p256.leaf,
      cipherSuites: [SUITE_CODE.TLS_AES_256_GCM_SHA384],
    });
    const run = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      ciphersuites: 'TLS_CHACHA20_POLY1305_SHA256',
      input: 'x\n',
      until: /^x$/m,
    });
    expect(run.code).not.toBe(0);
    expect(run.facts.alertsReceived).toEqual(['handshake_failure']);
    await eventually(() =>
      expect(srv.errors[0]).toMatchObject({ alert: 'handshake_failure', sentByUs: true }),
    );
    await srv.close();
  });

  it('a TLS 1.2-only s_client: our server answers protocol_version (RFC 8446 §4.2.1)', async () => {
    const srv = await startOurServer({ identity: p256.leaf });
    const run = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      version: 'tls1_2',
      input: 'x\n',
      until: /^x$/m,
    });
    expect(run.code).not.toBe(0);
    expect(run.facts.alertsReceived).toEqual(['protocol_version']);
    await eventually(() =>
      expect(srv.errors[0]).toMatchObject({ alert: 'protocol_version', sentByUs: true }),
    );
    await srv.close();
  });

  it('no ALPN protocol in common: our server sends no_application_protocol (RFC 7301 §3.2)', async () => {
    const srv = await startOurServer({ identity: p256.leaf, alpn: ['h2'] });
    const run = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      alpn: ['http/1.1'],
      input: 'x\n',
      until: /^x$/m,
    });
    expect(run.code).not.toBe(0);
    expect(run.facts.alertsReceived).toEqual(['no_application_protocol']);
    await srv.close();
  });

  it('ALPN: s_client offers h2 and http/1.1, our server picks its own preference', async () => {
    const srv = await startOurServer({ identity: p256.leaf, alpn: ['http/1.1', 'h2'] });
    const run = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      alpn: ['h2', 'http/1.1'],
      input: 'x\n',
      until: /^x$/m,
    });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.facts.alpn).toBe('http/1.1');
    expect(srv.handshakes[0]?.alpn).toBe('http/1.1');
    await srv.close();
  });

  it('client certificate required but none sent: our server sends certificate_required', async () => {
    const srv = await startOurServer({
      identity: p256.leaf,
      clientAuth: { ca: fx.client.ca, required: true },
    });
    const run = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      input: 'x\n',
      until: /^x$/m,
    });
    expect(run.code).not.toBe(0);
    expect(run.facts.alertsReceived).toContain('certificate_required');
    await eventually(() =>
      expect(srv.errors[0]).toMatchObject({ alert: 'certificate_required', sentByUs: true }),
    );
    await srv.close();
  });

  it('our server with a certificate for another name: s_client reports a hostname mismatch', async () => {
    const srv = await startOurServer({ identity: fx.wrongName });
    const run = await runOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      input: 'x\n',
      until: /^x$/m,
    });
    expect(run.code).not.toBe(0);
    expect(run.facts).toMatchObject({ verifyOk: false, verifyCode: 62 });
    expect(run.facts.alertsSent).toContain('bad_certificate');
    await eventually(() =>
      expect(srv.errors[0]).toMatchObject({ alert: 'bad_certificate', sentByUs: false }),
    );
    await srv.close();
  });
});
