/**
 * The handshake machines' states and tables (RFC 8446 Appendix A): the trace shows the
 * Appendix A names in the order the RFC draws them, every transition cites RFC 8446, a
 * message with no row in the current state is an unexpected_message (§6.2), and a handler
 * cannot enter a state its row does not list.
 */
import { test } from '@fast-check/vitest';
import { TraceBus, type TraceEvent } from '@stepwire/wire';
import { beforeAll, describe, expect, it } from 'vitest';
import { TlsClient, type TlsClientOptions } from '../src/client.ts';
import { AlertDescription, TlsAlertError } from '../src/codec/alert.ts';
import { ContentType } from '../src/codec/common.ts';
import { encodeHandshake } from '../src/codec/handshake.ts';
import { encodeTLSPlaintext } from '../src/codec/record.ts';
import type { SessionTicket, TlsEvent } from '../src/connection.ts';
import { nodeCrypto } from '../src/crypto/index.ts';
import { checkNext, findTransition } from '../src/handshake/machine.ts';
import { AntiReplayCache, TlsServer, type TlsServerOptions } from '../src/server.ts';
import { arbitraryHandshakeMessage } from '../src/testing.ts';
import { makeIdentity, pinnedVerifier, signerFor, type TestIdentity } from './helpers/node-auth.ts';
import { pump } from './helpers/pump.ts';

let ec: TestIdentity;
let rsa: TestIdentity;
beforeAll(() => {
  ec = makeIdentity('stepwire.test', 'ec');
  rsa = makeIdentity('client.test', 'rsa');
});

const NOW = 1_000_000;
const crypto = nodeCrypto;

/** Each side's state changes, as the ladder shows them. */
function run(copts: Partial<TlsClientOptions> = {}, sopts: Partial<TlsServerOptions> = {}) {
  const seen = { client: [] as TraceEvent[], server: [] as TraceEvent[] };
  const ct = new TraceBus();
  ct.on((e) => e.state && seen.client.push(e));
  const st = new TraceBus();
  st.on((e) => e.state && seen.server.push(e));
  const client = new TlsClient({
    crypto,
    serverName: 'stepwire.test',
    verifier: pinnedVerifier([ec]),
    trace: ct,
    ...copts,
  });
  const server = new TlsServer({ crypto, signer: signerFor(ec), trace: st, ...sopts });
  const ev = pump(client, server, client.start(NOW), { now: NOW });
  const path = (list: TraceEvent[]) => list.map((e) => `${e.state?.from}->${e.state?.to}`);
  return { client, server, ev, clientPath: path(seen.client), serverPath: path(seen.server), seen };
}

describe('Appendix A state names in the trace, each transition citing RFC 8446', () => {
  it('a full handshake (RFC 8446 §A.1, §A.2)', () => {
    const r = run();
    expect(r.clientPath).toEqual([
      'START->WAIT_SH',
      'WAIT_SH->WAIT_EE',
      'WAIT_EE->WAIT_CERT_CR',
      'WAIT_CERT_CR->WAIT_CV',
      'WAIT_CV->WAIT_FINISHED',
      'WAIT_FINISHED->CONNECTED',
    ]);
    expect(r.serverPath).toEqual([
      'START->NEGOTIATED',
      'NEGOTIATED->WAIT_FINISHED',
      'WAIT_FINISHED->CONNECTED',
    ]);
    for (const e of [...r.seen.client, ...r.seen.server]) expect(e.rfc).toMatch(/^RFC 8446 §/);
  });

  it('with a client certificate: WAIT_CERT_CR -> WAIT_CERT and WAIT_CERT -> WAIT_CV on both sides', () => {
    const r = run({ certificate: signerFor(rsa) }, { clientAuth: { verifier: pinnedVerifier([rsa]) } });
    expect(r.clientPath).toContain('WAIT_CERT_CR->WAIT_CERT');
    expect(r.clientPath).toContain('WAIT_CERT->WAIT_CV');
    expect(r.serverPath).toEqual([
      'START->NEGOTIATED',
      'NEGOTIATED->WAIT_CERT',
      'WAIT_CERT->WAIT_CV',
      'WAIT_CV->WAIT_FINISHED',
      'WAIT_FINISHED->CONNECTED',
    ]);
    // No certificate where one is optional: WAIT_CERT -> WAIT_FINISHED (RFC 8446 §4.4.2.4).
    const none = run({}, { clientAuth: { verifier: pinnedVerifier([rsa]) } });
    expect(none.serverPath).toContain('WAIT_CERT->WAIT_FINISHED');
  });

  it('resumption with 0-RTT: the client skips the certificate states, the server passes WAIT_EOED', () => {
    const antiReplay = new AntiReplayCache();
    const sopts = { antiReplay, maxEarlyData: 1024, ticketKey: new Uint8Array(32).fill(1) };
    const first = run({}, sopts);
    const ticket = first.ev.a.find(
      (e): e is Extract<TlsEvent, { type: 'session-ticket' }> => e.type === 'session-ticket',
    )?.ticket as SessionTicket;
    expect(ticket).toBeDefined();
    const r = run({ session: ticket, earlyData: new Uint8Array([1, 2, 3]) }, sopts);
    expect(r.clientPath).toEqual([
      'START->WAIT_SH',
      'WAIT_SH->WAIT_EE',
      'WAIT_EE->WAIT_FINISHED',
      'WAIT_FINISHED->CONNECTED',
    ]);
    expect(r.serverPath).toEqual([
      'START->NEGOTIATED',
      'NEGOTIATED->WAIT_EOED',
      'WAIT_EOED->WAIT_FINISHED',
      'WAIT_FINISHED->CONNECTED',
    ]);
    for (const e of [...r.seen.client, ...r.seen.server]) expect(e.rfc).toMatch(/^RFC 8446 §/);
  });

  it('a HelloRetryRequest keeps the client in WAIT_SH and the server in START (RFC 8446 §4.1.4)', () => {
    const r = run({ keyShareGroups: [0x001d] }, { groups: [0x0017], groupSelection: 'preference' });
    expect(r.client.state).toBe('CONNECTED');
    // The client sent an X25519 share only; P-256 came from the HelloRetryRequest.
    expect(r.ev.a.find((e) => e.type === 'handshake-complete')).toMatchObject({ group: 'secp256r1' });
    expect(r.clientPath.slice(0, 2)).toEqual(['START->WAIT_SH', 'WAIT_SH->WAIT_EE']);
    expect(r.serverPath[0]).toBe('START->NEGOTIATED');
    expect(r.client.counters.get('alert.sent.unexpected_message')).toBe(0);
  });
});

const plaintext = (body: Uint8Array) =>
  encodeTLSPlaintext({ type: ContentType.handshake, legacyRecordVersion: 0x0303, fragment: body });

describe('a message with no row in the state is an unexpected_message (RFC 8446 §6.2)', () => {
  test.prop([arbitraryHandshakeMessage.filter((m) => m.msgType !== 'client_hello')], { numRuns: 60 })(
    'server in START: anything but a ClientHello',
    (msg) => {
      const server = new TlsServer({ crypto, signer: signerFor(ec) });
      const body = encodeHandshake(msg);
      if (body.length > 0x4000) return;
      const out = server.receive(plaintext(body), NOW);
      const err = out.events.find((e) => e.type === 'error');
      expect(err).toMatchObject({ alert: AlertDescription.unexpected_message, sent: true });
    },
  );

  test.prop(
    [
      arbitraryHandshakeMessage.filter(
        (m) => m.msgType !== 'server_hello' && m.msgType !== 'hello_retry_request',
      ),
    ],
    { numRuns: 60 },
  )('client in WAIT_SH: anything but a ServerHello or HelloRetryRequest', (msg) => {
    const client = new TlsClient({
      crypto,
      serverName: 'stepwire.test',
      verifier: pinnedVerifier([ec]),
      groups: [0x001d],
    });
    client.start(NOW);
    expect(client.state).toBe('WAIT_SH');
    const body = encodeHandshake(msg);
    if (body.length > 0x4000) return;
    const out = client.receive(plaintext(body), NOW);
    const err = out.events.find((e) => e.type === 'error');
    expect(err).toMatchObject({ alert: AlertDescription.unexpected_message, sent: true });
  });
});

describe('the table itself', () => {
  it('finds rows by (state, message) and refuses the rest; entering a state off the row is our bug', () => {
    const table = {
      A: { finished: { rfc: 'RFC 8446 §4.4.4', next: ['B'], handle: () => {} } },
    } as const;
    const row = findTransition<unknown, { name: 'A' | 'B' }>(
      table,
      { name: 'A' },
      { msgType: 'finished', verifyData: new Uint8Array(32) },
    );
    expect(row.rfc).toBe('RFC 8446 §4.4.4');
    expect(() =>
      findTransition<unknown, { name: 'A' | 'B' }>(
        table,
        { name: 'B' },
        { msgType: 'finished', verifyData: new Uint8Array(32) },
      ),
    ).toThrow(TlsAlertError);
    expect(() => checkNext(row, 'A', 'B')).not.toThrow();
    expect(() => checkNext(row, 'A', 'A')).toThrow(/not in the table/);
  });
});
