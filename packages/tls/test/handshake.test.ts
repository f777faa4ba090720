/**
 * Our client against our server, in memory: full handshakes, HelloRetryRequest,
 * resumption, ALPN, KeyUpdate, closure, fragmentation and failure paths. Once per provider.
 */
import { TraceBus, type TraceEvent, toHex, utf8 } from '@stepwire/wire';
import { beforeAll, describe, expect, it } from 'vitest';
import { TlsClient, type TlsClientOptions } from '../src/client.ts';
import { AlertDescription } from '../src/codec/alert.ts';
import { NamedGroup } from '../src/codec/common.ts';
import { type ClientHello, decodeHandshake, encodeHandshake } from '../src/codec/handshake.ts';
import { encodeTLSPlaintext } from '../src/codec/record.ts';
import type { SessionTicket, TlsEvent } from '../src/connection.ts';
import { AntiReplayCache, TlsServer, type TlsServerOptions } from '../src/server.ts';
import { makeIdentity, pinnedVerifier, signerFor, type TestIdentity } from './helpers/node-auth.ts';
import { deliver, pump } from './helpers/pump.ts';
import { PROVIDERS } from './providers.ts';

let ec: TestIdentity;
let rsa: TestIdentity;
beforeAll(() => {
  ec = makeIdentity('stepwire.test', 'ec');
  rsa = makeIdentity('stepwire.test', 'rsa');
});

const NOW = 1_000_000;
const of = <T extends TlsEvent['type']>(events: TlsEvent[], type: T) =>
  events.filter((e): e is Extract<TlsEvent, { type: T }> => e.type === type);

describe.each(PROVIDERS)('client <-> server in memory ($name)', (crypto) => {
  function connect(
    copts: Partial<TlsClientOptions> = {},
    sopts: Partial<TlsServerOptions> = {},
    pumpOpts: Parameters<typeof pump>[3] = {},
  ) {
    const client = new TlsClient({
      crypto,
      serverName: 'stepwire.test',
      verifier: pinnedVerifier([ec, rsa]),
      ...copts,
    });
    const server = new TlsServer({ crypto, signer: signerFor(ec), ...sopts });
    const ev = pump(client, server, client.start(NOW), { now: NOW, ...pumpOpts });
    return { client, server, ev };
  }

  it('completes a full handshake and carries data both ways', () => {
    const clientLog: string[] = [];
    const serverLog: string[] = [];
    const { client, server, ev } = connect(
      { keyLog: (l) => clientLog.push(l) },
      { keyLog: (l) => serverLog.push(l) },
    );
    expect(client.state).toBe('CONNECTED');
    expect(server.state).toBe('CONNECTED');
    const done = of(ev.a, 'handshake-complete')[0]!;
    // The hybrid post-quantum group is our default first choice (draft-ietf-tls-ecdhe-mlkem).
    expect(done).toMatchObject({
      cipherSuite: 'TLS_AES_128_GCM_SHA256',
      group: 'X25519MLKEM768',
      resumed: false,
    });
    expect(done.peerCertificates[0]).toEqual(ec.certDer);
    expect(of(ev.b, 'handshake-complete')[0]).toMatchObject({ serverName: 'stepwire.test' });
    expect(of(ev.a, 'session-ticket').length).toBe(1);
    // Both sides log the same five secrets for the same client_random.
    expect(clientLog.sort()).toEqual(serverLog.sort());
    expect(clientLog.length).toBe(5);
    expect(toHex(client.exportKeyingMaterial('EXPERIMENTAL test', utf8('ctx'), 32))).toBe(
      toHex(server.exportKeyingMaterial('EXPERIMENTAL test', utf8('ctx'), 32)),
    );

    const toServer = deliver(server, client.send(utf8('ping'), NOW));
    expect(of(toServer.events, 'data')[0]!.data).toEqual(utf8('ping'));
    const toClient = deliver(client, server.send(utf8('pong'), NOW));
    expect(of(toClient.events, 'data')[0]!.data).toEqual(utf8('pong'));

    const closing = deliver(server, client.close(NOW));
    expect(of(closing.events, 'peer-closed').length).toBe(1);
    deliver(client, server.close(NOW));
    expect(client.isClosed && server.isClosed).toBe(true);
  });

  it('signs with RSA-PSS and honours the server suite preference', () => {
    const { ev } = connect({}, { signer: signerFor(rsa), cipherSuites: [0x1303, 0x1302] });
    expect(of(ev.a, 'handshake-complete')[0]!.cipherSuite).toBe('TLS_CHACHA20_POLY1305_SHA256');
    const { ev: ev2 } = connect({ cipherSuites: [0x1302] }, { signer: signerFor(rsa) });
    expect(of(ev2.a, 'handshake-complete')[0]!.cipherSuite).toBe('TLS_AES_256_GCM_SHA384');
  });

  it('retries with a P-256 share after a HelloRetryRequest (RFC 8446 §4.1.4)', () => {
    const trace = new TraceBus();
    const seen: TraceEvent[] = [];
    trace.on((e) => seen.push(e));
    const { client, ev } = connect({ trace }, { groups: [NamedGroup.secp256r1] });
    expect(client.state).toBe('CONNECTED');
    expect(of(ev.a, 'handshake-complete')[0]!.group).toBe('secp256r1');
    const messages = seen.filter((e) => e.dir !== 'local').map((e) => `${e.dir} ${e.summary.split(' ')[0]}`);
    expect(messages.slice(0, 3)).toEqual(['out ClientHello', 'in HelloRetryRequest', 'out ClientHello']);
    const retry = seen.find((e) => e.summary.startsWith('HelloRetryRequest'))!;
    expect(retry).toMatchObject({
      layer: 'tls',
      dir: 'in',
      rfc: 'RFC 8446 §4.1.4',
      fields: { group: '0x0017' },
    });
    expect(seen.some((e) => e.state?.to === 'CONNECTED')).toBe(true);
    // Traces never carry secrets: no 32-byte hex string appears anywhere.
    expect(JSON.stringify(seen)).not.toMatch(/[0-9a-f]{64}/);
  });

  it('resumes with a ticket and skips the certificate (RFC 8446 §2.2)', () => {
    const ticketKey = crypto.randomBytes(32);
    const first = connect({}, { ticketKey });
    const ticket = of(first.ev.a, 'session-ticket')[0]!.ticket;
    const second = connect({ session: ticket }, { ticketKey });
    const done = of(second.ev.a, 'handshake-complete')[0]!;
    expect(done.resumed).toBe(true);
    expect(done.peerCertificates.length).toBe(0);
    expect(of(second.ev.b, 'handshake-complete')[0]!.resumed).toBe(true);
    // A server with another ticket key cannot open the ticket: a full handshake instead.
    const third = connect({ session: ticket }, {});
    expect(of(third.ev.a, 'handshake-complete')[0]!.resumed).toBe(false);
    // An expired ticket is not offered.
    const stale: SessionTicket = { ...ticket, receivedAt: NOW - ticket.lifetimeSeconds * 1000 - 1 };
    expect(of(connect({ session: stale }, { ticketKey }).ev.a, 'handshake-complete')[0]!.resumed).toBe(false);
  });

  it('resumes after a HelloRetryRequest, binders recomputed over the new transcript', () => {
    const ticketKey = crypto.randomBytes(32);
    const ticket = of(connect({}, { ticketKey }).ev.a, 'session-ticket')[0]!.ticket;
    const { ev } = connect({ session: ticket }, { ticketKey, groups: [NamedGroup.secp256r1] });
    expect(of(ev.a, 'handshake-complete')[0]).toMatchObject({ resumed: true, group: 'secp256r1' });
  });

  it('rejects a tampered PSK binder with decrypt_error', () => {
    const ticketKey = crypto.randomBytes(32);
    const ticket = of(connect({}, { ticketKey }).ev.a, 'session-ticket')[0]!.ticket;
    const bad: SessionTicket = { ...ticket, psk: ticket.psk.map((b) => b ^ 1) };
    const { ev } = connect({ session: bad }, { ticketKey });
    expect(of(ev.b, 'error')[0]).toMatchObject({ alertName: 'decrypt_error', sent: true });
    expect(of(ev.a, 'error')[0]).toMatchObject({ alertName: 'decrypt_error', sent: false });
  });

  it('negotiates ALPN and fails without a common protocol', () => {
    const ok = connect({ alpnProtocols: ['h2', 'http/1.1'] }, { alpnProtocols: ['http/1.1', 'h2'] });
    expect(of(ok.ev.a, 'handshake-complete')[0]!.alpn).toBe('http/1.1');
    const bad = connect({ alpnProtocols: ['h2'] }, { alpnProtocols: ['imap'] });
    expect(of(bad.ev.a, 'error')[0]).toMatchObject({ alertName: 'no_application_protocol', sent: false });
  });

  it('updates keys on request in both directions (RFC 8446 §4.6.3)', () => {
    const { client, server } = connect();
    const atServer = deliver(server, client.updateKeys(true, NOW));
    expect(of(atServer.events, 'key-update').map((e) => e.direction)).toEqual(['read', 'write']);
    const atClient = deliver(client, atServer);
    expect(of(atClient.events, 'key-update').map((e) => e.direction)).toEqual(['read']);
    expect(of(deliver(server, client.send(utf8('after'), NOW)).events, 'data')[0]!.data).toEqual(
      utf8('after'),
    );
    expect(of(deliver(client, server.send(utf8('back'), NOW)).events, 'data')[0]!.data).toEqual(utf8('back'));
  });

  it('rekeys on its own before a key wears out (RFC 8446 §5.5)', () => {
    const { client, server } = connect({ maxRecordsPerKey: 3 });
    const got: TlsEvent[] = [];
    for (let i = 0; i < 8; i++) got.push(...deliver(server, client.send(utf8(`m${i}`), NOW)).events);
    expect(of(got, 'data').map((e) => Buffer.from(e.data).toString())).toEqual([
      'm0',
      'm1',
      'm2',
      'm3',
      'm4',
      'm5',
      'm6',
      'm7',
    ]);
    // Three data records per key: m0-m2, KeyUpdate, m3-m5, KeyUpdate, m6-m7.
    expect(of(got, 'key-update').length).toBe(2);
  });

  it('fragments large writes and honours record_size_limit (RFC 8449)', () => {
    const { client, server } = connect({ recordSizeLimit: 1000 });
    const big = crypto.randomBytes(100_000);
    const out = server.send(big, NOW);
    // Each record holds at most 999 bytes of data + 1 type byte + 16 tag bytes + 5 header bytes.
    for (const r of out.data) expect(r.length).toBeLessThanOrEqual(1000 + 16 + 5);
    const got = of(deliver(client, out).events, 'data').map((e) => e.data);
    expect(Buffer.concat(got).equals(Buffer.from(big))).toBe(true);
    const out2 = client.send(big, NOW);
    expect(Math.max(...out2.data.map((r) => r.length))).toBe((1 << 14) + 1 + 16 + 5);
  });

  it('survives byte-at-a-time delivery', () => {
    const { client, server } = connect({}, {}, { chunk: 1 });
    expect(client.state).toBe('CONNECTED');
    expect(server.state).toBe('CONNECTED');
  });

  it('answers a tampered record with bad_record_mac', () => {
    const { client, server } = connect();
    const out = client.send(utf8('hello'), NOW);
    out.data[0]![10] = out.data[0]![10]! ^ 1;
    const r = deliver(server, out);
    expect(of(r.events, 'error')[0]).toMatchObject({ alertName: 'bad_record_mac', sent: true });
    expect(of(deliver(client, r).events, 'error')[0]).toMatchObject({
      alertName: 'bad_record_mac',
      sent: false,
    });
    expect(server.counters.get('alert.sent.bad_record_mac')).toBe(1);
  });

  it('refuses a certificate for another name and an untrusted one', () => {
    const wrongName = connect({ serverName: 'other.test' });
    expect(of(wrongName.ev.a, 'error')[0]).toMatchObject({
      alert: AlertDescription.bad_certificate,
      sent: true,
    });
    expect(of(wrongName.ev.b, 'error')[0]).toMatchObject({
      alert: AlertDescription.bad_certificate,
      sent: false,
    });
    const untrusted = connect({ verifier: pinnedVerifier([rsa]) });
    expect(of(untrusted.ev.a, 'error')[0]).toMatchObject({ alertName: 'unknown_ca' });
  });

  it('authenticates the client when the server asks (RFC 8446 §4.3.2, §4.4.2)', () => {
    const clientAuth = { verifier: pinnedVerifier([rsa]), required: true };
    const ok = connect({ certificate: signerFor(rsa) }, { clientAuth });
    expect(of(ok.ev.b, 'handshake-complete')[0]!.peerCertificates[0]).toEqual(rsa.certDer);
    expect(ok.client.state).toBe('CONNECTED');
    const missing = connect({}, { clientAuth });
    expect(of(missing.ev.b, 'error')[0]).toMatchObject({ alertName: 'certificate_required', sent: true });
    const optional = connect({}, { clientAuth: { ...clientAuth, required: false } });
    expect(optional.server.state).toBe('CONNECTED');
    expect(of(optional.ev.b, 'handshake-complete')[0]!.peerCertificates.length).toBe(0);
    const untrusted = connect({ certificate: signerFor(ec) }, { clientAuth });
    expect(of(untrusted.ev.b, 'error')[0]).toMatchObject({ alertName: 'unknown_ca', sent: true });
  });

  it('fails cleanly without a common suite or group', () => {
    const suites = connect({ cipherSuites: [0x1303] }, { cipherSuites: [0x1301] });
    expect(of(suites.ev.b, 'error')[0]).toMatchObject({ alertName: 'handshake_failure', sent: true });
    const groups = connect({ groups: [NamedGroup.x25519] }, { groups: [NamedGroup.secp256r1] });
    expect(of(groups.ev.b, 'error')[0]).toMatchObject({ alertName: 'handshake_failure' });
  });

  it('skips 0-RTT records it does not accept (RFC 8446 §4.2.10)', () => {
    const withEarlyData = (groups?: number[]) => {
      const client = new TlsClient({ crypto, serverName: 'stepwire.test', verifier: pinnedVerifier([ec]) });
      const hello = decodeHandshake(client.start(NOW).data[0]!.subarray(5)) as ClientHello;
      hello.extensions.push({ type: 'early_data' });
      const ch = encodeTLSPlaintext({
        type: 22,
        legacyRecordVersion: 0x0301,
        fragment: encodeHandshake(hello),
      });
      const junk = new Uint8Array([23, 3, 3, 0, 40, ...crypto.randomBytes(40)]);
      const server = new TlsServer({ crypto, signer: signerFor(ec), groups });
      return { server, out: [server.receive(ch, NOW), server.receive(junk, NOW), server.receive(junk, NOW)] };
    };
    const { server, out } = withEarlyData();
    expect(out.flatMap((o) => of(o.events, 'error'))).toEqual([]);
    expect(server.state).toBe('WAIT_FINISHED');
    expect(server.counters.get('early-data.skipped')).toBe(2);
    // After a HelloRetryRequest the 0-RTT records arrive while we still read plaintext.
    const retry = withEarlyData([NamedGroup.secp256r1]);
    expect(retry.server.state).toBe('START');
    expect(retry.server.counters.get('early-data.skipped')).toBe(2);
    // Without early_data in the ClientHello the same record is a bad_record_mac.
    const client = new TlsClient({ crypto, serverName: 'stepwire.test', verifier: pinnedVerifier([ec]) });
    const server2 = new TlsServer({ crypto, signer: signerFor(ec) });
    server2.receive(client.start(NOW).data[0]!, NOW);
    const bad = server2.receive(new Uint8Array([23, 3, 3, 0, 40, ...crypto.randomBytes(40)]), NOW);
    expect(of(bad.events, 'error')[0]).toMatchObject({ alertName: 'bad_record_mac' });
  });

  it('sends and accepts 0-RTT data once, with anti-replay (RFC 8446 §2.3, §4.2.10, §8)', () => {
    const ticketKey = crypto.randomBytes(32);
    const antiReplay = new AntiReplayCache();
    const sopts = { ticketKey, maxEarlyData: 1024, antiReplay };
    const ticket = of(connect({}, sopts).ev.a, 'session-ticket')[0]!.ticket;
    expect(ticket.maxEarlyDataSize).toBe(1024);
    const clientLog: string[] = [];
    const serverLog: string[] = [];
    const second = connect(
      { session: ticket, earlyData: utf8('GET / idempotent'), keyLog: (l) => clientLog.push(l) },
      { ...sopts, keyLog: (l) => serverLog.push(l) },
    );
    expect(of(second.ev.a, 'early-data-status')).toEqual([{ type: 'early-data-status', accepted: true }]);
    const serverEvents = second.ev.b.map((e) => e.type);
    expect(serverEvents.indexOf('early-data')).toBeLessThan(serverEvents.indexOf('handshake-complete'));
    expect(of(second.ev.b, 'early-data')[0]!.data).toEqual(utf8('GET / idempotent'));
    expect(second.server.state).toBe('CONNECTED');
    expect(clientLog.some((l) => l.startsWith('CLIENT_EARLY_TRAFFIC_SECRET'))).toBe(true);
    expect(clientLog.sort()).toEqual(serverLog.sort());
    expect(
      of(deliver(second.server, second.client.send(utf8('after'), NOW)).events, 'data')[0]!.data,
    ).toEqual(utf8('after'));

    // The same ClientHello and 0-RTT record replayed to another server instance: the binder was seen.
    const replayClient = new TlsClient({
      crypto,
      serverName: 'stepwire.test',
      verifier: pinnedVerifier([ec]),
      session: ticket,
      earlyData: utf8('x'),
    });
    const flight = replayClient.start(NOW).data;
    const first = new TlsServer({ crypto, signer: signerFor(ec), ...sopts });
    const replayed = new TlsServer({ crypto, signer: signerFor(ec), ...sopts });
    const got1 = flight.flatMap((d) => first.receive(d, NOW).events);
    const got2 = flight.flatMap((d) => replayed.receive(d, NOW).events);
    expect(of(got1, 'early-data').length).toBe(1);
    expect(of(got2, 'early-data').length).toBe(0);
    expect(replayed.counters.get('early-data.rejected')).toBe(1);
    expect(replayed.counters.get('early-data.skipped')).toBe(1);
  });

  it('falls back to 1-RTT when 0-RTT is refused or cancelled by a HelloRetryRequest', () => {
    const ticketKey = crypto.randomBytes(32);
    const antiReplay = new AntiReplayCache();
    const ticket = of(connect({}, { ticketKey, maxEarlyData: 100, antiReplay }).ev.a, 'session-ticket')[0]!
      .ticket;
    // A server without an anti-replay cache does not take 0-RTT.
    const refused = connect({ session: ticket, earlyData: utf8('zero') }, { ticketKey });
    expect(of(refused.ev.a, 'early-data-status')).toEqual([{ type: 'early-data-status', accepted: false }]);
    expect(of(refused.ev.a, 'handshake-complete')[0]!.resumed).toBe(true);
    expect(of(refused.ev.b, 'early-data').length).toBe(0);
    expect(refused.server.counters.get('early-data.skipped')).toBe(1);
    const retried = connect(
      { session: ticket, earlyData: utf8('zero') },
      { ticketKey, maxEarlyData: 100, antiReplay, groups: [NamedGroup.secp256r1] },
    );
    expect(of(retried.ev.a, 'early-data-status')).toEqual([{ type: 'early-data-status', accepted: false }]);
    expect(retried.client.state).toBe('CONNECTED');
    // More than the ticket allows is not even attempted.
    const tooBig = connect(
      { session: ticket, earlyData: new Uint8Array(101) },
      { ticketKey, maxEarlyData: 100, antiReplay },
    );
    expect(of(tooBig.ev.a, 'early-data-status').length).toBe(0);
  });

  it('authenticates with an external PSK instead of a certificate (RFC 8446 §2.2)', () => {
    const key = crypto.randomBytes(32);
    const identity = utf8('device-17');
    const lookup = (id: Uint8Array) => (Buffer.from(id).equals(Buffer.from(identity)) ? { key } : undefined);
    const ok = connect({ externalPsk: { identity, key } }, { externalPsk: lookup });
    expect(of(ok.ev.a, 'handshake-complete')[0]).toMatchObject({
      psk: 'external',
      resumed: false,
      peerCertificates: [],
    });
    expect(of(ok.ev.b, 'handshake-complete')[0]).toMatchObject({ psk: 'external' });
    expect(of(deliver(ok.server, ok.client.send(utf8('psk'), NOW)).events, 'data')[0]!.data).toEqual(
      utf8('psk'),
    );
    // The wrong key: the binder does not verify.
    const bad = connect({ externalPsk: { identity, key: crypto.randomBytes(32) } }, { externalPsk: lookup });
    expect(of(bad.ev.b, 'error')[0]).toMatchObject({ alertName: 'decrypt_error', sent: true });
    // An identity the server does not know: a certificate handshake instead.
    const unknown = connect({ externalPsk: { identity: utf8('stranger'), key } }, { externalPsk: lookup });
    expect(of(unknown.ev.a, 'handshake-complete')[0]).toMatchObject({ psk: undefined });
    expect(of(unknown.ev.a, 'handshake-complete')[0]!.peerCertificates.length).toBe(1);
    // A SHA-384 PSK needs a SHA-384 suite.
    const k48 = crypto.randomBytes(48);
    const sha384 = connect(
      { externalPsk: { identity, key: k48, hash: 'sha384' } },
      { externalPsk: () => ({ key: k48, hash: 'sha384' }), cipherSuites: [0x1302, 0x1301] },
    );
    expect(of(sha384.ev.a, 'handshake-complete')[0]).toMatchObject({
      psk: 'external',
      cipherSuite: 'TLS_AES_256_GCM_SHA384',
    });
  });

  it('offers a ticket only to the server name it was issued for (RFC 8446 §4.6.1)', () => {
    const ticketKey = crypto.randomBytes(32);
    const ticket = of(connect({}, { ticketKey }).ev.a, 'session-ticket')[0]!.ticket;
    const client = new TlsClient({
      crypto,
      serverName: 'other.test',
      verifier: pinnedVerifier([ec]),
      session: ticket,
    });
    const hello = decodeHandshake(client.start(NOW).data[0]!.subarray(5)) as ClientHello;
    expect(hello.extensions.some((e) => e.type === 'pre_shared_key')).toBe(false);
  });

  it('drops compatibility-mode change_cipher_spec records (RFC 8446 §D.4)', () => {
    const trace = new TraceBus();
    const drops: TraceEvent[] = [];
    trace.on((e) => {
      if (e.dir === 'drop') drops.push(e);
    });
    const { client, server } = connect({ compatibilityMode: true }, { trace });
    expect(drops).toEqual([
      expect.objectContaining({ layer: 'tls', reason: 'ccs.ignored', rfc: 'RFC 8446 §5' }),
    ]);
    expect(client.state).toBe('CONNECTED');
    expect(client.counters.get('ccs.ignored')).toBe(1);
    expect(server.counters.get('ccs.ignored')).toBe(1);
  });

  it('treats garbage from the peer as a decode or record error, never a crash', () => {
    const server = new TlsServer({ crypto, signer: signerFor(ec) });
    const out = server.receive(Uint8Array.from([22, 3, 1, 0, 4, 1, 0, 0, 0]), NOW);
    expect(of(out.events, 'error')[0]).toMatchObject({ alertName: 'decode_error', sent: true });
    expect(out.data.length).toBe(1);
    // RFC 8446 §5: an unknown record type is an unexpected_message.
    const s2 = new TlsServer({ crypto, signer: signerFor(ec) });
    expect(of(s2.receive(Uint8Array.from([99, 3, 3, 0, 1, 0]), NOW).events, 'error')[0]).toMatchObject({
      alertName: 'unexpected_message',
    });
    // A change_cipher_spec before any ClientHello is not the compatibility one (RFC 8446 §5).
    const s4 = new TlsServer({ crypto, signer: signerFor(ec) });
    expect(of(s4.receive(Uint8Array.from([20, 3, 3, 0, 1, 1]), NOW).events, 'error')[0]).toMatchObject({
      alertName: 'unexpected_message',
    });
    const s3 = new TlsServer({ crypto, signer: signerFor(ec) });
    expect(of(s3.receive(Uint8Array.from([23, 3, 3, 0, 1, 0]), NOW).events, 'error')[0]).toMatchObject({
      alertName: 'unexpected_message',
    });
  });
});
