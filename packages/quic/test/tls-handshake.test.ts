/**
 * The TLS 1.3 handshake in QUIC mode (RFC 9001 §4), with the tls package's own machines:
 * CRYPTO bytes per encryption level, secrets per level and direction, transport parameters
 * in both directions (§8.2), ALPN required (§8.1), resumption and 0-RTT (§4.6), and the
 * errors QUIC mode adds. The packet level (QuicConnection) is tested on its own; this file
 * ferries CRYPTO bytes directly between the two sides.
 */
import {
  AlertDescription,
  AntiReplayCache,
  certificateSigner,
  certificateVerifier,
  encodeHandshake,
  pki,
  type SessionTicket,
  TlsClient,
} from '@stepwire/tls';
import { bytesEqual } from '@stepwire/wire';
import { beforeAll, describe, expect, it } from 'vitest';
import { derivePacketKeys, encodeTransportParameters, nodeQuicCrypto } from '../src/index.ts';
import {
  createQuicTlsClient,
  createQuicTlsServer,
  type QuicTlsClientOptions,
  type QuicTlsServerOptions,
} from '../src/tls/handshake.ts';
import type { QuicTls, QuicTlsEvent } from '../src/tls/types.ts';

const NOW = Date.UTC(2026, 11, 6);
let creds: ReturnType<typeof pki.createStepwireCredentials>;
beforeAll(() => {
  creds = pki.createStepwireCredentials(new Date(NOW));
});

const clientParams = encodeTransportParameters({
  initial_max_data: 1 << 20,
  initial_source_connection_id: Uint8Array.of(1, 2, 3, 4),
});
const serverParams = encodeTransportParameters({
  initial_max_data: 2 << 20,
  initial_source_connection_id: Uint8Array.of(9, 9),
});

function client(o: Partial<QuicTlsClientOptions> = {}): QuicTls {
  return createQuicTlsClient({
    serverName: 'stepwire.test',
    verifier: certificateVerifier({ ca: creds.ca.certificatePem }),
    alpnProtocols: ['h3'],
    transportParameters: clientParams,
    ...o,
  });
}
function server(o: Partial<QuicTlsServerOptions> = {}): QuicTls {
  return createQuicTlsServer({
    signer: certificateSigner(creds.leaf),
    alpnProtocols: ['h3'],
    transportParameters: serverParams,
    ...o,
  });
}

interface Side {
  tls: QuicTls;
  events: QuicTlsEvent[];
}

/** Ferry CRYPTO bytes level by level until both sides are quiet. */
function run(c: QuicTls, s: QuicTls, now = NOW) {
  const a: Side = { tls: c, events: [] };
  const b: Side = { tls: s, events: [] };
  let queue: { to: Side; evs: QuicTlsEvent[] }[] = [{ to: b, evs: collect(a, c.start(now)) }];
  for (let rounds = 0; queue.length > 0 && rounds < 20; rounds++) {
    const next: typeof queue = [];
    for (const { to, evs } of queue) {
      const from = to === a ? b : a;
      void from;
      for (const e of evs) {
        if (e.type !== 'crypto') continue;
        const out = collect(to, to.tls.receive(e.level, e.data, now));
        next.push({ to: to === a ? b : a, evs: out });
      }
    }
    queue = next;
  }
  return { client: a.events, server: b.events };
}
function collect(side: Side, evs: QuicTlsEvent[]): QuicTlsEvent[] {
  side.events.push(...evs);
  return evs;
}
const secrets = (evs: QuicTlsEvent[]) =>
  evs.filter((e): e is Extract<QuicTlsEvent, { type: 'secret' }> => e.type === 'secret');
const complete = (evs: QuicTlsEvent[]) =>
  evs.find(
    (e): e is Extract<QuicTlsEvent, { type: 'handshake-complete' }> => e.type === 'handshake-complete',
  );
const errors = (evs: QuicTlsEvent[]) =>
  evs.filter((e): e is Extract<QuicTlsEvent, { type: 'error' }> => e.type === 'error');

describe('TLS in QUIC mode (RFC 9001 §4)', () => {
  it('a full handshake: CRYPTO at initial then handshake level, secrets pair up, transport parameters both ways', () => {
    const r = run(client(), server());
    expect(errors(r.client)).toEqual([]);
    expect(errors(r.server)).toEqual([]);
    const c = complete(r.client);
    const s = complete(r.server);
    expect(c).toMatchObject({ alpn: 'h3', resumed: false });
    expect(s).toMatchObject({ alpn: 'h3', resumed: false });
    expect(bytesEqual(c!.peerTransportParameters, serverParams)).toBe(true);
    expect(bytesEqual(s!.peerTransportParameters, clientParams)).toBe(true);
    expect(c!.peerCertificates.length).toBeGreaterThan(0);
    // Levels the bytes travelled at: ClientHello at initial; ServerHello at initial; the rest
    // of the server's flight at handshake; the client's Finished at handshake (§4.1.4).
    const levels = (evs: QuicTlsEvent[]) =>
      evs.filter((e) => e.type === 'crypto').map((e) => (e.type === 'crypto' ? e.level : ''));
    expect(levels(r.client)).toEqual(['initial', 'handshake']);
    expect(levels(r.server).slice(0, 2)).toEqual(['initial', 'handshake']);
    // Each side's write secret at a level is the other's read secret at that level.
    for (const level of ['handshake', 'application'] as const) {
      const cw = secrets(r.client).find((e) => e.level === level && e.direction === 'write')!;
      const sr = secrets(r.server).find((e) => e.level === level && e.direction === 'read')!;
      const sw = secrets(r.server).find((e) => e.level === level && e.direction === 'write')!;
      const cr = secrets(r.client).find((e) => e.level === level && e.direction === 'read')!;
      expect(bytesEqual(cw.secret, sr.secret)).toBe(true);
      expect(bytesEqual(sw.secret, cr.secret)).toBe(true);
      expect(bytesEqual(cw.secret, sw.secret)).toBe(false);
      // And QUIC turns them into the same packet keys (RFC 9001 §5.1).
      const k1 = derivePacketKeys(nodeQuicCrypto, 'TLS_AES_128_GCM_SHA256', cw.secret);
      const k2 = derivePacketKeys(nodeQuicCrypto, 'TLS_AES_128_GCM_SHA256', sr.secret);
      expect(bytesEqual(k1.key, k2.key)).toBe(true);
    }
    // The server's NewSessionTicket goes at the application level (RFC 9001 §4.1.3), after the client's Finished.
    expect(levels(r.server).at(-1)).toBe('application');
    expect(r.client.some((e) => e.type === 'session-ticket')).toBe(true);
  });

  it('resumption with 0-RTT: the ticket says 0xffffffff, both sides install the early secret, no EndOfEarlyData', () => {
    const antiReplay = new AntiReplayCache();
    const ticketKey = new Uint8Array(32).fill(7);
    const first = run(client(), server({ antiReplay, maxEarlyData: 1 << 16, ticketKey }));
    const ticket = first.client.find((e) => e.type === 'session-ticket') as
      | { type: 'session-ticket'; ticket: SessionTicket }
      | undefined;
    expect(ticket?.ticket.maxEarlyDataSize).toBe(0xffffffff);
    const c = client({ session: ticket!.ticket, earlyData: true });
    const s = server({ antiReplay, maxEarlyData: 1 << 16, ticketKey });
    const startEvents = c.start(NOW + 1000);
    // The 0-RTT write secret comes with the ClientHello, before any answer (RFC 9001 §4.6.1).
    const early = secrets(startEvents).find((e) => e.level === 'early');
    expect(early?.direction).toBe('write');
    const hello = startEvents.find((e) => e.type === 'crypto')!;
    const sEvents = s.receive('initial', hello.type === 'crypto' ? hello.data : new Uint8Array(), NOW + 1000);
    const earlyRead = secrets(sEvents).find((e) => e.level === 'early');
    expect(earlyRead?.direction).toBe('read');
    expect(bytesEqual(earlyRead!.secret, early!.secret)).toBe(true);
    // Finish the handshake: the server's flight to the client, the client's Finished back.
    const cEvents: QuicTlsEvent[] = [];
    for (const e of sEvents) if (e.type === 'crypto') cEvents.push(...c.receive(e.level, e.data, NOW + 1000));
    const sMore: QuicTlsEvent[] = [];
    for (const e of cEvents) if (e.type === 'crypto') sMore.push(...s.receive(e.level, e.data, NOW + 1000));
    // No EndOfEarlyData in QUIC: the client's handshake-level bytes are exactly its Finished (type 20).
    const fin = cEvents.filter((e) => e.type === 'crypto');
    expect(fin).toHaveLength(1);
    expect(fin[0]!.type === 'crypto' && fin[0]!.data[0]).toBe(20);
    expect(complete(cEvents)).toMatchObject({ resumed: true, earlyData: 'accepted' });
    expect(complete(sMore)).toMatchObject({ resumed: true, earlyData: 'accepted' });
    // A replay of the same ClientHello gets 1-RTT only (RFC 8446 §8).
    const s2 = server({ antiReplay, maxEarlyData: 1 << 16, ticketKey });
    const replay = s2.receive('initial', hello.type === 'crypto' ? hello.data : new Uint8Array(), NOW + 1000);
    expect(secrets(replay).some((e) => e.level === 'early')).toBe(false);
  });

  it('a ClientHello without quic_transport_parameters: missing_extension (RFC 9001 §8.2)', () => {
    const plain = new TlsClient({
      serverName: 'stepwire.test',
      verifier: certificateVerifier({ ca: creds.ca.certificatePem }),
      alpnProtocols: ['h3'],
    });
    const out = plain.start(NOW);
    // The plain client's record: strip the 5-byte record header to get the handshake bytes.
    const hello = out.data[0]!.subarray(5);
    const evs = server().receive('initial', hello, NOW);
    expect(errors(evs).map((e) => e.alert)).toEqual([AlertDescription.missing_extension]);
  });

  it('no ALPN in common: no_application_protocol (RFC 9001 §8.1)', () => {
    const r = run(client({ alpnProtocols: ['hq-interop'] }), server());
    expect(errors(r.server).map((e) => e.alert)).toEqual([AlertDescription.no_application_protocol]);
    expect(complete(r.client)).toBeUndefined();
  });

  it('a client that offers no ALPN is refused too: QUIC has no default protocol', () => {
    const r = run(client({ alpnProtocols: [] }), server());
    expect(errors(r.server).map((e) => e.alert)).toEqual([AlertDescription.no_application_protocol]);
  });

  it('CRYPTO data at the wrong level: unexpected_message (RFC 9001 §4.1.3)', () => {
    const c = client();
    const hello = c.start(NOW).find((e) => e.type === 'crypto')!;
    const evs = server().receive('handshake', hello.type === 'crypto' ? hello.data : new Uint8Array(), NOW);
    expect(errors(evs).map((e) => e.alert)).toEqual([AlertDescription.unexpected_message]);
  });

  it('a TLS KeyUpdate after the handshake: unexpected_message (RFC 9001 §6)', () => {
    const c = client();
    const s = server();
    run(c, s);
    const ku = encodeHandshake({ msgType: 'key_update', requestUpdate: 0 });
    const evs = c.receive('application', ku, NOW);
    expect(errors(evs).map((e) => e.alert)).toEqual([AlertDescription.unexpected_message]);
  });

  it('no secret reaches a trace: the QUIC secrets leave only as events', () => {
    const r = run(client({ keyLog: () => {} }), server());
    const names = secrets(r.client).map((e) => `${e.level}/${e.direction}`);
    expect(names).toEqual(['handshake/read', 'handshake/write', 'application/read', 'application/write']);
    expect(secrets(r.server).map((e) => `${e.level}/${e.direction}`)).toEqual([
      'handshake/write',
      'handshake/read',
      'application/write',
      'application/read',
    ]);
  });
});
