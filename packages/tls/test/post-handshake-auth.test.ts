/**
 * Post-handshake client authentication (RFC 8446 §4.6.2) between our client and our
 * server, in memory, once per crypto provider: the offer (post_handshake_auth, §4.2.6), the
 * CertificateRequest with a fresh context, the client's Certificate / CertificateVerify /
 * Finished over the handshake transcript plus these messages (§4.4.1), the Finished key from
 * client_application_traffic_secret_N (§4.4), and the alerts for each way it can go wrong.
 * The independent oracle is OpenSSL: test/tls-pha-openssl.test.ts.
 */

import { fc, test } from '@fast-check/vitest';
import { ByteReader, ParseError, utf8 } from '@stepwire/wire';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CertificateSigner } from '../src/auth.ts';
import { TlsClient, type TlsClientOptions } from '../src/client.ts';
import { ExtensionType } from '../src/codec/common.ts';
import { encodeExtensions, readExtensions } from '../src/codec/extensions.ts';
import { decodeHandshake, encodeHandshake } from '../src/codec/handshake.ts';
import type { TlsEvent, TlsOutput } from '../src/connection.ts';
import { TlsServer, type TlsServerOptions } from '../src/server.ts';
import {
  arbitraryCertificate,
  arbitraryCertificateRequest,
  arbitraryCertificateVerify,
  arbitraryFinished,
} from '../src/testing.ts';
import { makeIdentity, pinnedVerifier, signerFor, type TestIdentity } from './helpers/node-auth.ts';
import { deliver, pump } from './helpers/pump.ts';
import { PROVIDERS } from './providers.ts';

let ec: TestIdentity;
let rsa: TestIdentity;
beforeAll(() => {
  ec = makeIdentity('stepwire.test', 'ec');
  rsa = makeIdentity('client.test', 'rsa');
});

const NOW = 1_000_000;
const of = <T extends TlsEvent['type']>(events: TlsEvent[], type: T) =>
  events.filter((e): e is Extract<TlsEvent, { type: T }> => e.type === type);

/** Run one output through the other side and back until quiet; each side's events. */
function exchange(from: TlsServer | TlsClient, to: TlsServer | TlsClient, out: TlsOutput) {
  return pump(from, to, out, { now: NOW });
}

describe.each(PROVIDERS)('post-handshake client authentication ($name)', (crypto) => {
  function connect(copts: Partial<TlsClientOptions> = {}, sopts: Partial<TlsServerOptions> = {}) {
    const client = new TlsClient({
      crypto,
      serverName: 'stepwire.test',
      verifier: pinnedVerifier([ec]),
      postHandshakeAuth: true,
      certificate: signerFor(rsa),
      ...copts,
    });
    const server = new TlsServer({
      crypto,
      signer: signerFor(ec),
      postHandshakeAuth: { verifier: pinnedVerifier([rsa]) },
      ...sopts,
    });
    const first = client.start(NOW);
    const hello = first.data[0];
    const ev = pump(client, server, first, { now: NOW });
    expect(client.state).toBe('CONNECTED');
    expect(server.state).toBe('CONNECTED');
    return { client, server, ev, hello };
  }

  it('offers post_handshake_auth (extension 49, empty) only when configured (RFC 8446 §4.2.6)', () => {
    const { hello, server } = connect();
    const ch = decodeHandshake(hello!.subarray(5));
    if (ch.msgType !== 'client_hello') throw new Error('not a ClientHello');
    expect(ch.extensions.some((e) => e.type === 'post_handshake_auth')).toBe(true);
    expect(server.postHandshakeAuthOffered).toBe(true);
    const plain = connect({ postHandshakeAuth: false });
    const ch2 = decodeHandshake(plain.hello!.subarray(5));
    if (ch2.msgType !== 'client_hello') throw new Error('not a ClientHello');
    expect(ch2.extensions.some((e) => e.type === 'post_handshake_auth')).toBe(false);
    expect(plain.server.postHandshakeAuthOffered).toBe(false);
    // RFC 8446 §4.6.2: a server MUST NOT send a post-handshake CertificateRequest to such a client.
    expect(() => plain.server.requestClientCertificate(NOW)).toThrow(/post_handshake_auth/);
  });

  it('asks after the handshake and gets the verified chain; data flows before and after', () => {
    const { client, server } = connect();
    const req = server.requestClientCertificate(NOW);
    expect(req.data.length).toBeGreaterThan(0);
    // One request at a time.
    expect(() => server.requestClientCertificate(NOW)).toThrow(/outstanding/);
    const ev = exchange(server, client, req);
    const got = of(ev.a, 'client-certificate');
    expect(got).toHaveLength(1);
    expect(got[0]!.peerCertificates[0]).toEqual(rsa.certDer);
    expect(got[0]!.context.length).toBe(32);
    expect(of(ev.a, 'error')).toEqual([]);
    expect(of(ev.b, 'error')).toEqual([]);
    // A second request has a new context (RFC 8446 §4.3.2: unique within the connection).
    const ev2 = exchange(server, client, server.requestClientCertificate(NOW));
    const again = of(ev2.a, 'client-certificate')[0]!;
    expect(again.context).not.toEqual(got[0]!.context);
    // The connection carries data both ways afterwards.
    const toServer = deliver(server, client.send(utf8('after'), NOW));
    expect(of(toServer.events, 'data')[0]!.data).toEqual(utf8('after'));
    const toClient = deliver(client, server.send(utf8('back'), NOW));
    expect(of(toClient.events, 'data')[0]!.data).toEqual(utf8('back'));
  });

  it('derives the Finished key from the current client traffic secret, after KeyUpdates too (RFC 8446 §4.4)', () => {
    const { client, server } = connect();
    exchange(client, server, client.updateKeys(true, NOW));
    const ev = exchange(server, client, server.requestClientCertificate(NOW));
    expect(of(ev.a, 'client-certificate')).toHaveLength(1);
    expect(of(ev.a, 'error')).toEqual([]);
  });

  it('takes an empty Certificate when none is required, refuses it with certificate_required otherwise', () => {
    const none = connect({ certificate: undefined });
    const ev = exchange(none.server, none.client, none.server.requestClientCertificate(NOW));
    expect(of(ev.a, 'client-certificate')[0]!.peerCertificates).toEqual([]);
    const strict = connect({ certificate: undefined });
    const ev2 = exchange(
      strict.server,
      strict.client,
      strict.server.requestClientCertificate(NOW, { required: true }),
    );
    expect(of(ev2.a, 'error')[0]).toMatchObject({ alertName: 'certificate_required', sent: true });
    expect(of(ev2.b, 'error')[0]).toMatchObject({ alertName: 'certificate_required', sent: false });
  });

  it('refuses an untrusted chain with the verifier’s alert', () => {
    const { client, server } = connect({ certificate: signerFor(ec) });
    const ev = exchange(server, client, server.requestClientCertificate(NOW));
    expect(of(ev.a, 'error')[0]).toMatchObject({ alertName: 'unknown_ca', sent: true });
  });

  it('answers a bad CertificateVerify signature with decrypt_error', () => {
    const real = signerFor(rsa);
    const forger: CertificateSigner = {
      certificateChain: real.certificateChain,
      signatureSchemes: real.signatureSchemes,
      sign(scheme, content) {
        const sig = real.sign(scheme, content).slice();
        sig[10] = (sig[10] ?? 0) ^ 0x01;
        return sig;
      },
    };
    const { client, server } = connect({ certificate: forger });
    const ev = exchange(server, client, server.requestClientCertificate(NOW));
    expect(of(ev.a, 'error')[0]).toMatchObject({ alertName: 'decrypt_error', sent: true });
    expect(of(ev.a, 'client-certificate')).toEqual([]);
  });

  it('answers a Finished under the wrong key with decrypt_error', () => {
    const { client, server } = connect();
    // The client's Finished key comes from the wrong secret: the handshake's, not the application's.
    (client as unknown as { trafficSecret: () => Uint8Array }).trafficSecret = () =>
      new Uint8Array(32).fill(7);
    const ev = exchange(server, client, server.requestClientCertificate(NOW));
    expect(of(ev.a, 'error')[0]).toMatchObject({ alertName: 'decrypt_error', sent: true });
  });

  it('answers a Certificate with the wrong context with illegal_parameter', () => {
    const { client, server } = connect();
    const c = client as unknown as {
      sendClientCertificate: (
        req: { context: Uint8Array; schemes: readonly number[] },
        ...rest: unknown[]
      ) => void;
    };
    const original = c.sendClientCertificate.bind(client);
    c.sendClientCertificate = (req, ...rest) =>
      original({ ...req, context: Uint8Array.of(1, 2, 3) }, ...rest);
    const ev = exchange(server, client, server.requestClientCertificate(NOW));
    expect(of(ev.a, 'error')[0]).toMatchObject({ alertName: 'illegal_parameter', sent: true });
  });

  it('answers a Certificate nobody asked for with unexpected_message', () => {
    const { client, server } = connect();
    const c = client as unknown as {
      guard: (fn: () => void) => TlsOutput;
      sendHandshake: (m: unknown, t: boolean) => void;
    };
    const out = c.guard(() =>
      c.sendHandshake(
        { msgType: 'certificate', certificateRequestContext: Uint8Array.of(9), certificateList: [] },
        false,
      ),
    );
    const r = deliver(server, out);
    expect(of(r.events, 'error')[0]).toMatchObject({ alertName: 'unexpected_message', sent: true });
  });

  it('a client that did not offer answers a CertificateRequest with unexpected_message (RFC 8446 §4.6.2)', () => {
    // The server sees extension 49 (added raw, after our own offer logic), the client knows it did not offer it.
    const { client, server } = connect({
      postHandshakeAuth: false,
      customizeHello: (h) => ({
        ...h,
        extensions: [
          ...h.extensions.slice(0, -1),
          { type: 'raw', code: ExtensionType.post_handshake_auth, data: new Uint8Array(0) },
          ...h.extensions.slice(-1),
        ],
      }),
    });
    const ev = exchange(server, client, server.requestClientCertificate(NOW));
    expect(of(ev.b, 'error')[0]).toMatchObject({ alertName: 'unexpected_message', sent: true });
  });

  it('post_handshake_auth decodes only with an empty body (RFC 8446 §4.2.6) and round-trips', () => {
    // extensions<8..2^16-1>: post_handshake_auth (0x0031) then an unknown 0xff01, both empty.
    const ok = readExtensions(
      new ByteReader(Uint8Array.of(0, 8, 0, 0x31, 0, 0, 0xff, 1, 0, 0), 'test'),
      'client_hello',
    );
    expect(ok).toEqual([
      { type: 'post_handshake_auth' },
      { type: 'raw', code: 0xff01, data: new Uint8Array(0) },
    ]);
    expect(encodeExtensions(ok)).toEqual(Uint8Array.of(0, 8, 0, 0x31, 0, 0, 0xff, 1, 0, 0));
    const body = Uint8Array.of(0, 9, 0, 0x31, 0, 1, 0, 0xff, 1, 0, 0);
    expect(() => readExtensions(new ByteReader(body, 'test'), 'client_hello')).toThrow(ParseError);
    const { hello } = connect();
    const raw = hello!.subarray(5);
    expect(encodeHandshake(decodeHandshake(raw))).toEqual(raw);
  });

  it('is neither offered nor requested in QUIC mode (RFC 9001 §4.4)', () => {
    const client = new TlsClient({
      crypto,
      serverName: 'stepwire.test',
      verifier: pinnedVerifier([ec]),
      postHandshakeAuth: true,
      alpnProtocols: ['h3'],
      quic: { transportParameters: Uint8Array.of(1, 2) },
    });
    const first = client.start(NOW);
    const crypto0 = first.events.find((e) => e.type === 'quic-crypto');
    if (crypto0?.type !== 'quic-crypto') throw new Error('no CRYPTO data');
    const ch = decodeHandshake(crypto0.data);
    if (ch.msgType !== 'client_hello') throw new Error('not a ClientHello');
    expect(ch.extensions.some((e) => e.type === 'post_handshake_auth')).toBe(false);
  });

  test.prop(
    [
      fc.oneof(
        arbitraryCertificate,
        arbitraryCertificateVerify,
        arbitraryFinished,
        arbitraryCertificateRequest,
      ),
      fc.boolean(),
    ],
    { numRuns: 25 },
  )('hostile post-handshake messages from the client end in an alert, never an exception', (msg, asked) => {
    const { client, server } = connect();
    if (asked) server.requestClientCertificate(NOW);
    const c = client as unknown as {
      guard: (fn: () => void) => TlsOutput;
      sendHandshake: (m: unknown, t: boolean) => void;
    };
    const out = c.guard(() => c.sendHandshake(msg, false));
    const r = deliver(server, out);
    const err = r.events.find((e) => e.type === 'error');
    // Each is refused with the RFC's alert for it; none is our own failure.
    expect(err).toBeDefined();
    expect(err).not.toMatchObject({ alertName: 'internal_error' });
    expect(r.events.some((e) => e.type === 'client-certificate')).toBe(false);
  });
});
