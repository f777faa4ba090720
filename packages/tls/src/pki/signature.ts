/**
 * Signatures for TLS 1.3 (RFC 8446 §4.2.3 SignatureScheme) and for certificate chains
 * (RFC 5280 §4.1.1.2, RFC 4055, RFC 5758, RFC 8410).
 *
 * Two interchangeable providers sit behind one seam:
 * - `nodeSignatures`: node:crypto (OpenSSL underneath); fast.
 * - `pureSignatures`: @noble/curves for Ed25519 and ECDSA, and RSA written here over
 *   bigint (RFC 8017 RSASP1/RSAVP1 with CRT, EMSA-PSS and EMSA-PKCS1-v1_5), so a reader can
 *   step through every byte of a signature check.
 *
 * `verifySignature`/`sign` take a TLS SignatureScheme code point; `verifyWith`/`signWith`
 * take a `SignatureAlgorithm`, which is also what certificate signature OIDs map to.
 */
import * as crypto from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256, p384 } from '@noble/curves/nist.js';
import { sha256, sha384, sha512 } from '@noble/hashes/sha2.js';
import { randomBytes as platformRandomBytes } from '@noble/hashes/utils.js';
import { ParseError } from '@stepwire/wire';
// One table of code points for the whole TLS package: the codec's (RFC 8446 §4.2.3).
import { SignatureScheme } from '../codec/common.ts';
import { bytesToBigInt, DerReader, der } from './der.ts';
import {
  decodePkcs8,
  encodePkcs8,
  generateKeyFrom,
  type KeyType,
  type PrivateKey,
  publicKeyOf,
} from './keys.ts';
import { OID } from './oids.ts';
import {
  type AlgorithmIdentifier,
  bigintToBytes,
  bitLength,
  decodeSpki,
  type PublicKey,
  type SubjectPublicKeyInfo,
} from './x509.ts';

export type SignatureSchemeName = keyof typeof SignatureScheme;

export function signatureSchemeName(code: number): string {
  const e = Object.entries(SignatureScheme).find(([, v]) => v === code);
  return e ? e[0] : `0x${code.toString(16).padStart(4, '0')}`;
}

/**
 * Schemes allowed in a TLS 1.3 CertificateVerify: RFC 8446 §4.4.3 excludes RSASSA-PKCS1-v1_5
 * (those code points may only appear for certificate signatures, §4.2.3).
 */
export const CERTIFICATE_VERIFY_SCHEMES: readonly number[] = [
  SignatureScheme.ed25519,
  SignatureScheme.ecdsa_secp256r1_sha256,
  SignatureScheme.ecdsa_secp384r1_sha384,
  SignatureScheme.rsa_pss_rsae_sha256,
  SignatureScheme.rsa_pss_rsae_sha384,
  SignatureScheme.rsa_pss_rsae_sha512,
];

export type SignatureHash = 'sha256' | 'sha384' | 'sha512';
const HASH_LEN: Record<SignatureHash, number> = { sha256: 32, sha384: 48, sha512: 64 };
const HASH_FN: Record<SignatureHash, (m: Uint8Array) => Uint8Array> = { sha256, sha384, sha512 };

/** What a signature is, independent of where it was named (TLS code point or certificate OID). */
export type SignatureAlgorithm =
  | { kind: 'ed25519' }
  /** `curve` set: the scheme binds the curve (TLS 1.3); unset: any supported curve (certificates). */
  | { kind: 'ecdsa'; hash: SignatureHash; curve?: 'P-256' | 'P-384' }
  | { kind: 'rsa-pss'; hash: SignatureHash; saltLength: number }
  | { kind: 'rsa-pkcs1'; hash: SignatureHash };

/** TLS alerts (RFC 8446 §6.2) a signature problem maps to. */
export class SignatureError extends Error {
  override readonly name = 'SignatureError';
  constructor(
    readonly alert: 'illegal_parameter' | 'unsupported_certificate' | 'bad_certificate' | 'internal_error',
    message: string,
  ) {
    super(message);
  }
}

export function algorithmForScheme(scheme: number): SignatureAlgorithm {
  switch (scheme) {
    case SignatureScheme.ed25519:
      return { kind: 'ed25519' };
    case SignatureScheme.ecdsa_secp256r1_sha256:
      return { kind: 'ecdsa', hash: 'sha256', curve: 'P-256' };
    case SignatureScheme.ecdsa_secp384r1_sha384:
      return { kind: 'ecdsa', hash: 'sha384', curve: 'P-384' };
    // RFC 8446 §4.2.3: PSS salt length equals the digest length.
    case SignatureScheme.rsa_pss_rsae_sha256:
      return { kind: 'rsa-pss', hash: 'sha256', saltLength: 32 };
    case SignatureScheme.rsa_pss_rsae_sha384:
      return { kind: 'rsa-pss', hash: 'sha384', saltLength: 48 };
    case SignatureScheme.rsa_pss_rsae_sha512:
      return { kind: 'rsa-pss', hash: 'sha512', saltLength: 64 };
    case SignatureScheme.rsa_pkcs1_sha256:
      return { kind: 'rsa-pkcs1', hash: 'sha256' };
    case SignatureScheme.rsa_pkcs1_sha384:
      return { kind: 'rsa-pkcs1', hash: 'sha384' };
    case SignatureScheme.rsa_pkcs1_sha512:
      return { kind: 'rsa-pkcs1', hash: 'sha512' };
    default:
      throw new SignatureError(
        'illegal_parameter',
        `unsupported signature scheme ${signatureSchemeName(scheme)}`,
      );
  }
}

const HASH_OF_OID: Record<string, SignatureHash> = {
  [OID.sha256]: 'sha256',
  [OID.sha384]: 'sha384',
  [OID.sha512]: 'sha512',
};

/** The algorithm a certificate's signatureAlgorithm names (RFC 4055, RFC 5758 §3.2, RFC 8410 §3). */
export function algorithmForCertificate(alg: AlgorithmIdentifier): SignatureAlgorithm {
  const unsupported = (): never => {
    throw new SignatureError(
      'unsupported_certificate',
      `unsupported certificate signature algorithm ${alg.oid}`,
    );
  };
  const noParamsOrNull = () => {
    // RFC 4055 §5: NULL parameters; tolerate absence as many verifiers do.
    if (
      alg.parameters &&
      !(alg.parameters.length === 2 && alg.parameters[0] === 5 && alg.parameters[1] === 0)
    ) {
      unsupported();
    }
  };
  switch (alg.oid) {
    case OID.sha256WithRSAEncryption:
      noParamsOrNull();
      return { kind: 'rsa-pkcs1', hash: 'sha256' };
    case OID.sha384WithRSAEncryption:
      noParamsOrNull();
      return { kind: 'rsa-pkcs1', hash: 'sha384' };
    case OID.sha512WithRSAEncryption:
      noParamsOrNull();
      return { kind: 'rsa-pkcs1', hash: 'sha512' };
    // RFC 5758 §3.2: ecdsa-with-SHA* parameters MUST be absent.
    case OID.ecdsaWithSHA256:
      if (alg.parameters) unsupported();
      return { kind: 'ecdsa', hash: 'sha256' };
    case OID.ecdsaWithSHA384:
      if (alg.parameters) unsupported();
      return { kind: 'ecdsa', hash: 'sha384' };
    case OID.ecdsaWithSHA512:
      if (alg.parameters) unsupported();
      return { kind: 'ecdsa', hash: 'sha512' };
    case OID.idEd25519:
      if (alg.parameters) unsupported();
      return { kind: 'ed25519' };
    case OID.rsassaPss:
      return pssParams(alg.parameters) ?? unsupported();
    default:
      return unsupported();
  }
}

// RFC 4055 §3.1 RSASSA-PSS-params. Only MGF1 with the same hash, trailerField 1, is supported.
function pssParams(params: Uint8Array | undefined): SignatureAlgorithm | undefined {
  if (!params) return undefined;
  try {
    const s = new DerReader(params).sequence('rsassaPssParams');
    let hash: SignatureHash | undefined;
    let mgfHash: SignatureHash | undefined;
    let saltLength = 20;
    const h = s.optionalExplicit(0, 'hashAlgorithm');
    if (h) hash = HASH_OF_OID[h.sequence('hashAlgorithm').oid('hashAlgorithm.algorithm')];
    const m = s.optionalExplicit(1, 'maskGenAlgorithm');
    if (m) {
      const ms = m.sequence('maskGenAlgorithm');
      if (ms.oid('maskGenAlgorithm.algorithm') !== OID.mgf1) return undefined;
      mgfHash = HASH_OF_OID[ms.sequence('mgf1.hash').oid('mgf1.hash.algorithm')];
    }
    const sl = s.optionalExplicit(2, 'saltLength');
    if (sl) saltLength = sl.smallInteger('saltLength', 0, 1024);
    const tf = s.optionalExplicit(3, 'trailerField');
    if (tf && tf.smallInteger('trailerField', 1, 1) !== 1) return undefined;
    s.end('rsassaPssParams');
    // SHA-1 defaults are not supported: both hashes must be named and equal.
    if (!hash || hash !== mgfHash) return undefined;
    return { kind: 'rsa-pss', hash, saltLength };
  } catch (e) {
    if (e instanceof ParseError) return undefined;
    throw e;
  }
}

/** The SignatureAlgorithm's name as X.509 AlgorithmIdentifier DER (for issuing). */
export function algorithmIdentifierFor(alg: SignatureAlgorithm): Uint8Array {
  switch (alg.kind) {
    case 'ed25519':
      return der.sequence(der.oid(OID.idEd25519));
    case 'ecdsa':
      return der.sequence(
        der.oid(
          { sha256: OID.ecdsaWithSHA256, sha384: OID.ecdsaWithSHA384, sha512: OID.ecdsaWithSHA512 }[alg.hash],
        ),
      );
    case 'rsa-pkcs1':
      return der.sequence(
        der.oid(
          {
            sha256: OID.sha256WithRSAEncryption,
            sha384: OID.sha384WithRSAEncryption,
            sha512: OID.sha512WithRSAEncryption,
          }[alg.hash],
        ),
        der.null(),
      );
    case 'rsa-pss': {
      const h = der.sequence(
        der.oid({ sha256: OID.sha256, sha384: OID.sha384, sha512: OID.sha512 }[alg.hash]),
      );
      return der.sequence(
        der.oid(OID.rsassaPss),
        der.sequence(
          der.explicit(0, h),
          der.explicit(1, der.sequence(der.oid(OID.mgf1), h)),
          der.explicit(2, der.integer(alg.saltLength)),
        ),
      );
    }
  }
}

/** Throws unless the key can make this kind of signature. */
function checkKeyFits(alg: SignatureAlgorithm, key: PublicKey): void {
  const ok =
    (alg.kind === 'ed25519' && key.type === 'ed25519') ||
    (alg.kind === 'ecdsa' && key.type === 'ec' && (alg.curve === undefined || alg.curve === key.curve)) ||
    ((alg.kind === 'rsa-pss' || alg.kind === 'rsa-pkcs1') && key.type === 'rsa');
  if (!ok) {
    const what = key.type === 'ec' ? `${key.curve} key` : `${key.type} key`;
    throw new SignatureError('illegal_parameter', `${describeAlgorithm(alg)} cannot be made with an ${what}`);
  }
}

export function describeAlgorithm(alg: SignatureAlgorithm): string {
  switch (alg.kind) {
    case 'ed25519':
      return 'Ed25519';
    case 'ecdsa':
      return `ECDSA${alg.curve ? ` ${alg.curve}` : ''} ${alg.hash.toUpperCase()}`;
    case 'rsa-pss':
      return `RSA-PSS ${alg.hash.toUpperCase()}`;
    case 'rsa-pkcs1':
      return `RSA PKCS#1 v1.5 ${alg.hash.toUpperCase()}`;
  }
}

/** The schemes a key can sign with in a TLS 1.3 CertificateVerify, preferred first. */
export function schemesForKey(key: PublicKey | PrivateKey): number[] {
  if (key.type === 'ed25519') return [SignatureScheme.ed25519];
  if (key.type === 'ec') {
    return [
      key.curve === 'P-256' ? SignatureScheme.ecdsa_secp256r1_sha256 : SignatureScheme.ecdsa_secp384r1_sha384,
    ];
  }
  if (key.type === 'rsa') {
    return [
      SignatureScheme.rsa_pss_rsae_sha256,
      SignatureScheme.rsa_pss_rsae_sha384,
      SignatureScheme.rsa_pss_rsae_sha512,
    ];
  }
  return [];
}

/** A place signatures are computed: node:crypto or pure TypeScript. */
export interface SignatureProvider {
  readonly name: string;
  /** False for a signature that does not verify (including malformed ones). */
  verify(
    alg: SignatureAlgorithm,
    spki: SubjectPublicKeyInfo,
    message: Uint8Array,
    signature: Uint8Array,
  ): boolean;
  sign(alg: SignatureAlgorithm, key: PrivateKey, message: Uint8Array): Uint8Array;
  /**
   * Random bytes for new keys, certificate serial numbers and RSA-PSS salts. Optional for
   * providers written elsewhere; the node:crypto provider's is used when absent.
   */
  randomBytes?(n: number): Uint8Array;
  /** A fresh RSA key (prime generation). Optional as above. */
  generateRsaKey?(bits: 2048 | 3072): PrivateKey;
}

// ---------- ECDSA-Sig-Value (RFC 5480 §2.2 / RFC 3279 §2.2.3) ----------

/** DER ECDSA-Sig-Value to r||s of the curve's size; undefined if malformed. */
export function ecdsaDerToCompact(sig: Uint8Array, size: number): Uint8Array | undefined {
  try {
    const top = new DerReader(sig);
    const s = top.sequence('ecdsaSigValue');
    top.end('ecdsaSigValue');
    const r = s.unsignedIntegerBytes('r');
    const ss = s.unsignedIntegerBytes('s');
    s.end('ecdsaSigValue');
    if (r.length > size || ss.length > size) return undefined;
    const out = new Uint8Array(2 * size);
    out.set(r, size - r.length);
    out.set(ss, 2 * size - ss.length);
    return out;
  } catch (e) {
    if (e instanceof ParseError) return undefined;
    throw e;
  }
}

export function ecdsaCompactToDer(compact: Uint8Array): Uint8Array {
  const size = compact.length / 2;
  return der.sequence(
    der.unsignedInteger(compact.subarray(0, size)),
    der.unsignedInteger(compact.subarray(size)),
  );
}

// ---------- node:crypto ----------

// KeyObjects are cached per parsed key: a server signs with the same key on every handshake.
const publicKeyObjects = new WeakMap<SubjectPublicKeyInfo, crypto.KeyObject>();
const privateKeyObjects = new WeakMap<PrivateKey, crypto.KeyObject>();

function nodePublicKey(spki: SubjectPublicKeyInfo): crypto.KeyObject {
  let k = publicKeyObjects.get(spki);
  if (!k) {
    k = crypto.createPublicKey({ key: Buffer.from(spki.raw), format: 'der', type: 'spki' });
    publicKeyObjects.set(spki, k);
  }
  return k;
}
function nodePrivateKey(key: PrivateKey): crypto.KeyObject {
  let k = privateKeyObjects.get(key);
  if (!k) {
    k = crypto.createPrivateKey({ key: Buffer.from(encodePkcs8(key)), format: 'der', type: 'pkcs8' });
    privateKeyObjects.set(key, k);
  }
  return k;
}

function nodeOptions(
  alg: SignatureAlgorithm,
  key: crypto.KeyObject,
): { hash: string | null; key: crypto.KeyLike | crypto.SignKeyObjectInput | crypto.VerifyKeyObjectInput } {
  switch (alg.kind) {
    case 'ed25519':
      return { hash: null, key };
    case 'ecdsa':
      return { hash: alg.hash, key: { key, dsaEncoding: 'der' } };
    case 'rsa-pss':
      return {
        hash: alg.hash,
        key: { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: alg.saltLength },
      };
    case 'rsa-pkcs1':
      return { hash: alg.hash, key: { key, padding: crypto.constants.RSA_PKCS1_PADDING } };
  }
}

export const nodeSignatures: SignatureProvider = {
  name: 'node:crypto',
  verify(alg, spki, message, signature) {
    checkKeyFits(alg, spki.publicKey);
    let keyObject: crypto.KeyObject;
    try {
      keyObject = nodePublicKey(spki);
    } catch {
      throw new SignatureError('bad_certificate', 'public key rejected by node:crypto');
    }
    const { hash, key } = nodeOptions(alg, keyObject);
    try {
      return crypto.verify(hash, message, key as crypto.VerifyKeyObjectInput, signature);
    } catch {
      // OpenSSL reports some malformed signatures (bad DER, wrong length) as errors: they do not verify.
      return false;
    }
  },
  sign(alg, privateKey, message) {
    checkKeyFits(alg, publicKeyOf(privateKey));
    const { hash, key } = nodeOptions(alg, nodePrivateKey(privateKey));
    return new Uint8Array(crypto.sign(hash, message, key as crypto.SignKeyObjectInput));
  },
  randomBytes(n) {
    return new Uint8Array(crypto.randomBytes(n));
  },
  // RSA prime generation is OpenSSL's, imported through PKCS#8.
  generateRsaKey(bits) {
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: bits, publicExponent: 65537 });
    return decodePkcs8(new Uint8Array(privateKey.export({ format: 'der', type: 'pkcs8' })));
  },
};

// ---------- pure TypeScript ----------

/** b^e mod m by square-and-multiply. */
export function modPow(b: bigint, e: bigint, m: bigint): bigint {
  let result = 1n;
  b %= m;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return result;
}

/** Largest RSA modulus either provider will verify with. */
export const MAX_RSA_BITS = 16384;

const os2ip = bytesToBigInt; // RFC 8017 §4.2

// RFC 8017 Appendix B.2.1
function mgf1(hash: SignatureHash, seed: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const hLen = HASH_LEN[hash];
  const block = new Uint8Array(seed.length + 4);
  block.set(seed);
  for (let counter = 0, at = 0; at < length; counter++, at += hLen) {
    new DataView(block.buffer).setUint32(seed.length, counter);
    out.set(HASH_FN[hash](block).subarray(0, Math.min(hLen, length - at)), at);
  }
  return out;
}

// RFC 8017 §9.1.1 EMSA-PSS-ENCODE
function emsaPssEncode(
  hash: SignatureHash,
  message: Uint8Array,
  emBits: number,
  salt: Uint8Array,
): Uint8Array {
  const hLen = HASH_LEN[hash];
  const emLen = Math.ceil(emBits / 8);
  if (emLen < hLen + salt.length + 2) throw new SignatureError('internal_error', 'RSA key too small for PSS');
  const mHash = HASH_FN[hash](message);
  const mPrime = new Uint8Array(8 + hLen + salt.length);
  mPrime.set(mHash, 8);
  mPrime.set(salt, 8 + hLen);
  const h = HASH_FN[hash](mPrime);
  const db = new Uint8Array(emLen - hLen - 1);
  db[emLen - salt.length - hLen - 2] = 0x01;
  db.set(salt, emLen - salt.length - hLen - 1);
  const mask = mgf1(hash, h, db.length);
  for (let i = 0; i < db.length; i++) db[i]! ^= mask[i]!;
  db[0]! &= 0xff >> (8 * emLen - emBits);
  const em = new Uint8Array(emLen);
  em.set(db);
  em.set(h, db.length);
  em[emLen - 1] = 0xbc;
  return em;
}

// RFC 8017 §9.1.2 EMSA-PSS-VERIFY
function emsaPssVerify(
  hash: SignatureHash,
  message: Uint8Array,
  em: Uint8Array,
  emBits: number,
  sLen: number,
): boolean {
  const hLen = HASH_LEN[hash];
  const emLen = Math.ceil(emBits / 8);
  if (em.length !== emLen || emLen < hLen + sLen + 2) return false;
  if (em[emLen - 1] !== 0xbc) return false;
  const maskedDb = em.subarray(0, emLen - hLen - 1);
  const h = em.subarray(emLen - hLen - 1, emLen - 1);
  const topMask = (0xff << (8 - (8 * emLen - emBits))) & 0xff;
  if ((maskedDb[0]! & topMask) !== 0) return false;
  const dbMask = mgf1(hash, h, maskedDb.length);
  const db = maskedDb.map((b, i) => b ^ dbMask[i]!);
  db[0]! &= 0xff >> (8 * emLen - emBits);
  const psLen = emLen - hLen - sLen - 2;
  for (let i = 0; i < psLen; i++) if (db[i] !== 0) return false;
  if (db[psLen] !== 0x01) return false;
  const salt = db.subarray(db.length - sLen);
  const mPrime = new Uint8Array(8 + hLen + sLen);
  mPrime.set(HASH_FN[hash](message), 8);
  mPrime.set(salt, 8 + hLen);
  return timingSafeEqual(HASH_FN[hash](mPrime), h);
}

// RFC 8017 §9.2 EMSA-PKCS1-v1_5-ENCODE (DigestInfo prefixes from its note 1).
const DIGEST_INFO: Record<SignatureHash, string> = {
  sha256: '3031300d060960864801650304020105000420',
  sha384: '3041300d060960864801650304020205000430',
  sha512: '3051300d060960864801650304020305000440',
};
function emsaPkcs1Encode(hash: SignatureHash, message: Uint8Array, emLen: number): Uint8Array {
  const t = Buffer.concat([Buffer.from(DIGEST_INFO[hash], 'hex'), HASH_FN[hash](message)]);
  if (emLen < t.length + 11) throw new SignatureError('internal_error', 'RSA key too small for PKCS#1 v1.5');
  const em = new Uint8Array(emLen).fill(0xff);
  em[0] = 0x00;
  em[1] = 0x01;
  em[emLen - t.length - 1] = 0x00;
  em.set(t, emLen - t.length);
  return em;
}

function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

function rsaVerifyPure(
  alg: SignatureAlgorithm,
  key: Extract<PublicKey, { type: 'rsa' }>,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  // Bounds on the work a hostile key can cause; OpenSSL refuses the same (OPENSSL_RSA_MAX_MODULUS_BITS, RSA_R_BAD_E_VALUE).
  if (key.bits > MAX_RSA_BITS || bitLength(key.e) > 64) return false;
  const k = Math.ceil(key.bits / 8);
  // RFC 8017 §8.1.2 step 1 / §8.2.2 step 1: the signature is exactly k octets.
  if (signature.length !== k) return false;
  const s = os2ip(signature);
  if (s >= key.n) return false;
  const m = modPow(s, key.e, key.n); // RSAVP1, §5.2.2
  if (alg.kind === 'rsa-pss') {
    const emBits = key.bits - 1;
    const emLen = Math.ceil(emBits / 8);
    return emsaPssVerify(alg.hash, message, bigintToBytes(m, emLen), emBits, alg.saltLength);
  }
  if (alg.kind !== 'rsa-pkcs1') return false;
  return timingSafeEqual(bigintToBytes(m, k), emsaPkcs1Encode(alg.hash, message, k));
}

// RFC 8017 §5.2.1 RSASP1, second form (CRT), checked against RSAVP1 to catch faults.
function rsaSignPure(
  alg: SignatureAlgorithm,
  key: Extract<PrivateKey, { type: 'rsa' }>,
  message: Uint8Array,
): Uint8Array {
  const bits = key.n.toString(2).length;
  const k = Math.ceil(bits / 8);
  let em: Uint8Array;
  if (alg.kind === 'rsa-pss') {
    em = emsaPssEncode(alg.hash, message, bits - 1, platformRandomBytes(alg.saltLength));
  } else if (alg.kind === 'rsa-pkcs1') {
    em = emsaPkcs1Encode(alg.hash, message, k);
  } else {
    throw new SignatureError('internal_error', 'not an RSA algorithm');
  }
  const m = os2ip(em);
  const s1 = modPow(m, key.dp, key.p);
  const s2 = modPow(m, key.dq, key.q);
  const h = (((s1 - s2) % key.p) + key.p) % key.p;
  const s = s2 + key.q * ((key.qi * h) % key.p);
  if (modPow(s, key.e, key.n) !== m)
    throw new SignatureError('internal_error', 'RSA signature self-check failed');
  return bigintToBytes(s, k);
}

const CURVES = { 'P-256': { curve: p256, size: 32 }, 'P-384': { curve: p384, size: 48 } } as const;

export const pureSignatures: SignatureProvider = {
  name: 'pure',
  verify(alg, spki, message, signature) {
    const key = spki.publicKey;
    checkKeyFits(alg, key);
    try {
      if (alg.kind === 'ed25519' && key.type === 'ed25519') {
        // RFC 8032 §5.1.7 strict decoding (not ZIP-215), as OpenSSL does.
        return ed25519.verify(signature, message, key.key, { zip215: false });
      }
      if (alg.kind === 'ecdsa' && key.type === 'ec') {
        const { curve, size } = CURVES[key.curve];
        const compact = ecdsaDerToCompact(signature, size);
        if (!compact) return false;
        // The digest is computed here so any SHA-2 pairs with any curve (RFC 5758 / FIPS 186-4 §6.4 truncation).
        return curve.verify(compact, HASH_FN[alg.hash](message), key.point, { prehash: false, lowS: false });
      }
      if (key.type === 'rsa') return rsaVerifyPure(alg, key, message, signature);
    } catch (e) {
      if (e instanceof SignatureError) throw e;
      // noble throws on points off the curve and out-of-range scalars: such signatures do not verify.
      return false;
    }
    return false;
  },
  sign(alg, privateKey, message) {
    checkKeyFits(alg, publicKeyOf(privateKey));
    if (alg.kind === 'ed25519' && privateKey.type === 'ed25519')
      return ed25519.sign(message, privateKey.seed);
    if (alg.kind === 'ecdsa' && privateKey.type === 'ec') {
      const { curve } = CURVES[privateKey.curve];
      const compact = curve.sign(HASH_FN[alg.hash](message), privateKey.d, { prehash: false });
      return ecdsaCompactToDer(compact);
    }
    if (privateKey.type === 'rsa') return rsaSignPure(alg, privateKey, message);
    throw new SignatureError('internal_error', 'key and algorithm do not fit');
  },
  // The platform CSPRNG (WebCrypto getRandomValues), as noble uses it.
  randomBytes(n) {
    return platformRandomBytes(n);
  },
  // Prime generation in pure TypeScript would take seconds per key: OpenSSL's, as node:crypto's provider.
  generateRsaKey(bits) {
    return nodeSignatures.generateRsaKey?.(bits) ?? unreachable();
  },
};

function unreachable(): never {
  throw new SignatureError('internal_error', 'no RSA key generation');
}

/** Random bytes from `provider`, or from the node:crypto provider when it has none. */
export function randomBytesFrom(provider: SignatureProvider, n: number): Uint8Array {
  return provider.randomBytes ? provider.randomBytes(n) : new Uint8Array(crypto.randomBytes(n));
}

/**
 * A fresh key pair (see generateKeyFrom in keys.ts) whose randomness and RSA primes come from
 * `provider` (the default one when none is given).
 */
export function generateKey(type: KeyType, provider: SignatureProvider = defaultProvider): PrivateKey {
  return generateKeyFrom(type, {
    randomBytes: (n) => randomBytesFrom(provider, n),
    generateRsaKey: (bits) =>
      provider.generateRsaKey?.(bits) ?? nodeSignatures.generateRsaKey?.(bits) ?? unreachable(),
  });
}

let defaultProvider: SignatureProvider = nodeSignatures;
/** Chooses the provider `verifySignature`/`sign` use when none is passed (node:crypto at start). */
export function setDefaultSignatureProvider(p: SignatureProvider): void {
  defaultProvider = p;
}
export function getDefaultSignatureProvider(): SignatureProvider {
  return defaultProvider;
}

function asSpki(spki: Uint8Array | SubjectPublicKeyInfo): SubjectPublicKeyInfo {
  if (!(spki instanceof Uint8Array)) return spki;
  try {
    return decodeSpki(spki);
  } catch (e) {
    if (e instanceof ParseError)
      throw new SignatureError('bad_certificate', `malformed public key: ${e.message}`);
    throw e;
  }
}

/**
 * Verifies `signature` over `message` under the TLS SignatureScheme `scheme` with the key in
 * `spki` (DER bytes or parsed). Returns false if the signature does not verify; throws
 * SignatureError (alert 'illegal_parameter') if the scheme is unknown or does not fit the key.
 */
export function verifySignature(
  scheme: number,
  spki: Uint8Array | SubjectPublicKeyInfo,
  message: Uint8Array,
  signature: Uint8Array,
  provider: SignatureProvider = defaultProvider,
): boolean {
  return provider.verify(algorithmForScheme(scheme), asSpki(spki), message, signature);
}

/** Signs `message` under the TLS SignatureScheme `scheme`. */
export function sign(
  scheme: number,
  privateKey: PrivateKey,
  message: Uint8Array,
  provider: SignatureProvider = defaultProvider,
): Uint8Array {
  return provider.sign(algorithmForScheme(scheme), privateKey, message);
}

export function verifyWith(
  alg: SignatureAlgorithm,
  spki: Uint8Array | SubjectPublicKeyInfo,
  message: Uint8Array,
  signature: Uint8Array,
  provider: SignatureProvider = defaultProvider,
): boolean {
  return provider.verify(alg, asSpki(spki), message, signature);
}

export function signWith(
  alg: SignatureAlgorithm,
  privateKey: PrivateKey,
  message: Uint8Array,
  provider: SignatureProvider = defaultProvider,
): Uint8Array {
  return provider.sign(alg, privateKey, message);
}

/** RFC 8446 §4.4.3: the content a CertificateVerify signature covers. */
export function certificateVerifyContent(side: 'server' | 'client', transcriptHash: Uint8Array): Uint8Array {
  const context = `TLS 1.3, ${side} CertificateVerify`;
  const out = new Uint8Array(64 + context.length + 1 + transcriptHash.length);
  out.fill(0x20, 0, 64);
  for (let i = 0; i < context.length; i++) out[64 + i] = context.charCodeAt(i);
  out[64 + context.length] = 0;
  out.set(transcriptHash, 64 + context.length + 1);
  return out;
}
