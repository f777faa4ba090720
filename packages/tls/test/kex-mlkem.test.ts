/**
 * The hybrid post-quantum group X25519MLKEM768 (draft-ietf-tls-ecdhe-mlkem, 0x11EC): offered
 * first by default with an X25519 share beside it (as browsers send), negotiated between our
 * client and server in one round trip with either provider, X25519 in one round trip with a
 * server that lacks it, a HelloRetryRequest when only the hybrid share was sent, bad shares
 * refused with illegal_parameter, and the construction (ML-KEM first, then X25519, in keys,
 * ciphertexts and the secret) checked against @noble/post-quantum and RFC 7748 §6.1 from
 * fixed randomness. (No published known-answer vector for the TLS combination was found.)
 */
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { fromHex, TraceBus, toHex } from '@stepwire/wire';
import { beforeAll, describe, expect, it } from 'vitest';
import { TlsClient, type TlsClientOptions } from '../src/client.ts';
import { NamedGroup } from '../src/codec/common.ts';
import { type ClientHello, decodeHandshake, encodeHandshake } from '../src/codec/handshake.ts';
import type { TlsEvent } from '../src/connection.ts';
import type { CryptoProvider } from '../src/crypto/provider.ts';
import { clientKeyShare, clientSharedSecret, serverKeyShare, X25519MLKEM768 } from '../src/kex.ts';
import { TlsServer, type TlsServerOptions } from '../src/server.ts';
import { makeIdentity, pinnedVerifier, signerFor, type TestIdentity } from './helpers/node-auth.ts';
import { pump } from './helpers/pump.ts';
import { PROVIDERS } from './providers.ts';

let ec: TestIdentity;
beforeAll(() => {
  ec = makeIdentity('stepwire.test', 'ec');
});
const NOW = 1_000_000;
const done = (events: TlsEvent[]) =>
  events.find((e): e is Extract<TlsEvent, { type: 'handshake-complete' }> => e.type === 'handshake-complete');
const errorOf = (events: TlsEvent[]) =>
  events.find((e): e is Extract<TlsEvent, { type: 'error' }> => e.type === 'error');

describe.each(PROVIDERS)('X25519MLKEM768 between our client and server ($name)', (crypto) => {
  function run(copts: Partial<TlsClientOptions> = {}, sopts: Partial<TlsServerOptions> = {}) {
    const trace = new TraceBus();
    const messages: string[] = [];
    trace.on((e) => {
      if (e.layer === 'tls' && e.dir === 'out' && typeof e.fields?.msgType === 'string')
        messages.push(`${e.host} ${e.fields.msgType}`);
    });
    const client = new TlsClient({
      crypto,
      serverName: 'stepwire.test',
      verifier: pinnedVerifier([ec]),
      trace,
      ...copts,
    });
    const server = new TlsServer({ crypto, signer: signerFor(ec), trace, ...sopts });
    const ev = pump(client, server, client.start(NOW), { now: NOW });
    return { ev, messages, hrr: messages.includes('server hello_retry_request') };
  }

  it('by default: the ClientHello carries hybrid and X25519 shares; the hybrid is negotiated, no HRR', () => {
    const r = run();
    expect(done(r.ev.a)?.group).toBe('X25519MLKEM768');
    expect(done(r.ev.b)?.group).toBe('X25519MLKEM768');
    expect(r.hrr).toBe(false);
  });

  it('a server without the hybrid takes the X25519 share: one round trip', () => {
    const r = run({}, { groups: [NamedGroup.x25519, NamedGroup.secp256r1] });
    expect(done(r.ev.a)?.group).toBe('x25519');
    expect(r.hrr).toBe(false);
  });

  it('a client that sent only the hybrid share gets a HelloRetryRequest for X25519 from such a server', () => {
    const r = run({ keyShareGroups: [X25519MLKEM768] }, { groups: [NamedGroup.x25519] });
    expect(r.hrr).toBe(true);
    expect(done(r.ev.a)?.group).toBe('x25519');
  });

  it('a client without the hybrid gets X25519 from a server that prefers the hybrid', () => {
    const r = run({ groups: [NamedGroup.x25519] });
    expect(done(r.ev.b)?.group).toBe('x25519');
    expect(r.hrr).toBe(false);
  });

  it.each([
    ['one byte short', (ks: Uint8Array) => ks.subarray(0, ks.length - 1)],
    ['one byte long', (ks: Uint8Array) => Uint8Array.of(...ks, 0)],
    // FIPS 203 §7.2 input check: coefficients of the encapsulation key must be below q = 3329.
    [
      'an encapsulation key with a coefficient >= q',
      (ks: Uint8Array) => Uint8Array.of(0xff, 0xff, 0xff, ...ks.subarray(3)),
    ],
  ])('a hybrid client share %s is an illegal_parameter', (_name, mangle) => {
    const client = new TlsClient({ crypto, serverName: 'stepwire.test', verifier: pinnedVerifier([ec]) });
    const server = new TlsServer({ crypto, signer: signerFor(ec) });
    const hello = client.start(NOW).data[0]!;
    const ch = decodeHandshake(hello.subarray(5)) as ClientHello;
    const exts = ch.extensions.map((e) =>
      e.type === 'key_share' && 'clientShares' in e
        ? {
            type: 'key_share' as const,
            clientShares: e.clientShares.map((s) =>
              s.group === X25519MLKEM768 ? { group: s.group, keyExchange: mangle(s.keyExchange) } : s,
            ),
          }
        : e,
    );
    const body = encodeHandshake({ ...ch, extensions: exts });
    const record = Uint8Array.of(22, 3, 1, body.length >> 8, body.length & 0xff, ...body);
    const out = server.receive(record, NOW);
    expect(errorOf(out.events)).toMatchObject({ alertName: 'illegal_parameter', sent: true });
  });
});

/** A provider whose randomBytes come from a fixed sequence, so the construction can be recomputed. */
function fixedRandom(base: CryptoProvider, stream: Uint8Array[]): CryptoProvider {
  const queue = [...stream];
  return new Proxy(base, {
    get(target, prop, receiver) {
      if (prop === 'randomBytes')
        return (n: number) => {
          const next = queue.shift();
          if (!next || next.length !== n) throw new Error(`fixedRandom: no ${n}-byte value queued`);
          return next;
        };
      return Reflect.get(target, prop, receiver);
    },
  });
}

describe.each(PROVIDERS)('the X25519MLKEM768 construction ($name)', (crypto) => {
  // RFC 7748 §6.1: Alice's and Bob's X25519 private keys and their shared secret.
  const alice = fromHex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
  const bob = fromHex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
  const aliceRfc = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';
  const bobRfc = 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f';
  const sharedRfc = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
  const seed = new Uint8Array(64).map((_, i) => i);
  const msg = new Uint8Array(32).map((_, i) => 0xa0 + i);

  it('client share = ek || X25519 pub, server share = ct || X25519 pub, secret = ML-KEM ss || X25519 ss', () => {
    // The client draws the ML-KEM seed, then (inside generateKeyPair) nothing: the X25519 key is fixed below.
    const c = fixedRandom(crypto, [seed.slice()]);
    const clientRaw = clientKeyShare(
      new Proxy(c, {
        get: (t, p, r) =>
          p === 'generateKeyPair' ? () => crypto.generateKeyPair('x25519', alice) : Reflect.get(t, p, r),
      }),
      'X25519MLKEM768',
    );
    const kem = ml_kem768.keygen(seed);
    expect(toHex(clientRaw.publicKey)).toBe(toHex(kem.publicKey) + aliceRfc);
    expect(clientRaw.publicKey.length).toBe(1184 + 32);

    const s = fixedRandom(crypto, [msg.slice()]);
    const server = serverKeyShare(
      new Proxy(s, {
        get: (t, p, r) =>
          p === 'generateKeyPair' ? () => crypto.generateKeyPair('x25519', bob) : Reflect.get(t, p, r),
      }),
      'X25519MLKEM768',
      clientRaw.publicKey,
    );
    const enc = ml_kem768.encapsulate(kem.publicKey, msg);
    expect(toHex(server.publicKey)).toBe(toHex(enc.cipherText) + bobRfc);
    expect(server.publicKey.length).toBe(1088 + 32);
    // ML-KEM's shared secret first, then RFC 7748 §6.1's X25519 shared secret for Alice and Bob.
    expect(toHex(server.shared)).toBe(toHex(enc.sharedSecret) + sharedRfc);
    expect(toHex(clientSharedSecret(crypto, clientRaw, server.publicKey))).toBe(toHex(server.shared));
  });
});

describe.each(PROVIDERS)('secp384r1 ($name)', (crypto) => {
  it('our client and server agree on P-384 when it is the only group (RFC 8446 §4.2.7)', () => {
    const client = new TlsClient({
      crypto,
      serverName: 'stepwire.test',
      verifier: pinnedVerifier([ec]),
      groups: [NamedGroup.secp384r1],
    });
    const server = new TlsServer({ crypto, signer: signerFor(ec) });
    const ev = pump(client, server, client.start(NOW), { now: NOW });
    expect(done(ev.a)?.group).toBe('secp384r1');
    const share = client as unknown as { keyShares: Map<number, { publicKey: Uint8Array }> };
    // RFC 8446 §4.2.8.2: the uncompressed point, 1 + 2 * 48 bytes.
    expect(share.keyShares.get(NamedGroup.secp384r1)?.publicKey.length).toBe(97);
  });
});

describe('x448 and secp521r1: each provider with itself and with the other (OpenSSL against noble)', () => {
  it.each([
    [NamedGroup.x448, 'x448', 56],
    [NamedGroup.secp521r1, 'secp521r1', 133],
  ] as const)('group %d (%s)', (group, name, shareLength) => {
    const [noble, node] = PROVIDERS as readonly [CryptoProvider, CryptoProvider];
    const pairs: [CryptoProvider, CryptoProvider][] = [
      [noble, noble],
      [node, node],
      [noble, node],
      [node, noble],
    ];
    for (const [c, s] of pairs) {
      const client = new TlsClient({
        crypto: c,
        serverName: 'stepwire.test',
        verifier: pinnedVerifier([ec]),
        groups: [group],
      });
      const server = new TlsServer({ crypto: s, signer: signerFor(ec), groups: [group] });
      const ev = pump(client, server, client.start(NOW), { now: NOW });
      expect(done(ev.a)?.group, `${c.name} client, ${s.name} server`).toBe(name);
      const shares = (client as unknown as { keyShares: Map<number, { publicKey: Uint8Array }> }).keyShares;
      expect(shares.get(group)?.publicKey.length).toBe(shareLength);
    }
  });
});
