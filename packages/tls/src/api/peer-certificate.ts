/**
 * Certificates in node:tls's words: the peer's leaf as getPeerCertificate() describes it, a
 * refused chain's Node error code (UNABLE_TO_VERIFY_LEAF_SIGNATURE, ...) and OpenSSL's message,
 * and node:tls's default server name check (RFC 6125) with its error.
 */
import { createHash } from 'node:crypto';
import { nodeCodeForCertificateError, X509_MESSAGE } from '../node-codes.ts';
import {
  type CertificateError,
  decodeCertificate,
  matchesHostname,
  NAME_ATTRIBUTES,
  type Name,
  namesEqual,
  type X509Certificate,
} from '../pki/index.ts';

/** A peer certificate as node:tls's getPeerCertificate() describes it. */
export interface PeerCertificate {
  subject: Record<string, string>;
  issuer: Record<string, string>;
  /** 'DNS:stepwire.test, IP Address:198.18.0.2', as node:tls writes it. */
  subjectaltname?: string;
  /** 'Dec  6 18:46:40 2026 GMT', as OpenSSL prints times. */
  valid_from: string;
  valid_to: string;
  /** Hex, upper case, two digits a byte. */
  serialNumber: string;
  /** SHA-1, SHA-256 and SHA-512 of the DER, 'AB:CD:...'. */
  fingerprint: string;
  fingerprint256: string;
  fingerprint512: string;
  /** Key size in bits (RSA modulus, EC curve, 253 for Ed25519 as OpenSSL says). */
  bits?: number;
  /** Extended key usage OIDs. */
  ext_key_usage?: string[];
  ca: boolean;
  raw: Buffer;
  /** The parsed certificate, for everything else. */
  x509: X509Certificate;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** OpenSSL's ASN1_TIME_print form, which node:tls's valid_from/valid_to carry: 'Dec  6 18:46:40 2026 GMT'. */
function opensslTime(d: Date): string {
  const p2 = (n: number) => String(n).padStart(2, '0');
  const time = `${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}`;
  return `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${time} ${d.getUTCFullYear()} GMT`;
}

function nameRecord(n: Name): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rdn of n.rdns) for (const a of rdn) out[NAME_ATTRIBUTES[a.type] ?? a.type] = a.value;
  return out;
}

export function describePeer(der: Uint8Array): PeerCertificate {
  const c = decodeCertificate(der);
  const san = (c.subjectAltName ?? [])
    .map((g) =>
      g.type === 'dns'
        ? `DNS:${g.value}`
        : g.type === 'ip'
          ? `IP Address:${g.value}`
          : g.type === 'email'
            ? `email:${g.value}`
            : g.type === 'uri'
              ? `URI:${g.value}`
              : undefined,
    )
    .filter((s) => s !== undefined);
  const fp = (alg: string) =>
    (createHash(alg).update(der).digest('hex').toUpperCase().match(/../g) ?? []).join(':');
  const serial = c.serialNumber.toString(16).toUpperCase();
  const key = c.subjectPublicKeyInfo.publicKey;
  const bits = key.type === 'rsa' ? key.bits : key.type === 'ec' ? (key.curve === 'P-256' ? 256 : 384) : 253;
  return {
    subject: nameRecord(c.subject),
    issuer: nameRecord(c.issuer),
    ...(san.length ? { subjectaltname: san.join(', ') } : {}),
    valid_from: opensslTime(c.notBefore),
    valid_to: opensslTime(c.notAfter),
    serialNumber: serial.length % 2 ? `0${serial}` : serial,
    fingerprint: fp('sha1'),
    fingerprint256: fp('sha256'),
    fingerprint512: fp('sha512'),
    bits,
    ...(c.extKeyUsage ? { ext_key_usage: [...c.extKeyUsage] } : {}),
    ca: c.basicConstraints?.cA ?? false,
    raw: Buffer.from(der),
    x509: c,
  };
}

/** A chain as node:tls tells unknown issuers apart: which certificates sign themselves. */
function chainShape(chain: readonly Uint8Array[]): { selfSigned: boolean }[] {
  return chain.map((der) => {
    try {
      const c = decodeCertificate(der);
      return { selfSigned: namesEqual(c.subject, c.issuer) };
    } catch {
      return { selfSigned: false };
    }
  });
}

/** A refused certificate's Node code, and OpenSSL's words for it where Node users know them. */
export function certificateFailure(
  error: CertificateError,
  chain: readonly Uint8Array[],
): { code: string; message: string } {
  const code = nodeCodeForCertificateError(error, chainShape(chain));
  return { code, message: X509_MESSAGE[code] ?? error.message };
}

/** node:tls's default check of the server's name (RFC 6125), with its error code and message. */
export function checkServerIdentity(hostname: string, cert: PeerCertificate): Error | undefined {
  if (cert.x509 && matchesHostname(cert.x509, hostname, false)) return undefined;
  const err = new Error(
    `Hostname/IP does not match certificate's altnames: Host: ${hostname}. is not in the cert's altnames: ${cert.subjectaltname ?? ''}`,
  ) as Error & { code: string; reason: string; host: string; cert: PeerCertificate };
  err.code = 'ERR_TLS_CERT_ALTNAME_INVALID';
  err.reason = `Host: ${hostname}. is not in the cert's altnames: ${cert.subjectaltname ?? ''}`;
  err.host = hostname;
  err.cert = cert;
  return err;
}
