import { X509Certificate as NodeX509Certificate } from 'node:crypto';
import * as tls from 'node:tls';
import { test } from '@fast-check/vitest';
import { afterAll, describe, expect, it } from 'vitest';
import {
  algorithmForCertificate,
  altNames,
  createCertificateAuthority,
  createLeafCertificate,
  createStepwireCredentials,
  credentialsFromPem,
  decodeCertificate,
  decodeCertificatesPem,
  decodePrivateKeyPem,
  ed25519KeyFromSeed,
  encodeCertificatePem,
  encodeSpki,
  issueCertificate,
  KEY_USAGE_BITS,
  keyIdentifier,
  nameToString,
  OID,
  publicKeyOf,
  pureSignatures,
  verifyCertificateChain,
  verifyWith,
} from '../src/pki/index.ts';
import { arbitraryCertificateTemplate } from '../src/pki/testing.ts';
import { OpensslDir } from './pki-openssl.ts';

const ssl = new OpensslDir();
afterAll(() => ssl.remove());

describe('createStepwireCredentials (what `stepwire serve` makes on first use)', () => {
  const now = new Date();
  const { ca, leaf } = createStepwireCredentials(now);
  ssl.write('ca.pem', ca.certificatePem);
  ssl.write('leaf.pem', leaf.certificatePem);
  ssl.write('leaf.key', leaf.privateKeyPem);
  ssl.write('ca.key', ca.privateKeyPem);

  it('openssl x509 -text shows what we parse', () => {
    const text = ssl.run('x509', '-in', 'leaf.pem', '-noout', '-text');
    expect(text).toContain('Version: 3 (0x2)');
    expect(text).toContain('Signature Algorithm: ecdsa-with-SHA256');
    expect(text).toContain('Issuer: O = stepwire, CN = stepwire test CA');
    expect(text).toContain('Subject: CN = stepwire.test');
    expect(text).toContain('ASN1 OID: prime256v1');
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature/);
    expect(text).toMatch(
      /X509v3 Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/,
    );
    const hexId = (b: Uint8Array) => Buffer.from(b).toString('hex').toUpperCase().match(/../g)!.join(':');
    expect(text).toContain(hexId(leaf.certificate.subjectKeyIdentifier!));
    expect(text).toContain(hexId(ca.certificate.subjectKeyIdentifier!));
    const serial = ssl.run('x509', '-in', 'leaf.pem', '-noout', '-serial').trim().replace('serial=', '');
    expect(BigInt(`0x${serial}`)).toBe(leaf.certificate.serialNumber);
    const caText = ssl.run('x509', '-in', 'ca.pem', '-noout', '-text');
    expect(caText).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(caText).toMatch(/X509v3 Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/);
    expect(nameToString(ca.certificate.subject)).toBe('O=stepwire, CN=stepwire test CA');
  });

  it('openssl x509 -ext subjectAltName shows our SANs', () => {
    const san = ssl.run('x509', '-in', 'leaf.pem', '-noout', '-ext', 'subjectAltName');
    expect(san).toContain('DNS:stepwire.test, IP Address:198.18.0.2, IP Address:FD00:5757:0:0:0:0:0:2');
    expect(altNames(leaf.certificate, 'dns')).toEqual(['stepwire.test']);
    expect(altNames(leaf.certificate, 'ip')).toEqual(['198.18.0.2', 'fd00:5757::2']);
  });

  it('openssl verify -CAfile accepts the leaf for its names and purpose', () => {
    for (const extra of [
      [],
      ['-verify_hostname', 'stepwire.test'],
      ['-verify_ip', '198.18.0.2'],
      ['-verify_ip', 'fd00:5757::2'],
      ['-purpose', 'sslserver'],
      ['-purpose', 'sslclient'],
      ['-x509_strict'],
    ]) {
      const r = ssl.status('verify', '-CAfile', 'ca.pem', ...extra, 'leaf.pem');
      expect(r.out, extra.join(' ')).toContain('leaf.pem: OK');
    }
    expect(
      ssl.status('verify', '-CAfile', 'ca.pem', '-verify_hostname', 'other.test', 'leaf.pem').code,
    ).not.toBe(0);
    expect(ssl.status('verify', '-CAfile', 'ca.pem', '-x509_strict', 'ca.pem').out).toContain('ca.pem: OK');
  });

  it('the PKCS#8 keys are what openssl expects and match the certificates', () => {
    for (const [key, cert] of [
      ['leaf.key', 'leaf.pem'],
      ['ca.key', 'ca.pem'],
    ] as const) {
      const fromKey = ssl.run('pkey', '-in', key, '-pubout');
      const fromCert = ssl.run('x509', '-in', cert, '-noout', '-pubkey');
      expect(fromKey).toBe(fromCert);
      expect(ssl.run('pkey', '-in', key, '-check', '-noout')).toMatch(/valid/i);
    }
    expect(leaf.privateKeyPem).toContain('-----BEGIN PRIVATE KEY-----');
    expect(decodePrivateKeyPem(leaf.privateKeyPem)).toEqual(leaf.privateKey);
    expect(decodeCertificatesPem(leaf.certificatePem)[0]!.raw).toEqual(leaf.certificateDer);
    // What `stepwire serve` stores, it can load again; a key from elsewhere is refused.
    expect(credentialsFromPem(leaf.certificatePem, leaf.privateKeyPem)).toEqual(leaf);
    expect(() => credentialsFromPem(leaf.certificatePem, ca.privateKeyPem)).toThrow(/does not belong/);
    expect(() => credentialsFromPem('nothing here', leaf.privateKeyPem)).toThrow(/no CERTIFICATE/);
  });

  it('node:crypto X509Certificate agrees (issuer, host, IPs, signature)', () => {
    const x = new NodeX509Certificate(leaf.certificatePem);
    const c = new NodeX509Certificate(ca.certificatePem);
    expect(x.checkIssued(c)).toBe(true);
    expect(x.verify(c.publicKey)).toBe(true);
    expect(x.checkHost('stepwire.test')).toBe('stepwire.test');
    expect(x.checkHost('other.test')).toBeUndefined();
    expect(x.checkIP('198.18.0.2')).toBe('198.18.0.2');
    expect(x.checkIP('fd00:5757::2')).toBe('fd00:5757::2');
    expect(c.ca).toBe(true);
    expect(x.ca).toBe(false);
  });

  it('a real TLS handshake on loopback: node:tls serves our leaf and trusts our CA', async () => {
    const server = tls.createServer(
      { cert: leaf.certificatePem, key: leaf.privateKeyPem, minVersion: 'TLSv1.3' },
      (s) => s.end('hello'),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const got = await new Promise<string>((resolve, reject) => {
        const s = tls.connect(
          { host: '127.0.0.1', port, servername: 'stepwire.test', ca: ca.certificatePem },
          () => {
            let data = '';
            s.on('data', (d) => {
              data += d;
            });
            s.on('end', () => resolve(data));
          },
        );
        s.on('error', reject);
        s.setTimeout(5000, () => reject(new Error('timeout')));
      });
      expect(got).toBe('hello');
      // And the client refuses a name the certificate does not carry.
      await expect(
        new Promise((resolve, reject) => {
          const s = tls.connect(
            { host: '127.0.0.1', port, servername: 'other.test', ca: ca.certificatePem },
            () => resolve(s.end()),
          );
          s.on('error', reject);
        }),
      ).rejects.toThrow(/altnames|Hostname/i);
    } finally {
      server.close();
    }
  });

  it('our verifier accepts it for every name, and the Ed25519 flavour works too', () => {
    for (const hostname of ['stepwire.test', '198.18.0.2', 'fd00:5757::2']) {
      expect(
        verifyCertificateChain(leaf.certificateDer, [], { trustAnchors: [ca.certificateDer], now, hostname })
          .chain.length,
      ).toBe(2);
    }
    const ed = createStepwireCredentials(now, { keyType: 'ed25519', provider: pureSignatures });
    expect(ed.leaf.certificate.signatureAlgorithm.oid).toBe(OID.idEd25519);
    ssl.write('ed-ca.pem', ed.ca.certificatePem);
    ssl.write('ed-leaf.pem', ed.leaf.certificatePem);
    expect(
      ssl.status('verify', '-CAfile', 'ed-ca.pem', '-verify_ip', 'fd00:5757::2', 'ed-leaf.pem').out,
    ).toContain('ed-leaf.pem: OK');
  });

  it('validity: backdated one hour, CA 10 years, leaf one year; UTCTime before 2050', () => {
    expect(leaf.certificate.notBefore.getTime()).toBe(Math.floor(now.getTime() / 1000) * 1000 - 3_600_000);
    expect(ca.certificate.notAfter.getTime() - ca.certificate.notBefore.getTime()).toBe(
      3650 * 86_400_000 + 3_600_000,
    );
    expect(leaf.certificate.notAfter.getTime() - leaf.certificate.notBefore.getTime()).toBe(
      365 * 86_400_000 + 3_600_000,
    );
  });
});

describe('issueCertificate', () => {
  const issuerKey = ed25519KeyFromSeed(new Uint8Array(32).fill(7));

  test.prop([arbitraryCertificateTemplate], { numRuns: 150 })(
    'round-trip: what we issue parses back to the template, and its signature verifies',
    (t) => {
      const c = issueCertificate(t, { privateKey: issuerKey });
      const back = decodeCertificate(c.raw);
      expect(back).toEqual(c);
      expect(c.version).toBe(3);
      expect(c.serialNumber).toBe(t.serialNumber);
      expect(c.notBefore.getTime()).toBe(t.notBefore.getTime());
      expect(c.notAfter.getTime()).toBe(t.notAfter.getTime());
      expect(c.subject.rdns.map((rdn) => rdn.map((a) => a.value))).toEqual(t.subject.map(([, v]) => [v]));
      expect(c.issuer.raw).toEqual(c.subject.raw);
      expect(c.subjectPublicKeyInfo.publicKey).toEqual(t.publicKey);
      expect(c.basicConstraints).toEqual(
        t.isCA
          ? {
              cA: true,
              ...(t.pathLenConstraint !== undefined ? { pathLenConstraint: t.pathLenConstraint } : {}),
            }
          : { cA: false },
      );
      expect(c.keyUsage).toEqual(
        t.keyUsage ? KEY_USAGE_BITS.filter((b) => t.keyUsage!.includes(b)) : undefined,
      );
      expect(c.extKeyUsage).toEqual(t.extKeyUsage);
      expect(c.subjectAltName).toEqual(t.subjectAltNames);
      expect(c.subjectKeyIdentifier).toEqual(keyIdentifier(t.publicKey));
      for (const e of t.extraExtensions ?? []) {
        expect(c.extensions.find((x) => x.oid === e.oid)).toEqual({
          oid: e.oid,
          critical: e.critical,
          value: e.value,
        });
      }
      expect(
        verifyWith(
          algorithmForCertificate(c.signatureAlgorithm),
          encodeSpki(publicKeyOf(issuerKey)),
          c.tbsCertificate,
          c.signatureValue,
          pureSignatures,
        ),
      ).toBe(true);
    },
  );

  it('openssl parses a certificate with every kind of SAN and an unknown extension we wrote', () => {
    const t = new Date();
    const ca = createCertificateAuthority({ now: t, keyType: 'rsa2048' });
    const leaf = createLeafCertificate(ca, {
      now: t,
      dnsNames: ['stepwire.test', '*.wild.stepwire.test'],
      ipAddresses: ['198.18.0.2', 'fd00:5757::2', '::ffff:198.18.0.9'],
      extKeyUsage: ['serverAuth'],
    });
    expect(leaf.certificate.signatureAlgorithm.oid).toBe(OID.sha256WithRSAEncryption);
    ssl.write('rsa-ca.pem', ca.certificatePem);
    ssl.write('rsa-leaf.pem', leaf.certificatePem);
    expect(ssl.run('x509', '-in', 'rsa-leaf.pem', '-noout', '-ext', 'subjectAltName')).toContain(
      'DNS:stepwire.test, DNS:*.wild.stepwire.test, IP Address:198.18.0.2, IP Address:FD00:5757:0:0:0:0:0:2, IP Address:0:0:0:0:0:FFFF:C612:9',
    );
    expect(
      ssl.status(
        'verify',
        '-CAfile',
        'rsa-ca.pem',
        '-verify_hostname',
        'x.wild.stepwire.test',
        'rsa-leaf.pem',
      ).code,
    ).toBe(0);
    expect(
      ssl.status('verify', '-CAfile', 'rsa-ca.pem', '-purpose', 'sslclient', 'rsa-leaf.pem').code,
    ).not.toBe(0);
    // RSASSA-PSS certificate signatures (RFC 4055 parameters) that openssl accepts.
    const pssCa = createCertificateAuthority({ now: t, keyType: 'rsa2048', commonName: 'PSS CA' });
    const pssLeafKey = ed25519KeyFromSeed(new Uint8Array(32).fill(3));
    const pssLeaf = issueCertificate(
      {
        subject: [['CN', 'stepwire.test']],
        notBefore: new Date(t.getTime() - 1000),
        notAfter: new Date(t.getTime() + 86_400_000),
        publicKey: publicKeyOf(pssLeafKey),
        isCA: false,
        keyUsage: ['digitalSignature'],
        subjectAltNames: [{ type: 'dns', value: 'stepwire.test' }],
      },
      pssCa,
      { signature: { kind: 'rsa-pss', hash: 'sha384', saltLength: 48 }, provider: pureSignatures },
    );
    expect(pssLeaf.signatureAlgorithm.oid).toBe(OID.rsassaPss);
    ssl.write('pss-ca.pem', pssCa.certificatePem);
    ssl.write('pss-leaf.pem', encodeCertificatePem(pssLeaf));
    expect(ssl.run('x509', '-in', 'pss-leaf.pem', '-noout', '-text')).toMatch(
      /rsassaPss[\s\S]*Hash Algorithm: sha384[\s\S]*Salt Length: 0x30/,
    );
    expect(ssl.status('verify', '-CAfile', 'pss-ca.pem', 'pss-leaf.pem').out).toContain('pss-leaf.pem: OK');
    expect(
      verifyCertificateChain(pssLeaf, [], { trustAnchors: [pssCa.certificate], now: t }).chain.length,
    ).toBe(2);

    // dNSName is IA5String: IDNs go in as A-labels or not at all.
    expect(() => createLeafCertificate(ca, { now: t, dnsNames: ['bücher.test'] })).toThrow(/not ASCII/);
    expect(
      createLeafCertificate(ca, { now: t, dnsNames: ['xn--bcher-kva.test'] }).certificate.subjectAltName,
    ).toEqual([{ type: 'dns', value: 'xn--bcher-kva.test' }]);
  });
});
