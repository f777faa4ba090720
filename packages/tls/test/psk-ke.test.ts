/**
 * psk_ke (RFC 8446 §4.2.9): a PSK handshake without (EC)DHE, only where the server was told
 * to allow it (no forward secrecy) and the client offers it. The ServerHello then carries no
 * key_share and the handshake secret takes zeros for the (EC)DHE input (§7.1).
 */
import { TraceBus } from '@stepwire/wire';
import { beforeAll, describe, expect, it } from 'vitest';
import { TlsClient, type TlsClientOptions } from '../src/client.ts';
import { PskKeyExchangeMode } from '../src/codec/common.ts';
import type { TlsEvent } from '../src/connection.ts';
import { TlsServer, type TlsServerOptions } from '../src/server.ts';
import { makeIdentity, pinnedVerifier, signerFor, type TestIdentity } from './helpers/node-auth.ts';
import { pump } from './helpers/pump.ts';
import { PROVIDERS } from './providers.ts';

let ec: TestIdentity;
beforeAll(() => {
  ec = makeIdentity('stepwire.test', 'ec');
});
const NOW = 1_000_000;
const PSK = { identity: new TextEncoder().encode('psk-ke'), key: new Uint8Array(32).fill(9) };
const done = (events: TlsEvent[]) =>
  events.find((e): e is Extract<TlsEvent, { type: 'handshake-complete' }> => e.type === 'handshake-complete');

describe.each(PROVIDERS)('psk_ke ($name)', (crypto) => {
  function run(copts: Partial<TlsClientOptions>, sopts: Partial<TlsServerOptions>) {
    const trace = new TraceBus();
    const serverHello: unknown[] = [];
    trace.on((e) => {
      if (e.host === 'server' && e.dir === 'out' && e.fields?.msgType === 'server_hello')
        serverHello.push(e.fields);
    });
    const client = new TlsClient({
      crypto,
      serverName: 'stepwire.test',
      verifier: pinnedVerifier([ec]),
      externalPsk: PSK,
      ...copts,
    });
    const server = new TlsServer({
      crypto,
      signer: signerFor(ec),
      externalPsk: (id) => (Buffer.from(id).equals(Buffer.from(PSK.identity)) ? { key: PSK.key } : undefined),
      trace,
      ...sopts,
    });
    const ev = pump(client, server, client.start(NOW), { now: NOW });
    return { ev, serverHello };
  }

  it('a client offering only psk_ke and a server allowing it: no key_share, no group, the PSK authenticates', () => {
    const r = run({ pskKeyExchangeModes: [PskKeyExchangeMode.psk_ke] }, { allowPskKe: true });
    expect(done(r.ev.a)).toMatchObject({ psk: 'external', peerCertificates: [] });
    expect(done(r.ev.a)?.group).toBeUndefined();
    expect(done(r.ev.b)?.group).toBeUndefined();
    expect(r.serverHello).toEqual([expect.objectContaining({ group: undefined, psk: true })]);
  });

  it('both modes offered: the server prefers psk_dhe_ke (forward secrecy) when it can answer a share', () => {
    const r = run(
      { pskKeyExchangeModes: [PskKeyExchangeMode.psk_ke, PskKeyExchangeMode.psk_dhe_ke] },
      { allowPskKe: true },
    );
    expect(done(r.ev.a)).toMatchObject({ psk: 'external' });
    expect(done(r.ev.a)?.group).toBe('X25519MLKEM768');
  });

  it('a server not configured for psk_ke ignores a psk_ke-only PSK and authenticates with its certificate', () => {
    const r = run({ pskKeyExchangeModes: [PskKeyExchangeMode.psk_ke] }, {});
    expect(done(r.ev.a)?.psk).toBeUndefined();
    expect(done(r.ev.a)?.peerCertificates.length).toBe(1);
    expect(done(r.ev.a)?.group).toBe('X25519MLKEM768');
  });
});
