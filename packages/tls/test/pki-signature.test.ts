import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fc, test } from '@fast-check/vitest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignatureScheme } from '../src/codec/common.ts';
import {
  algorithmForCertificate,
  certificateVerifyContent,
  decodeCertificatesPem,
  decodePrivateKeyPem,
  ecdsaCompactToDer,
  ecdsaDerToCompact,
  encodePem,
  encodePrivateKeyPem,
  encodeSpki,
  generateKey,
  nodeSignatures,
  type PrivateKey,
  publicKeyOf,
  pureSignatures,
  SignatureError,
  schemesForKey,
  sign,
  signWith,
  verifySignature,
  verifyWith,
  type X509Certificate,
} from '../src/pki/index.ts';
import { OpensslDir } from './pki-openssl.ts';

const providers = [nodeSignatures, pureSignatures];
const VECTORS = join(import.meta.dirname, 'vectors/illustrated-tls13');
const enc = (s: string) => new TextEncoder().encode(s);

describe('The Illustrated TLS 1.3 server CertificateVerify (rsa_pss_rsae_sha256, tls13.xargs.org)', () => {
  const cap = (n: string) => new Uint8Array(readFileSync(`${VECTORS}/caps/${n}`));
  // Handshake messages: ClientHello/ServerHello lose their 5-byte record header; the decrypted
  // EncryptedExtensions and Certificate lose the trailing inner content type (0x16).
  const transcript = Buffer.concat([
    cap('clienthello').subarray(5),
    cap('serverhello').subarray(5),
    cap('serverextensions').subarray(0, -1),
    cap('servercert').subarray(0, -1),
  ]);
  const cv = cap('servercertverify');
  const cert = decodeCertificatesPem(readFileSync(`${VECTORS}/server.crt`, 'utf8'))[0]!;
  const scheme = (cv[4]! << 8) | cv[5]!;
  const signature = cv.subarray(8, 8 + ((cv[6]! << 8) | cv[7]!));
  // The connection negotiated TLS_AES_256_GCM_SHA384, so the transcript hash is SHA-384.
  const content = certificateVerifyContent(
    'server',
    new Uint8Array(createHash('sha384').update(transcript).digest()),
  );

  for (const p of providers) {
    it(`${p.name}: verifies, and rejects a flipped bit`, () => {
      expect(scheme).toBe(SignatureScheme.rsa_pss_rsae_sha256);
      expect(signature.length).toBe(256);
      expect(verifySignature(scheme, cert.subjectPublicKeyInfo, content, signature, p)).toBe(true);
      const bad = signature.slice();
      bad[100]! ^= 1;
      expect(verifySignature(scheme, cert.subjectPublicKeyInfo, content, bad, p)).toBe(false);
      const other = content.slice();
      other[other.length - 1]! ^= 1;
      expect(verifySignature(scheme, cert.subjectPublicKeyInfo, other, signature, p)).toBe(false);
      // Same key, wrong padding: a PSS signature is not a PKCS#1 v1.5 one.
      expect(
        verifySignature(SignatureScheme.rsa_pkcs1_sha256, cert.subjectPublicKeyInfo, content, signature, p),
      ).toBe(false);
    });
  }

  it('both providers sign with the vector’s key and each verifies the other', () => {
    const key = decodePrivateKeyPem(readFileSync(`${VECTORS}/server.key`, 'utf8'));
    for (const signer of providers) {
      for (const verifier of providers) {
        const s = sign(SignatureScheme.rsa_pss_rsae_sha256, key, content, signer);
        expect(
          verifySignature(
            SignatureScheme.rsa_pss_rsae_sha256,
            cert.subjectPublicKeyInfo,
            content,
            s,
            verifier,
          ),
        ).toBe(true);
      }
    }
  });
});

describe('every scheme, both providers, both directions', () => {
  const keys: Record<string, PrivateKey> = {};
  beforeAll(() => {
    keys.ed25519 = generateKey('ed25519');
    keys.p256 = generateKey('P-256');
    keys.p384 = generateKey('P-384');
    keys.rsa = generateKey('rsa2048');
  });
  const cases: [keyof typeof SignatureScheme, string][] = [
    ['ed25519', 'ed25519'],
    ['ecdsa_secp256r1_sha256', 'p256'],
    ['ecdsa_secp384r1_sha384', 'p384'],
    ['rsa_pss_rsae_sha256', 'rsa'],
    ['rsa_pss_rsae_sha384', 'rsa'],
    ['rsa_pss_rsae_sha512', 'rsa'],
    ['rsa_pkcs1_sha256', 'rsa'],
    ['rsa_pkcs1_sha384', 'rsa'],
    ['rsa_pkcs1_sha512', 'rsa'],
  ];
  for (const [name, keyName] of cases) {
    it(name, () => {
      const key = keys[keyName]!;
      const spki = encodeSpki(publicKeyOf(key));
      const msg = enc(`message for ${name}`);
      for (const signer of providers) {
        const sig = sign(SignatureScheme[name], key, msg, signer);
        for (const verifier of providers) {
          expect(
            verifySignature(SignatureScheme[name], spki, msg, sig, verifier),
            `${signer.name}->${verifier.name}`,
          ).toBe(true);
          const bad = sig.slice();
          bad[bad.length >> 1]! ^= 0x10;
          expect(verifySignature(SignatureScheme[name], spki, msg, bad, verifier)).toBe(false);
        }
      }
    });
  }

  it('a scheme that does not fit the key is illegal_parameter, not a false', () => {
    const spki = encodeSpki(publicKeyOf(keys.p256!));
    for (const p of providers) {
      const e = (() => {
        try {
          verifySignature(SignatureScheme.ed25519, spki, enc('x'), new Uint8Array(64), p);
        } catch (err) {
          return err;
        }
      })();
      expect(e).toBeInstanceOf(SignatureError);
      expect((e as SignatureError).alert).toBe('illegal_parameter');
      // TLS 1.3 binds the curve to the scheme (RFC 8446 §4.2.3).
      expect(() =>
        verifySignature(SignatureScheme.ecdsa_secp384r1_sha384, spki, enc('x'), new Uint8Array(8), p),
      ).toThrow(SignatureError);
      expect(() => sign(0x0201, keys.p256!, enc('x'), p)).toThrow(/unsupported signature scheme/);
    }
  });

  it('ECDSA with SHA-384 over a P-256 key (allowed in certificates) works both ways', () => {
    const alg = { kind: 'ecdsa', hash: 'sha384' } as const;
    const spki = encodeSpki(publicKeyOf(keys.p256!));
    for (const s of providers)
      for (const v of providers) {
        expect(verifyWith(alg, spki, enc('m'), signWith(alg, keys.p256!, enc('m'), s), v)).toBe(true);
      }
  });

  it('schemesForKey', () => {
    expect(schemesForKey(keys.p256!)).toEqual([0x0403]);
    expect(schemesForKey(keys.ed25519!)).toEqual([0x0807]);
    expect(schemesForKey(keys.rsa!)).toEqual([0x0804, 0x0805, 0x0806]);
  });

  it('malleability: both accept ECDSA high-S (as OpenSSL does), both refuse Ed25519 S >= L (RFC 8032 §5.1.7)', () => {
    const n = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
    const spki = encodeSpki(publicKeyOf(keys.p256!));
    const msg = enc('malleable?');
    const sig = sign(SignatureScheme.ecdsa_secp256r1_sha256, keys.p256!, msg, pureSignatures);
    const compact = ecdsaDerToCompact(sig, 32)!;
    const s = BigInt(`0x${Buffer.from(compact.subarray(32)).toString('hex')}`);
    const flipped = Uint8Array.from(Buffer.from((n - s).toString(16).padStart(64, '0'), 'hex'));
    const highS = ecdsaCompactToDer(Uint8Array.from([...compact.subarray(0, 32), ...flipped]));
    for (const p of providers) expect(verifySignature(0x0403, spki, msg, highS, p), p.name).toBe(true);

    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    const edSpki = encodeSpki(publicKeyOf(keys.ed25519!));
    const edSig = sign(SignatureScheme.ed25519, keys.ed25519!, msg, nodeSignatures);
    const sLe = BigInt(`0x${Buffer.from(edSig.subarray(32)).reverse().toString('hex')}`);
    const bumped = Buffer.from((sLe + L).toString(16).padStart(64, '0'), 'hex').reverse();
    const nonCanonical = Uint8Array.from([...edSig.subarray(0, 32), ...bumped]);
    for (const p of providers) {
      expect(verifySignature(0x0807, edSpki, msg, edSig, p)).toBe(true);
      expect(verifySignature(0x0807, edSpki, msg, nonCanonical, p), p.name).toBe(false);
    }
  });

  test.prop(
    [
      fc.constantFrom(...cases),
      fc.uint8Array({ maxLength: 64 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
      fc.integer({ min: -2, max: 2 }),
    ],
    { numRuns: 300 },
  )(
    'differential: node:crypto and pure agree on mutated, truncated and extended signatures',
    ([name, keyName], msg, edits, grow) => {
      const key = keys[keyName]!;
      const spki = encodeSpki(publicKeyOf(key));
      let sig = sign(SignatureScheme[name], key, msg, nodeSignatures);
      for (const [at, v] of edits) sig[at % sig.length] = v;
      if (grow < 0) sig = sig.subarray(0, sig.length + grow);
      if (grow > 0) sig = Uint8Array.from([...sig, ...new Uint8Array(grow)]);
      const a = verifySignature(SignatureScheme[name], spki, msg, sig, nodeSignatures);
      const b = verifySignature(SignatureScheme[name], spki, msg, sig, pureSignatures);
      expect(b).toBe(a);
    },
  );

  test.prop([fc.uint8Array({ maxLength: 300 }), fc.constantFrom(...cases)], { numRuns: 300 })(
    'arbitrary signature bytes verify false, never throw',
    (sig, [name, keyName]) => {
      const spki = encodeSpki(publicKeyOf(keys[keyName]!));
      for (const p of providers)
        expect(verifySignature(SignatureScheme[name], spki, enc('m'), sig, p)).toBe(false);
    },
  );
});

describe('interop with openssl', () => {
  const ssl = new OpensslDir();
  const made: Record<string, { cert: X509Certificate; key: PrivateKey }> = {};
  const kinds: Record<string, string[]> = {
    ed25519: ['-newkey', 'ed25519'],
    p256: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
    p384: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'],
    rsa: ['-newkey', 'rsa:2048'],
    rsapss: [
      '-newkey',
      'rsa:2048',
      '-sigopt',
      'rsa_padding_mode:pss',
      '-sigopt',
      'rsa_pss_saltlen:32',
      '-sha256',
    ],
  };
  beforeAll(() => {
    for (const [kind, args] of Object.entries(kinds)) {
      ssl.run(
        'req',
        '-x509',
        ...args,
        '-nodes',
        '-keyout',
        `${kind}.key`,
        '-out',
        `${kind}.crt`,
        '-subj',
        `/CN=${kind}`,
      );
      made[kind] = {
        cert: decodeCertificatesPem(ssl.readText(`${kind}.crt`))[0]!,
        key: decodePrivateKeyPem(ssl.readText(`${kind}.key`)),
      };
      ssl.run('pkey', '-in', `${kind}.key`, '-pubout', '-out', `${kind}.pub`);
    }
    ssl.write('msg', enc('the content a CertificateVerify covers, more or less'));
  });
  afterAll(() => ssl.remove());

  it('self-signed certificate signatures made by openssl verify (Ed25519, ECDSA P-256/P-384, RSA, RSA-PSS)', () => {
    for (const [kind, { cert }] of Object.entries(made)) {
      const alg = algorithmForCertificate(cert.signatureAlgorithm);
      for (const p of providers) {
        expect(
          verifyWith(alg, cert.subjectPublicKeyInfo, cert.tbsCertificate, cert.signatureValue, p),
          `${kind} ${p.name}`,
        ).toBe(true);
        const tbs = cert.tbsCertificate.slice();
        tbs[tbs.length - 3]! ^= 1;
        expect(verifyWith(alg, cert.subjectPublicKeyInfo, tbs, cert.signatureValue, p)).toBe(false);
      }
    }
    expect(algorithmForCertificate(made.rsapss!.cert.signatureAlgorithm)).toEqual({
      kind: 'rsa-pss',
      hash: 'sha256',
      saltLength: 32,
    });
  });

  const opensslSign: Record<string, [keyof typeof SignatureScheme, string[], string[]]> = {
    ed25519: ['ed25519', ['pkeyutl', '-sign', '-rawin'], ['pkeyutl', '-verify', '-rawin']],
    p256: ['ecdsa_secp256r1_sha256', ['dgst', '-sha256', '-sign'], ['dgst', '-sha256', '-verify']],
    rsa: [
      'rsa_pss_rsae_sha256',
      ['dgst', '-sha256', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:digest', '-sign'],
      ['dgst', '-sha256', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:digest', '-verify'],
    ],
    rsapss: [
      'rsa_pss_rsae_sha384',
      ['dgst', '-sha384', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:digest', '-sign'],
      ['dgst', '-sha384', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:digest', '-verify'],
    ],
  };
  for (const [kind, [scheme, signArgs, verifyArgs]] of Object.entries(opensslSign)) {
    it(`${scheme}: openssl signs, we verify; we sign, openssl verifies`, () => {
      const { key, cert } = made[kind]!;
      const msg = new Uint8Array(ssl.read('msg'));
      const keyArg = signArgs[0] === 'pkeyutl' ? '-inkey' : '';
      const signCmd = keyArg
        ? [...signArgs, '-inkey', `${kind}.key`, '-in', 'msg', '-out', `${kind}.sig`]
        : [...signArgs, `${kind}.key`, '-out', `${kind}.sig`, 'msg'];
      ssl.run(...signCmd);
      const theirs = new Uint8Array(ssl.read(`${kind}.sig`));
      for (const p of providers) {
        expect(verifySignature(SignatureScheme[scheme], cert.subjectPublicKeyInfo, msg, theirs, p)).toBe(
          true,
        );
      }
      for (const p of providers) {
        ssl.write(`${kind}.ours.sig`, sign(SignatureScheme[scheme], key, msg, p));
        const verifyCmd = keyArg
          ? [...verifyArgs, '-pubin', '-inkey', `${kind}.pub`, '-in', 'msg', '-sigfile', `${kind}.ours.sig`]
          : [...verifyArgs, `${kind}.pub`, '-signature', `${kind}.ours.sig`, 'msg'];
        const r = ssl.status(...verifyCmd);
        expect(r.out, p.name).toMatch(/Verified OK|Signature Verified Successfully/);
        expect(r.code).toBe(0);
      }
      // And openssl says no to a flipped byte of ours.
      const bad = sign(SignatureScheme[scheme], key, msg, pureSignatures);
      bad[5]! ^= 1;
      ssl.write(`${kind}.bad.sig`, bad);
      const verifyBad = keyArg
        ? [...verifyArgs, '-pubin', '-inkey', `${kind}.pub`, '-in', 'msg', '-sigfile', `${kind}.bad.sig`]
        : [...verifyArgs, `${kind}.pub`, '-signature', `${kind}.bad.sig`, 'msg'];
      expect(ssl.status(...verifyBad).code).not.toBe(0);
    });
  }

  it('keys we generate are read by openssl', () => {
    for (const type of ['ed25519', 'P-256', 'rsa2048'] as const) {
      const key = generateKey(type);
      ssl.write(`gen-${type}.key`, encodePrivateKeyPem(key));
      ssl.run('pkey', '-in', `gen-${type}.key`, '-pubout', '-outform', 'DER', '-out', `gen-${type}.spki`);
      expect(new Uint8Array(ssl.read(`gen-${type}.spki`))).toEqual(encodeSpki(publicKeyOf(key)));
      expect(ssl.run('pkey', '-in', `gen-${type}.key`, '-check', '-noout')).toMatch(/valid/i);
    }
    expect(encodePem('X', new Uint8Array(100)).split('\n')[1]!.length).toBe(64);
  });
});
