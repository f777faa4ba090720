/**
 * Test doubles for the certificate seams, built on node:crypto (OpenSSL) so they are
 * independent of our own pki code: a self-signed certificate made by the openssl CLI, a
 * signer over its key and a verifier that trusts exactly that certificate.
 */
import { execFileSync } from 'node:child_process';
import { constants, createPrivateKey, type KeyObject, sign, verify, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CertificateSigner, CertificateVerifier } from '../../src/auth.ts';
import { AlertDescription, TlsAlertError } from '../../src/codec/alert.ts';

export interface TestIdentity {
  certPem: string;
  keyPem: string;
  certDer: Uint8Array;
  key: KeyObject;
  kind: 'ec' | 'rsa' | 'ed25519';
}

/** A self-signed certificate for `name` (openssl req -x509). */
export function makeIdentity(name: string, kind: 'ec' | 'rsa' | 'ed25519' = 'ec'): TestIdentity {
  const dir = mkdtempSync(join(tmpdir(), 'stepwire-tls-'));
  try {
    const keyArgs =
      kind === 'ec'
        ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1']
        : kind === 'rsa'
          ? ['-newkey', 'rsa:2048']
          : ['-newkey', 'ed25519'];
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        ...keyArgs,
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-days',
        '2',
        '-subj',
        `/CN=${name}`,
        '-addext',
        `subjectAltName=DNS:${name}`,
      ],
      { stdio: 'pipe', timeout: 30_000 },
    );
    const certPem = readFileSync(join(dir, 'cert.pem'), 'utf8');
    const keyPem = readFileSync(join(dir, 'key.pem'), 'utf8');
    return {
      certPem,
      keyPem,
      certDer: new Uint8Array(new X509Certificate(certPem).raw),
      key: createPrivateKey(keyPem),
      kind,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const SCHEMES: Record<number, { hash: string | null; pss?: number }> = {
  1027: { hash: 'sha256' },
  1283: { hash: 'sha384' },
  2052: { hash: 'sha256', pss: 32 },
  2053: { hash: 'sha384', pss: 48 },
  2054: { hash: 'sha512', pss: 64 },
  2055: { hash: null },
};

export function signerFor(id: TestIdentity): CertificateSigner {
  const schemes = id.kind === 'ec' ? [0x0403] : id.kind === 'rsa' ? [0x0804, 0x0805, 0x0806] : [0x0807];
  return {
    certificateChain: [id.certDer],
    signatureSchemes: schemes,
    sign(scheme, content) {
      const s = SCHEMES[scheme]!;
      const opts = s.pss
        ? { key: id.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: s.pss }
        : id.key;
      return new Uint8Array(sign(s.hash, content, opts));
    },
  };
}

/** Trusts exactly `trusted` (pinned), checks the name and the validity period. */
export function pinnedVerifier(trusted: TestIdentity[]): CertificateVerifier & { checked: number } {
  const anchors = trusted.map((t) => new X509Certificate(t.certPem));
  const v = {
    checked: 0,
    signatureSchemes: [0x0403, 0x0804, 0x0805, 0x0806, 0x0807, 0x0503],
    verifyChain(chain: readonly Uint8Array[], ctx: { serverName?: string; now: number }) {
      v.checked++;
      let leaf: X509Certificate;
      try {
        leaf = new X509Certificate(Buffer.from(chain[0]!));
      } catch {
        throw new TlsAlertError(AlertDescription.bad_certificate, 'unparsable certificate');
      }
      if (!anchors.some((a) => a.raw.equals(leaf.raw) && leaf.verify(a.publicKey))) {
        throw new TlsAlertError(AlertDescription.unknown_ca, 'not the pinned certificate');
      }
      const now = Date.now();
      if (now < Date.parse(leaf.validFrom) || now > Date.parse(leaf.validTo)) {
        throw new TlsAlertError(AlertDescription.certificate_expired, 'outside the validity period');
      }
      if (ctx.serverName && !leaf.checkHost(ctx.serverName)) {
        throw new TlsAlertError(AlertDescription.bad_certificate, `certificate is not for ${ctx.serverName}`);
      }
    },
    verifySignature(leafDer: Uint8Array, scheme: number, content: Uint8Array, signature: Uint8Array) {
      const s = SCHEMES[scheme];
      if (!s) return false;
      const key = new X509Certificate(Buffer.from(leafDer)).publicKey;
      const opts = s.pss ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: s.pss } : key;
      try {
        return verify(s.hash, content, opts, signature);
      } catch {
        return false;
      }
    },
  };
  return v;
}
