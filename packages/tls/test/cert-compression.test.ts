/**
 * Certificate compression (RFC 8879): a client that offers brotli or zlib gets a
 * CompressedCertificate (which stands in the transcript as sent, so CertificateVerify and
 * Finished still verify); one that offers nothing, or a server configured without it, gets the
 * plain Certificate; a message that does not decompress to its announced length is a
 * bad_certificate (§4). The codec's laws cover the new message through the arbitraries.
 */
import { TraceBus } from '@stepwire/wire';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  brotliCompressor,
  decodeCompressCertificate,
  decompressCertificate,
  zlibCompressor,
} from '../src/cert-compression.ts';
import { TlsClient, type TlsClientOptions } from '../src/client.ts';
import { TlsAlertError } from '../src/codec/alert.ts';
import type { TlsEvent } from '../src/connection.ts';
import { TlsServer, type TlsServerOptions } from '../src/server.ts';
import { makeIdentity, pinnedVerifier, signerFor, type TestIdentity } from './helpers/node-auth.ts';
import { pump } from './helpers/pump.ts';

let rsa: TestIdentity;
beforeAll(() => {
  rsa = makeIdentity('stepwire.test', 'rsa');
});
const NOW = 1_000_000;
const done = (events: TlsEvent[]) =>
  events.find((e): e is Extract<TlsEvent, { type: 'handshake-complete' }> => e.type === 'handshake-complete');

function run(copts: Partial<TlsClientOptions>, sopts: Partial<TlsServerOptions> = {}) {
  const trace = new TraceBus();
  const sent: { type: string; bytes?: number }[] = [];
  trace.on((e) => {
    if (e.host === 'server' && e.dir === 'out' && typeof e.fields?.msgType === 'string')
      sent.push({ type: e.fields.msgType });
  });
  const client = new TlsClient({ serverName: 'stepwire.test', verifier: pinnedVerifier([rsa]), ...copts });
  const server = new TlsServer({ signer: signerFor(rsa), trace, ...sopts });
  const ev = pump(client, server, client.start(NOW), { now: NOW });
  return { ev, sent: sent.map((s) => s.type) };
}

describe('CompressedCertificate (RFC 8879 §4)', () => {
  it.each([
    ['brotli', brotliCompressor],
    ['zlib', zlibCompressor],
  ])('a client offering %s gets the chain compressed, and the handshake verifies', (_n, c) => {
    const r = run({ certificateCompression: [c] });
    expect(r.sent).toContain('compressed_certificate');
    expect(r.sent).not.toContain('certificate');
    expect(done(r.ev.a)?.peerCertificates[0]).toEqual(rsa.certDer);
    expect(done(r.ev.b)).toBeDefined();
  });

  it('no offer, or a server without compression: the plain Certificate', () => {
    expect(run({}).sent).toContain('certificate');
    expect(
      run({ certificateCompression: [brotliCompressor] }, { certificateCompression: false }).sent,
    ).toContain('certificate');
  });

  it('the server takes its own first algorithm that the client offered', () => {
    const r = run(
      { certificateCompression: [zlibCompressor, brotliCompressor] },
      { certificateCompression: [zlibCompressor] },
    );
    expect(r.sent).toContain('compressed_certificate');
    expect(done(r.ev.a)).toBeDefined();
  });
});

describe('decompression failures are bad_certificate (RFC 8879 §4)', () => {
  const body = new Uint8Array(300).fill(7);
  const good = brotliCompressor.compress(body);
  it.each([
    ['garbage', () => decompressCertificate(zlibCompressor, Uint8Array.of(1, 2, 3), 10, 1 << 17)],
    ['a shorter result than announced', () => decompressCertificate(brotliCompressor, good, 301, 1 << 17)],
    ['a longer result than announced', () => decompressCertificate(brotliCompressor, good, 299, 1 << 17)],
    ['an announced length over our limit', () => decompressCertificate(brotliCompressor, good, 300, 299)],
  ])('%s', (_n, f) => {
    expect(f).toThrowError(TlsAlertError);
    try {
      f();
    } catch (e) {
      expect((e as TlsAlertError).description).toBe(42);
    }
  });

  it('the exact length decompresses', () => {
    expect(decompressCertificate(brotliCompressor, good, 300, 1 << 17)).toEqual(body);
  });

  it('compress_certificate lists decode; an odd or empty list is a ParseError', () => {
    expect(decodeCompressCertificate(Uint8Array.of(4, 0, 2, 0, 1))).toEqual([2, 1]);
    expect(() => decodeCompressCertificate(Uint8Array.of(3, 0, 2, 0))).toThrow();
    expect(() => decodeCompressCertificate(Uint8Array.of(0))).toThrow();
  });
});

describe('through the node:tls-shaped API', () => {
  it('connect({ certificateCompression }) to createServer(): compressed, verified', async () => {
    const { duplexPair } = await import('node:stream');
    const { connect, createServer } = await import('../src/api.ts');
    const { createStepwireCredentials } = await import('../src/pki/index.ts');
    const { ca, leaf } = createStepwireCredentials(new Date());
    const trace = new TraceBus();
    const sent: string[] = [];
    trace.on((e) => {
      if (e.dir === 'out' && typeof e.fields?.msgType === 'string') sent.push(e.fields.msgType);
    });
    const server = createServer({ cert: leaf.certificatePem, key: leaf.privateKeyPem, trace, hostName: 's' });
    const [a, b] = duplexPair();
    server.emit('connection', b);
    const c = connect({
      socket: a,
      servername: 'stepwire.test',
      ca: ca.certificatePem,
      certificateCompression: [zlibCompressor],
    });
    await new Promise((resolve, reject) => {
      c.once('secureConnect', resolve);
      c.once('error', reject);
    });
    expect(c.authorized).toBe(true);
    expect(sent).toContain('compressed_certificate');
    c.destroy();
  });
});
