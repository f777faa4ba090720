/**
 * Private keys: PKCS#8 (RFC 5208 / RFC 5958) for Ed25519 (RFC 8410), EC (RFC 5915 inside)
 * and RSA (RFC 8017 inside); SEC1 'EC PRIVATE KEY' (RFC 5915); PKCS#1 'RSA PRIVATE KEY'
 * (RFC 8017 Appendix A.1.2). Keys are plain data; the signature providers turn them into
 * whatever their library wants.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256, p384 } from '@noble/curves/nist.js';
import { ParseError } from '@stepwire/wire';
import { bytesToBigInt, DerReader, der } from './der.ts';
import { OID } from './oids.ts';
import { bigintToBytes, decodePem, encodePem, type PublicKey } from './x509.ts';

export type PrivateKey =
  | { type: 'ed25519'; seed: Uint8Array; publicKey: Uint8Array }
  | { type: 'ec'; curve: 'P-256' | 'P-384'; d: Uint8Array; publicKey: Uint8Array }
  | {
      type: 'rsa';
      n: bigint;
      e: bigint;
      d: bigint;
      p: bigint;
      q: bigint;
      dp: bigint;
      dq: bigint;
      qi: bigint;
    };

function ecPublic(curve: 'P-256' | 'P-384', d: Uint8Array): Uint8Array {
  return (curve === 'P-256' ? p256 : p384).getPublicKey(d, false);
}

/** The public half of a private key. */
export function publicKeyOf(key: PrivateKey): PublicKey {
  switch (key.type) {
    case 'ed25519':
      return { type: 'ed25519', key: key.publicKey };
    case 'ec':
      return { type: 'ec', curve: key.curve, point: key.publicKey };
    case 'rsa':
      return { type: 'rsa', n: key.n, e: key.e, bits: key.n.toString(2).length };
  }
}

/** `given` (SEC1 §2.3.3, compressed or not) is the uncompressed point `derived`. */
function samePoint(given: Uint8Array, derived: Uint8Array, size: number): boolean {
  const x = derived.subarray(1, 1 + size);
  if (given[0] === 0x04) return Buffer.compare(Buffer.from(given), Buffer.from(derived)) === 0;
  if (given.length !== 1 + size || (given[0] !== 0x02 && given[0] !== 0x03)) return false;
  const odd = (derived[derived.length - 1]! & 1) === 1;
  return Buffer.compare(Buffer.from(given.subarray(1)), Buffer.from(x)) === 0 && odd === (given[0] === 0x03);
}

// RFC 5915 §3: ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING, [0] parameters, [1] publicKey }
function readEcPrivateKey(r: DerReader, curveFromOuter: 'P-256' | 'P-384' | undefined): PrivateKey {
  const s = r.sequence('ecPrivateKey');
  s.smallInteger('ecPrivateKey.version', 1, 1);
  const dAt = s.offset;
  const d = s.octetString('ecPrivateKey.privateKey');
  let curve = curveFromOuter;
  const params = s.optionalExplicit(0, 'ecPrivateKey.parameters');
  if (params) {
    const oid = params.oid('ecPrivateKey.parameters.namedCurve');
    const c = oid === OID.prime256v1 ? 'P-256' : oid === OID.secp384r1 ? 'P-384' : undefined;
    if (!c) params.fail('ecPrivateKey.parameters', `unsupported curve ${oid}`);
    if (curve && c !== curve) params.fail('ecPrivateKey.parameters', 'curve differs from the algorithm');
    curve = c;
  }
  const pub = s.optionalExplicit(1, 'ecPrivateKey.publicKey');
  let publicKey: Uint8Array | undefined;
  if (pub) publicKey = pub.bitStringBytes('ecPrivateKey.publicKey');
  s.end('ecPrivateKey');
  if (!curve) return s.fail('ecPrivateKey', 'no curve named', dAt);
  const size = curve === 'P-256' ? 32 : 48;
  if (d.length !== size) s.fail('ecPrivateKey.privateKey', `${d.length} bytes for ${curve}`, dAt);
  let derived: Uint8Array;
  try {
    derived = ecPublic(curve, d);
  } catch {
    return s.fail('ecPrivateKey.privateKey', 'scalar out of range', dAt);
  }
  if (publicKey && !samePoint(publicKey, derived, size)) {
    s.fail('ecPrivateKey.publicKey', 'public key does not match the private key', dAt);
  }
  return { type: 'ec', curve, d, publicKey: derived };
}

// RFC 8017 Appendix A.1.2 (two-prime only)
function readRsaPrivateKey(r: DerReader): PrivateKey {
  const s = r.sequence('rsaPrivateKey');
  s.smallInteger('rsaPrivateKey.version', 0, 0);
  const int = (f: string) => bytesToBigInt(s.unsignedIntegerBytes(`rsaPrivateKey.${f}`));
  const key: PrivateKey = {
    type: 'rsa',
    n: int('modulus'),
    e: int('publicExponent'),
    d: int('privateExponent'),
    p: int('prime1'),
    q: int('prime2'),
    dp: int('exponent1'),
    dq: int('exponent2'),
    qi: int('coefficient'),
  };
  s.end('rsaPrivateKey');
  if (key.p * key.q !== key.n) s.fail('rsaPrivateKey', 'p * q != n');
  return key;
}

/** PKCS#8 PrivateKeyInfo / OneAsymmetricKey (RFC 5958 §2). */
export function decodePkcs8(bytes: Uint8Array): PrivateKey {
  const top = new DerReader(bytes);
  const s = top.sequence('privateKeyInfo');
  top.end('privateKeyInfo');
  s.smallInteger('privateKeyInfo.version', 0, 1);
  const alg = s.sequence('privateKeyInfo.privateKeyAlgorithm');
  const oid = alg.oid('privateKeyInfo.privateKeyAlgorithm.algorithm');
  let key: PrivateKey;
  switch (oid) {
    case OID.idEd25519: {
      alg.end('privateKeyInfo.privateKeyAlgorithm');
      // RFC 8410 §7: CurvePrivateKey ::= OCTET STRING, wrapped in the privateKey OCTET STRING.
      const inner = s.octetString('privateKeyInfo.privateKey');
      const r = new DerReader(inner);
      const seed = r.octetString('curvePrivateKey');
      r.end('curvePrivateKey');
      if (seed.length !== 32) s.fail('curvePrivateKey', `Ed25519 seed of ${seed.length} bytes`);
      key = { type: 'ed25519', seed, publicKey: ed25519.getPublicKey(seed) };
      break;
    }
    case OID.idEcPublicKey: {
      const curveOid = alg.oid('privateKeyInfo.privateKeyAlgorithm.namedCurve');
      alg.end('privateKeyInfo.privateKeyAlgorithm');
      const curve = curveOid === OID.prime256v1 ? 'P-256' : curveOid === OID.secp384r1 ? 'P-384' : undefined;
      if (!curve) s.fail('privateKeyInfo.privateKeyAlgorithm', `unsupported curve ${curveOid}`);
      key = readEcPrivateKey(new DerReader(s.octetString('privateKeyInfo.privateKey')), curve);
      break;
    }
    case OID.rsaEncryption: {
      if (!alg.atEnd) alg.null('privateKeyInfo.privateKeyAlgorithm.parameters');
      alg.end('privateKeyInfo.privateKeyAlgorithm');
      key = readRsaPrivateKey(new DerReader(s.octetString('privateKeyInfo.privateKey')));
      break;
    }
    default:
      return s.fail('privateKeyInfo.privateKeyAlgorithm', `unsupported key algorithm ${oid}`);
  }
  // RFC 5958: optional attributes [0] and publicKey [1] may follow; they add nothing we need.
  s.optionalImplicit(0, 'privateKeyInfo.attributes', true);
  s.optionalImplicit(1, 'privateKeyInfo.publicKey', false);
  s.end('privateKeyInfo');
  return key;
}

export function decodeSec1(bytes: Uint8Array): PrivateKey {
  const r = new DerReader(bytes);
  const k = readEcPrivateKey(r, undefined);
  r.end('ecPrivateKey');
  return k;
}

export function decodePkcs1(bytes: Uint8Array): PrivateKey {
  const r = new DerReader(bytes);
  const k = readRsaPrivateKey(r);
  r.end('rsaPrivateKey');
  return k;
}

/** The first private key in a PEM text: 'PRIVATE KEY', 'EC PRIVATE KEY' or 'RSA PRIVATE KEY'. */
export function decodePrivateKeyPem(text: string): PrivateKey {
  for (const b of decodePem(text)) {
    if (b.label === 'PRIVATE KEY') return decodePkcs8(b.der);
    if (b.label === 'EC PRIVATE KEY') return decodeSec1(b.der);
    if (b.label === 'RSA PRIVATE KEY') return decodePkcs1(b.der);
  }
  throw new ParseError('pem', 'PRIVATE KEY', 0, 'no unencrypted private key block');
}

function rsaPrivateKeyDer(k: Extract<PrivateKey, { type: 'rsa' }>): Uint8Array {
  const u = (v: bigint) => der.unsignedInteger(bigintToBytes(v));
  return der.sequence(der.integer(0), u(k.n), u(k.e), u(k.d), u(k.p), u(k.q), u(k.dp), u(k.dq), u(k.qi));
}

/** SEC1 ECPrivateKey with the public key included (what openssl writes). */
function ecPrivateKeyDer(k: Extract<PrivateKey, { type: 'ec' }>, withCurve: boolean): Uint8Array {
  const curve = k.curve === 'P-256' ? OID.prime256v1 : OID.secp384r1;
  return der.sequence(
    der.integer(1),
    der.octetString(k.d),
    ...(withCurve ? [der.explicit(0, der.oid(curve))] : []),
    der.explicit(1, der.bitString(k.publicKey)),
  );
}

export function encodePkcs8(key: PrivateKey): Uint8Array {
  switch (key.type) {
    case 'ed25519':
      return der.sequence(
        der.integer(0),
        der.sequence(der.oid(OID.idEd25519)),
        der.octetString(der.octetString(key.seed)),
      );
    case 'ec':
      return der.sequence(
        der.integer(0),
        der.sequence(
          der.oid(OID.idEcPublicKey),
          der.oid(key.curve === 'P-256' ? OID.prime256v1 : OID.secp384r1),
        ),
        der.octetString(ecPrivateKeyDer(key, false)),
      );
    case 'rsa':
      return der.sequence(
        der.integer(0),
        der.sequence(der.oid(OID.rsaEncryption), der.null()),
        der.octetString(rsaPrivateKeyDer(key)),
      );
  }
}

export function encodeSec1(key: Extract<PrivateKey, { type: 'ec' }>): Uint8Array {
  return ecPrivateKeyDer(key, true);
}
export function encodePkcs1(key: Extract<PrivateKey, { type: 'rsa' }>): Uint8Array {
  return rsaPrivateKeyDer(key);
}

/** PKCS#8 'PRIVATE KEY' PEM. */
export function encodePrivateKeyPem(key: PrivateKey): string {
  return encodePem('PRIVATE KEY', encodePkcs8(key));
}

/** Ed25519 key from a 32-byte seed. */
export function ed25519KeyFromSeed(seed: Uint8Array): PrivateKey {
  return { type: 'ed25519', seed: seed.slice(), publicKey: ed25519.getPublicKey(seed) };
}
/** EC key from its scalar. */
export function ecKeyFromScalar(curve: 'P-256' | 'P-384', d: Uint8Array): PrivateKey {
  return { type: 'ec', curve, d: d.slice(), publicKey: ecPublic(curve, d) };
}

export type KeyType = 'ed25519' | 'P-256' | 'P-384' | 'rsa2048' | 'rsa3072';

/**
 * A fresh key pair, from a source of randomness and RSA key generation — a signature
 * provider (signature.ts), so that no key material comes from a library this module names.
 * Ed25519 keys are 32 random bytes (RFC 8032 §5.1.5); EC scalars are mapped from 1.5 times
 * their length of random bytes without modulo bias (FIPS 186-5 §A.2.1, noble's
 * randomSecretKey); RSA primes are the source's business.
 */
export function generateKeyFrom(type: KeyType, source: KeySource): PrivateKey {
  switch (type) {
    case 'ed25519':
      return ed25519KeyFromSeed(ed25519.utils.randomSecretKey(source.randomBytes(32)));
    case 'P-256':
      return ecKeyFromScalar('P-256', p256.utils.randomSecretKey(source.randomBytes(48)));
    case 'P-384':
      return ecKeyFromScalar('P-384', p384.utils.randomSecretKey(source.randomBytes(72)));
    case 'rsa2048':
      return source.generateRsaKey(2048);
    case 'rsa3072':
      return source.generateRsaKey(3072);
  }
}

/** Where fresh keys come from (a SignatureProvider's randomBytes and generateRsaKey). */
export interface KeySource {
  randomBytes(n: number): Uint8Array;
  generateRsaKey(bits: 2048 | 3072): PrivateKey;
}
