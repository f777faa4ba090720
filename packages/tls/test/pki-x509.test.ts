import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fc, test } from '@fast-check/vitest';
import { toHex } from '@stepwire/wire';
import { arbitraryBytes, decodesOrParseError } from '@stepwire/wire/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  altNames,
  canonicalIp,
  certificateSummary,
  decodeAsn1,
  decodeCertificate,
  decodeCertificatesPem,
  decodePem,
  decodePkcs1,
  decodePkcs8,
  decodePrivateKeyPem,
  decodeSec1,
  decodeSpki,
  der,
  ed25519KeyFromSeed,
  encodeAsn1,
  encodeCertificatePem,
  encodePkcs1,
  encodePkcs8,
  encodeSec1,
  encodeSpki,
  formatIp,
  issueCertificate,
  nameToRfc4514,
  nameToString,
  OID,
  parseIp,
  publicKeyOf,
  type X509Certificate,
} from '../src/pki/index.ts';
import { OpensslDir } from './pki-openssl.ts';

const VECTORS = join(import.meta.dirname, 'vectors/illustrated-tls13');

describe('the RSA certificate from The Illustrated TLS 1.3 (tls13.xargs.org, server.crt)', () => {
  const pem = readFileSync(`${VECTORS}/server.crt`, 'utf8');
  const cert = decodeCertificatesPem(pem)[0]!;

  it('parses every field as openssl x509 -text prints it', () => {
    expect(cert.version).toBe(3);
    expect(cert.serialNumber).toBe(0x155a92adc2048f90n);
    expect(cert.signatureAlgorithm.oid).toBe(OID.sha256WithRSAEncryption);
    expect(nameToString(cert.issuer)).toBe('C=US, O=Example CA');
    expect(nameToString(cert.subject)).toBe('C=US, CN=example.ulfheim.net');
    expect(cert.notBefore.toISOString()).toBe('2018-10-05T01:38:17.000Z');
    expect(cert.notAfter.toISOString()).toBe('2019-10-05T01:38:17.000Z');
    const key = cert.subjectPublicKeyInfo.publicKey;
    expect(key.type).toBe('rsa');
    if (key.type !== 'rsa') return;
    expect(key.bits).toBe(2048);
    expect(key.e).toBe(65537n);
    expect(key.n.toString(16).slice(0, 16)).toBe('c4803606bae7476b');
    expect(cert.keyUsage).toEqual(['digitalSignature', 'keyEncipherment']);
    expect(cert.extensions.find((e) => e.oid === OID.keyUsage)?.critical).toBe(true);
    expect(cert.extKeyUsage).toEqual([OID.clientAuth, OID.serverAuth]);
    expect(toHex(cert.authorityKeyIdentifier!.keyIdentifier!)).toBe(
      '894fde5bcc69e252cf3ea300dfb197b81de1c146',
    );
    expect(cert.signatureValue.length).toBe(256);
    expect(toHex(cert.signatureValue.subarray(0, 6))).toBe('591645a69a2e');
  });

  it('keeps tbsCertificate and the whole DER byte-exact', () => {
    const der = decodePem(pem)[0]!.der;
    expect(cert.raw).toEqual(der);
    // tbsCertificate starts right after the outer SEQUENCE header (30 82 03 21).
    expect(cert.tbsCertificate).toEqual(der.subarray(4, 4 + cert.tbsCertificate.length));
    expect(encodeCertificatePem(cert)).toBe(pem.replace(/\r\n/g, '\n').trim().concat('\n'));
  });

  it('its PKCS#1 key (server.key) is the certificate’s key and re-encodes byte-exact', () => {
    const keyPem = readFileSync(`${VECTORS}/server.key`, 'utf8');
    const key = decodePrivateKeyPem(keyPem);
    expect(publicKeyOf(key)).toEqual(cert.subjectPublicKeyInfo.publicKey);
    expect(encodeSpki(publicKeyOf(key))).toEqual(cert.subjectPublicKeyInfo.raw);
    if (key.type !== 'rsa') throw new Error('expected RSA');
    expect(encodePkcs1(key)).toEqual(decodePem(keyPem)[0]!.der);
  });

  test.prop([fc.nat(), fc.integer({ min: 0, max: 255 })], { numRuns: 1500 })(
    'any one-byte mutation parses or throws ParseError',
    (at, value) => {
      const b = cert.raw.slice();
      b[at % b.length] = value;
      return decodesOrParseError(decodeCertificate, b);
    },
  );
  test.prop([fc.nat()], { numRuns: 300 })('any truncation throws ParseError', (n) => {
    const b = cert.raw.subarray(0, n % cert.raw.length);
    expect(() => decodeCertificate(b)).toThrow(/asn1/);
  });
});

test.prop([arbitraryBytes(400)], { numRuns: 1500 })(
  'arbitrary bytes: decodeCertificate/decodePkcs8/decodeSpki',
  (b) => {
    decodesOrParseError(decodeCertificate, b);
    decodesOrParseError(decodePkcs8, b);
    return decodesOrParseError(decodeSpki, b);
  },
);

test.prop([arbitraryBytes(300)], { numRuns: 1000 })('arbitrary bytes: decodeSec1/decodePkcs1', (b) => {
  decodesOrParseError(decodeSec1, b);
  return decodesOrParseError(decodePkcs1, b);
});

test.prop(
  [
    fc.oneof(
      fc.string({ maxLength: 400 }),
      fc
        .tuple(
          fc.constantFrom('PRIVATE KEY', 'EC PRIVATE KEY', 'RSA PRIVATE KEY', 'CERTIFICATE'),
          fc.base64String({ maxLength: 300 }),
        )
        .map(([l, b]) => `-----BEGIN ${l}-----\n${b}\n-----END ${l}-----\n`),
    ),
  ],
  { numRuns: 1000 },
)('arbitrary text: PEM decoders return or throw ParseError', (text) => {
  decodesOrParseError(() => decodePem(text), new Uint8Array());
  decodesOrParseError(() => decodePrivateKeyPem(text), new Uint8Array());
  return decodesOrParseError(() => decodeCertificatesPem(text), new Uint8Array());
});

it('tolerates an explicit FALSE for extension critical and basicConstraints cA (a BER habit seen in the wild)', () => {
  const key = ed25519KeyFromSeed(new Uint8Array(32).fill(9));
  const c = issueCertificate(
    {
      subject: [['CN', 'x']],
      notBefore: new Date(0),
      notAfter: new Date(1e12),
      publicKey: publicKeyOf(key),
      isCA: false,
    },
    { privateKey: key },
  );
  // Certificate > tbsCertificate > [3] > extensions: swap basicConstraints for one with explicit FALSEs.
  const tree = decodeAsn1(c.raw);
  const tbs = tree.constructed ? tree.children[0] : undefined;
  const explicit = tbs?.constructed ? tbs.children.at(-1) : undefined;
  const list = explicit?.constructed ? explicit.children[0] : undefined;
  if (!list?.constructed) throw new Error('unexpected certificate shape');
  const at = list.children.findIndex((e) =>
    Buffer.from(encodeAsn1(e)).includes(Buffer.from(der.oid(OID.basicConstraints))),
  );
  list.children[at] = decodeAsn1(
    der.sequence(
      der.oid(OID.basicConstraints),
      der.boolean(false),
      der.octetString(der.sequence(der.boolean(false))),
    ),
  );
  const parsed = decodeCertificate(encodeAsn1(tree));
  expect(parsed.basicConstraints).toEqual({ cA: false });
  expect(parsed.extensions.find((e) => e.oid === OID.basicConstraints)!.critical).toBe(false);
});

describe('IP text forms (RFC 5952)', () => {
  it('formats and parses', () => {
    expect(formatIp(parseIp('fd00:5757:0:0:0:0:0:2'))).toBe('fd00:5757::2');
    expect(canonicalIp('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(canonicalIp('::')).toBe('::');
    expect(canonicalIp('::ffff:192.0.2.1')).toBe('::ffff:c000:201');
    expect(canonicalIp('198.18.0.2')).toBe('198.18.0.2');
    for (const bad of [
      '1.2.3',
      '1.2.3.256',
      '01.2.3.4',
      '1::2::3',
      'x::1',
      '1:2:3:4:5:6:7:8:9',
      'stepwire.test',
    ]) {
      expect(canonicalIp(bad)).toBeUndefined();
    }
  });
  test.prop([fc.uint8Array({ minLength: 16, maxLength: 16 })])('v6 round-trip', (b) => {
    expect(parseIp(formatIp(b))).toEqual(b);
  });
});

describe('certificates and keys made by openssl req -x509', () => {
  const ssl = new OpensslDir();
  const made: Record<string, { cert: X509Certificate; keyPem: string; text: string }> = {};
  const kinds = {
    ed25519: ['-newkey', 'ed25519'],
    p256: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
    rsa: ['-newkey', 'rsa:2048'],
  } as const;

  beforeAll(() => {
    for (const [kind, newkey] of Object.entries(kinds)) {
      ssl.run(
        'req',
        '-x509',
        ...newkey,
        '-nodes',
        '-keyout',
        `${kind}.key`,
        '-out',
        `${kind}.crt`,
        '-days',
        '30',
        '-subj',
        '/C=SE/O=Stepwire Test, Inc./CN=stepwire.test',
        '-addext',
        'subjectAltName=DNS:stepwire.test,DNS:*.example.test,IP:198.18.0.2,IP:fd00:5757::2,email:a@b.test',
        '-addext',
        'keyUsage=critical,digitalSignature,keyCertSign',
        '-addext',
        'extendedKeyUsage=serverAuth,clientAuth',
        '-addext',
        'basicConstraints=critical,CA:TRUE,pathlen:2',
        '-addext',
        '1.2.3.4.5=ASN1:UTF8String:kept',
      );
      made[kind] = {
        cert: decodeCertificatesPem(ssl.readText(`${kind}.crt`))[0]!,
        keyPem: ssl.readText(`${kind}.key`),
        text: ssl.run('x509', '-in', `${kind}.crt`, '-noout', '-text'),
      };
    }
  });
  afterAll(() => ssl.remove());

  for (const kind of Object.keys(kinds)) {
    it(`${kind}: fields agree with openssl x509`, () => {
      const { cert } = made[kind]!;
      const serial = ssl.run('x509', '-in', `${kind}.crt`, '-noout', '-serial').trim();
      expect(serial).toBe(
        `serial=${cert.serialNumber
          .toString(16)
          .toUpperCase()
          .padStart(serial.length - 7, '0')}`,
      );
      const dates = ssl.run(
        'x509',
        '-in',
        `${kind}.crt`,
        '-noout',
        '-startdate',
        '-enddate',
        '-dateopt',
        'iso_8601',
      );
      expect(dates).toContain(
        `notBefore=${cert.notBefore.toISOString().replace('T', ' ').replace('.000', '')}`,
      );
      expect(dates).toContain(
        `notAfter=${cert.notAfter.toISOString().replace('T', ' ').replace('.000', '')}`,
      );
      expect(nameToString(cert.subject)).toBe('C=SE, O=Stepwire Test\\, Inc., CN=stepwire.test');
      const rfc2253 = ssl
        .run('x509', '-in', `${kind}.crt`, '-noout', '-subject', '-nameopt', 'RFC2253')
        .trim();
      expect(rfc2253).toBe(`subject=${nameToRfc4514(cert.subject)}`);
      expect(nameToRfc4514(cert.subject)).toBe('CN=stepwire.test,O=Stepwire Test\\, Inc.,C=SE');
      expect(certificateSummary(cert)).toContain(
        'SAN DNS:stepwire.test DNS:*.example.test IP:198.18.0.2 IP:fd00:5757::2',
      );
      expect(nameToString(cert.issuer)).toBe(nameToString(cert.subject));
      expect(altNames(cert, 'dns')).toEqual(['stepwire.test', '*.example.test']);
      expect(altNames(cert, 'ip')).toEqual(['198.18.0.2', 'fd00:5757::2']);
      expect(altNames(cert, 'email')).toEqual(['a@b.test']);
      const san = ssl.run('x509', '-in', `${kind}.crt`, '-noout', '-ext', 'subjectAltName');
      expect(san).toContain(
        'DNS:stepwire.test, DNS:*.example.test, IP Address:198.18.0.2, IP Address:FD00:5757:0:0:0:0:0:2',
      );
      expect(cert.keyUsage).toEqual(['digitalSignature', 'keyCertSign']);
      expect(cert.extKeyUsage).toEqual([OID.serverAuth, OID.clientAuth]);
      expect(cert.basicConstraints).toEqual({ cA: true, pathLenConstraint: 2 });
      expect(cert.extensions.find((e) => e.oid === OID.basicConstraints)!.critical).toBe(true);
      const unknown = cert.extensions.find((e) => e.oid === '1.2.3.4.5')!;
      expect(unknown.critical).toBe(false);
      expect(toHex(unknown.value)).toBe(`0c04${toHex(new TextEncoder().encode('kept'))}`);
      // openssl adds key identifiers; ours must match what it prints.
      const ski = toHex(cert.subjectKeyIdentifier!).toUpperCase().match(/../g)!.join(':');
      expect(made[kind]!.text).toContain(ski);
    });

    it(`${kind}: SPKI bytes equal openssl pkey -pubout; private key parses and re-encodes`, () => {
      const { cert, keyPem } = made[kind]!;
      ssl.run('pkey', '-in', `${kind}.key`, '-pubout', '-outform', 'DER', '-out', `${kind}.spki`);
      expect(cert.subjectPublicKeyInfo.raw).toEqual(new Uint8Array(ssl.read(`${kind}.spki`)));
      const key = decodePrivateKeyPem(keyPem);
      expect(encodeSpki(publicKeyOf(key))).toEqual(cert.subjectPublicKeyInfo.raw);
      expect(decodePkcs8(encodePkcs8(key))).toEqual(key);
      // openssl reads our PKCS#8 back and finds the same public key.
      ssl.write(`${kind}.ours.der`, encodePkcs8(key));
      ssl.run(
        'pkey',
        '-inform',
        'DER',
        '-in',
        `${kind}.ours.der`,
        '-pubout',
        '-outform',
        'DER',
        '-out',
        `${kind}.ours.spki`,
      );
      expect(new Uint8Array(ssl.read(`${kind}.ours.spki`))).toEqual(cert.subjectPublicKeyInfo.raw);
    });
  }

  test.prop([fc.constantFrom('ed25519', 'p256', 'rsa'), fc.nat(), fc.integer({ min: 0, max: 255 })], {
    numRuns: 600,
  })(
    'one-byte mutations of openssl’s PKCS#8 keys and certificates parse or throw ParseError',
    (kind, at, value) => {
      const key = decodePem(made[kind]!.keyPem)[0]!.der.slice();
      key[at % key.length] = value;
      decodesOrParseError(decodePkcs8, key);
      const cert = made[kind]!.cert.raw.slice();
      cert[at % cert.length] = value;
      return decodesOrParseError(decodeCertificate, cert);
    },
  );

  it('traditional SEC1 and PKCS#1 keys from openssl parse to the same keys', () => {
    ssl.run('ec', '-in', 'p256.key', '-out', 'p256.sec1.pem');
    const sec1Pem = ssl.readText('p256.sec1.pem');
    expect(sec1Pem).toContain('BEGIN EC PRIVATE KEY');
    const sec1 = decodePrivateKeyPem(sec1Pem);
    expect(sec1).toEqual(decodePrivateKeyPem(made.p256!.keyPem));
    if (sec1.type !== 'ec') throw new Error('expected EC');
    expect(encodeSec1(sec1)).toEqual(decodePem(sec1Pem)[0]!.der);

    // A SEC1 key whose public point is written compressed (openssl ec -conv_form compressed).
    ssl.run('ec', '-in', 'p256.key', '-conv_form', 'compressed', '-out', 'p256.compressed.pem');
    expect(decodePrivateKeyPem(ssl.readText('p256.compressed.pem'))).toEqual(sec1);

    ssl.run('rsa', '-in', 'rsa.key', '-traditional', '-out', 'rsa.pkcs1.pem');
    const pkcs1Pem = ssl.readText('rsa.pkcs1.pem');
    expect(pkcs1Pem).toContain('BEGIN RSA PRIVATE KEY');
    expect(decodePrivateKeyPem(pkcs1Pem)).toEqual(decodePrivateKeyPem(made.rsa!.keyPem));
  });
});
