/**
 * A server holding several certificates (ECDSA P-256, RSA 2048 signing RSA-PSS, Ed25519)
 * chooses one per handshake by the client's signature_algorithms (and _cert) and SNI, as
 * nginx and rustls do (issue #12). The verdict comes from `openssl s_client -sigalgs ...`
 * (which certificate's key signed, and that its chain verifies) and from our own client.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { SignatureScheme } from '@stepwire/tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, createServer, type SecureServer } from '../packages/tls/src/api.ts';
import { type CertificateSigner, selectCertificate } from '../packages/tls/src/auth.ts';
import { runOpensslClient, stopAllPeers, tlsFixtures } from './support/tls-peers.ts';

const fx = tlsFixtures();
let server: SecureServer;
let tcp: net.Server;
let port = 0;
/** Every server CA, one PEM file (a path). */
const caFile = fx.serverCaBundle;
const caPem = readFileSync(caFile, 'utf8');

beforeAll(async () => {
  server = createServer({
    certificates: [
      { cert: fx.server['P-256'].leaf.certPem, key: fx.server['P-256'].leaf.keyPem },
      { cert: fx.server.rsa2048.leaf.certPem, key: fx.server.rsa2048.leaf.keyPem },
      { cert: fx.server.ed25519.leaf.certPem, key: fx.server.ed25519.leaf.keyPem },
    ],
    provider: 'node',
  });
  server.on('secureConnection', (s) => {
    s.on('error', () => {});
    s.end('hello\n');
  });
  server.on('tlsClientError', () => {});
  tcp = net.createServer();
  server.listen(tcp);
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  port = (tcp.address() as net.AddressInfo).port;
});
afterAll(async () => {
  server.close(true);
  tcp.close();
  await stopAllPeers();
});

describe('openssl s_client -sigalgs X gets the certificate whose key signs X, and it verifies', () => {
  it.each([
    ['rsa_pss_rsae_sha256', /Peer signature type: RSA-PSS/],
    ['ed25519', /Peer signature type: ed25519/i],
    ['ecdsa_secp256r1_sha256', /Peer signature type: ECDSA/],
  ])('%s', async (sigalgs, type) => {
    const r = await runOpensslClient({ port, caFile, extraArgs: ['-sigalgs', sigalgs], input: '' });
    expect(r.facts.verifyOk, r.stdout + r.stderr).toBe(true);
    expect(r.stdout + r.stderr).toMatch(type);
    expect(r.facts.alertsReceived).not.toContain('handshake_failure');
  });

  it('a client with no scheme any key can make gets handshake_failure', async () => {
    const r = await runOpensslClient({
      port,
      caFile,
      extraArgs: ['-sigalgs', 'ecdsa_secp384r1_sha384'],
      input: '',
    });
    expect(r.facts.alertsReceived).toContain('handshake_failure');
  });
});

describe('our client, offering one scheme at a time', () => {
  it.each([
    SignatureScheme.rsa_pss_rsae_sha256,
    SignatureScheme.ed25519,
    SignatureScheme.ecdsa_secp256r1_sha256,
  ] as const)('scheme %d', async (scheme) => {
    const leaf = await new Promise<Uint8Array>((resolve, reject) => {
      const s = connect({
        socket: net.connect(port, '127.0.0.1'),
        servername: 'stepwire.test',
        ca: caPem,
        sigalgs: [scheme],
      });
      s.on('secureConnect', () => {
        resolve(s.getPeerX509Certificates()[0]!.raw);
        s.destroy();
      });
      s.on('error', reject);
    });
    const want = {
      [SignatureScheme.rsa_pss_rsae_sha256]: fx.server.rsa2048,
      [SignatureScheme.ed25519]: fx.server.ed25519,
      [SignatureScheme.ecdsa_secp256r1_sha256]: fx.server['P-256'],
    }[scheme];
    expect(Buffer.from(leaf).equals(Buffer.from(want.leaf.credentials.certificate.raw))).toBe(true);
  });
});

describe('selectCertificate (RFC 8446 §4.2.3, §4.4.2.2; RFC 6066 §3)', () => {
  const fake = (
    name: string,
    schemes: number[],
    names: string[],
    chainSchemes: number[],
  ): CertificateSigner & { name: string } => ({
    name,
    certificateChain: [],
    signatureSchemes: schemes,
    sign: () => new Uint8Array(0),
    matchesServerName: (n) => names.includes(n),
    chainSchemes,
  });
  const EC = SignatureScheme.ecdsa_secp256r1_sha256;
  const PSS = SignatureScheme.rsa_pss_rsae_sha256;
  const ED = SignatureScheme.ed25519;
  const a = fake('a.test ec', [EC], ['a.test'], [EC]);
  const b = fake('b.test ec', [EC], ['b.test'], [EC]);
  const bRsa = fake('b.test rsa, RSA-signed chain', [PSS], ['b.test'], [PSS]);
  const bEcByRsa = fake('b.test ec, RSA-signed chain', [EC], ['b.test'], [PSS]);
  const pick = (signers: CertificateSigner[], hello: Parameters<typeof selectCertificate>[1]) =>
    (selectCertificate(signers, hello)?.signer as { name?: string } | undefined)?.name;

  it('SNI first, then signature_algorithms, in our order', () => {
    expect(pick([a, b], { signatureAlgorithms: [EC], serverName: 'b.test' })).toBe('b.test ec');
    expect(pick([a, b], { signatureAlgorithms: [EC], serverName: 'c.test' })).toBe('a.test ec');
    expect(pick([a, b, bRsa], { signatureAlgorithms: [PSS], serverName: 'b.test' })).toBe(
      'b.test rsa, RSA-signed chain',
    );
    expect(pick([a, b], { signatureAlgorithms: [ED] })).toBeUndefined();
  });

  it('signature_algorithms_cert prefers a chain the client accepts, else falls back (§4.4.2.2)', () => {
    expect(
      pick([bEcByRsa, b], {
        signatureAlgorithms: [EC, PSS],
        signatureAlgorithmsCert: [EC],
        serverName: 'b.test',
      }),
    ).toBe('b.test ec');
    expect(pick([bEcByRsa], { signatureAlgorithms: [EC], signatureAlgorithmsCert: [EC] })).toBe(
      'b.test ec, RSA-signed chain',
    );
  });
});
