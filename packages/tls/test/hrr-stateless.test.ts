/**
 * Stateless HelloRetryRequest (RFC 8446 §4.2.2): the cookie carries Hash(ClientHello1), the
 * suite and the group, sealed with the server's key, so a fresh server instance holding the
 * same key finishes a handshake whose HelloRetryRequest another instance sent (as a QUIC or
 * load-balanced deployment needs). Its transcript, rebuilt as message_hash || HRR (§4.4.1),
 * must match the client's, or Finished would not verify. Cookies we did not seal, or stale
 * ones, are an illegal_parameter.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { TlsClient } from '../src/client.ts';
import { NamedGroup } from '../src/codec/common.ts';
import type { TlsEvent } from '../src/connection.ts';
import { TlsServer, type TlsServerOptions } from '../src/server.ts';
import { makeIdentity, pinnedVerifier, signerFor, type TestIdentity } from './helpers/node-auth.ts';
import { deliver, pump } from './helpers/pump.ts';
import { PROVIDERS } from './providers.ts';

let ec: TestIdentity;
beforeAll(() => {
  ec = makeIdentity('stepwire.test', 'ec');
});
const NOW = 1_000_000;
const KEY = new Uint8Array(32).fill(3);
const done = (events: TlsEvent[]) =>
  events.find((e): e is Extract<TlsEvent, { type: 'handshake-complete' }> => e.type === 'handshake-complete');
const errorOf = (events: TlsEvent[]) =>
  events.find((e): e is Extract<TlsEvent, { type: 'error' }> => e.type === 'error');

describe.each(PROVIDERS)('stateless HelloRetryRequest ($name)', (crypto) => {
  const serverOptions = (extra: Partial<TlsServerOptions> = {}): TlsServerOptions => ({
    crypto,
    signer: signerFor(ec),
    // P-256 only: our client's first shares (hybrid, X25519) get a HelloRetryRequest.
    groups: [NamedGroup.secp256r1],
    statelessRetry: { key: KEY },
    ...extra,
  });

  /** ClientHello1 to server A, its HRR back to the client: the client's second flight. */
  function secondFlight(compatibilityMode: boolean) {
    const client = new TlsClient({
      crypto,
      serverName: 'stepwire.test',
      verifier: pinnedVerifier([ec]),
      compatibilityMode,
    });
    const a = new TlsServer(serverOptions());
    const hrr = deliver(a, client.start(NOW), NOW);
    const ch2 = deliver(client, hrr, NOW);
    return { client, ch2 };
  }

  it.each([false, true])(
    'a fresh server with the key finishes the handshake (compatibility mode %s)',
    (compat) => {
      const { client, ch2 } = secondFlight(compat);
      const b = new TlsServer(serverOptions());
      const ev = pump(client, b, ch2, { now: NOW });
      expect(errorOf(ev.a) ?? errorOf(ev.b)).toBeUndefined();
      expect(done(ev.a)?.group).toBe('secp256r1');
      expect(done(ev.b)).toBeDefined();
    },
  );

  it('a server with another key refuses the cookie: illegal_parameter', () => {
    const { client, ch2 } = secondFlight(false);
    const c = new TlsServer(serverOptions({ statelessRetry: { key: new Uint8Array(32).fill(4) } }));
    const ev = pump(client, c, ch2, { now: NOW });
    expect(errorOf(ev.b)).toMatchObject({ alertName: 'illegal_parameter', sent: true });
  });

  it('a cookie older than maxAgeMs is refused', () => {
    const { client, ch2 } = secondFlight(false);
    const late = new TlsServer(serverOptions({ statelessRetry: { key: KEY, maxAgeMs: 1000 } }));
    const ev = pump(client, late, ch2, { now: NOW + 5000 });
    expect(errorOf(ev.b)).toMatchObject({ alertName: 'illegal_parameter', sent: true });
  });
});
