import {
  createCipheriv,
  createDecipheriv,
  createECDH,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  diffieHellman,
  generateKeyPairSync,
  type Hash,
  type KeyObject,
  randomBytes,
  randomFillSync,
} from 'node:crypto';
import {
  AEAD_KEY_LENGTH,
  AEAD_TAG_LENGTH,
  type Aead,
  type AeadName,
  type CryptoProvider,
  type GroupName,
  type HashName,
  isAllZero,
  type KeyPair,
  KeyShareError,
  PUBLIC_KEY_LENGTH,
  type RunningHash,
} from './provider.ts';

const CIPHER: Record<AeadName, 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305'> = {
  AES_128_GCM: 'aes-128-gcm',
  AES_256_GCM: 'aes-256-gcm',
  CHACHA20_POLY1305: 'chacha20-poly1305',
};

const u8 = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

function nodeAead(name: AeadName, key: Uint8Array): Aead {
  if (key.length !== AEAD_KEY_LENGTH[name])
    throw new RangeError(`${name} needs a ${AEAD_KEY_LENGTH[name]}-byte key`);
  const alg = CIPHER[name] as 'aes-128-gcm';
  // One KeyObject per traffic key: createCipheriv with a KeyObject skips copying and
  // validating raw key bytes on every record.
  const k = createSecretKey(key);
  // OpenSSL's EVP interface takes the nonce only at init, and node offers no re-init: one
  // cipher context per record is the cheapest correct way to set a new nonce.
  const sealInto = (
    nonce: Uint8Array,
    aad: Uint8Array,
    plaintext: Uint8Array,
    trailer: Uint8Array,
    out: Uint8Array,
    at: number,
  ): void => {
    // No options: GCM's and ChaCha20-Poly1305's tag is 16 bytes by default, and the plaintext
    // length matters to CCM only; validating them per record showed in profiles.
    const c = createCipheriv(alg, k, nonce);
    c.setAAD(aad);
    // GCM and ChaCha20-Poly1305 are stream modes: update returns exactly its input's length.
    out.set(c.update(plaintext), at);
    let end = at + plaintext.length;
    if (trailer.length > 0) {
      out.set(c.update(trailer), end);
      end += trailer.length;
    }
    c.final();
    out.set(c.getAuthTag(), end);
  };
  return {
    name,
    sealInto,
    seal(nonce, aad, plaintext) {
      const out = new Uint8Array(plaintext.length + AEAD_TAG_LENGTH);
      sealInto(nonce, aad, plaintext, EMPTY, out, 0);
      return out;
    },
    open(nonce, aad, ciphertext) {
      if (ciphertext.length < AEAD_TAG_LENGTH) return null;
      const n = ciphertext.length - AEAD_TAG_LENGTH;
      // As on seal, no options: open always hands setAuthTag the last 16 bytes.
      const d = createDecipheriv(alg, k, nonce);
      d.setAuthTag(ciphertext.subarray(n));
      d.setAAD(aad);
      const body = d.update(ciphertext.subarray(0, n));
      try {
        // Stream modes: final() yields no bytes, it only checks the tag.
        d.final();
        return u8(body);
      } catch {
        return null;
      }
    },
  };
}

const EMPTY = new Uint8Array(0);
const COUNTER_1 = Uint8Array.of(1);

function nodeRunningHash(h: Hash): RunningHash {
  return {
    update: (data) => {
      h.update(data);
    },
    copy: () => nodeRunningHash(h.copy()),
    digest: () => u8(h.digest()),
  };
}

/**
 * Small random values (randoms, session ids, nonces, ticket ages) come from a pool filled by
 * OpenSSL's CSPRNG 4 KiB at a time, as node's randomUUID does: one fill per many handshakes
 * instead of one native call per value. Each byte is handed out once; callers get a copy.
 */
const POOL_SIZE = 4096;
const POOL_TAKE = 256;
const pool = new Uint8Array(POOL_SIZE);
let poolAt = POOL_SIZE;

function fromPool(n: number): Uint8Array {
  if (poolAt + n > POOL_SIZE) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const out = pool.slice(poolAt, poolAt + n);
  // Spent bytes are wiped, so the pool never holds a value already handed out.
  pool.fill(0, poolAt, poolAt + n);
  poolAt += n;
  return out;
}

/**
 * X25519 and X448 (RFC 7748) as OpenSSL takes raw private keys: a fixed PKCS#8 prefix (RFC
 * 8410 §7); node:crypto only takes keys as KeyObjects.
 */
const MONTGOMERY: Record<'x25519' | 'x448', { type: string; pkcs8: Buffer }> = {
  x25519: { type: 'x25519', pkcs8: Buffer.from('302e020100300506032b656e04220420', 'hex') },
  x448: { type: 'x448', pkcs8: Buffer.from('3046020100300506032b656f043a0438', 'hex') },
};
const EC_CURVE: Record<'secp256r1' | 'secp384r1' | 'secp521r1', string> = {
  secp256r1: 'prime256v1',
  secp384r1: 'secp384r1',
  secp521r1: 'secp521r1',
};

/**
 * The private KeyObject of each X25519/X448 key pair generateKeyPair made, by its raw bytes:
 * importing a raw key costs far more than the Diffie-Hellman itself (OpenSSL 3's PKCS#8
 * decoder), and the pair's KeyObject is at hand when it is made.
 */
const montKeyObjects = new WeakMap<Uint8Array, KeyObject>();

const b64url = (b: Uint8Array): string =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
const fromB64url = (s: string | undefined): Uint8Array => u8(Buffer.from(s ?? '', 'base64url'));
const JWK_CURVE = { x25519: 'X25519', x448: 'X448' } as const;

/**
 * Import a raw X25519/X448 private key. JWK import is ten times cheaper than PKCS#8 here; node
 * asks for the public `x` as well but derives the key from `d` alone, which the self-test below
 * checks once (RFC 7748 §6.1's key pair) before the JWK route is trusted. Otherwise PKCS#8.
 */
function montPrivate(group: 'x25519' | 'x448', raw: Uint8Array): KeyObject {
  const cached = montKeyObjects.get(raw);
  if (cached) return cached;
  const m = MONTGOMERY[group];
  return group === 'x25519' && jwkPrivateImportDerivesPublic()
    ? createPrivateKey({
        key: { kty: 'OKP', crv: JWK_CURVE[group], d: b64url(raw), x: b64url(raw) },
        format: 'jwk',
      })
    : createPrivateKey({ key: Buffer.concat([m.pkcs8, raw]), format: 'der', type: 'pkcs8' });
}

let jwkRouteChecked: boolean | undefined;
function jwkPrivateImportDerivesPublic(): boolean {
  if (jwkRouteChecked === undefined) {
    // RFC 7748 §6.1: Alice's private key and the public key it yields.
    const d = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex');
    const x = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';
    try {
      const k = createPrivateKey({
        key: { kty: 'OKP', crv: 'X25519', d: b64url(d), x: b64url(d) },
        format: 'jwk',
      });
      jwkRouteChecked = Buffer.from(fromB64url(k.export({ format: 'jwk' }).x)).toString('hex') === x;
    } catch {
      jwkRouteChecked = false;
    }
  }
  return jwkRouteChecked;
}

/** A peer's raw X25519/X448 public key (RFC 7748): JWK import, as cheap as it gets in node. */
function montPublic(group: 'x25519' | 'x448', raw: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: JWK_CURVE[group], x: b64url(raw) }, format: 'jwk' });
}

/** node:crypto (OpenSSL). Same results as the noble provider, faster on the AEAD hot path. */
export const nodeCrypto: CryptoProvider = {
  name: 'node',
  hash: (alg: HashName, data) => u8(createHash(alg).update(data).digest()),
  runningHash: (alg: HashName) => nodeRunningHash(createHash(alg)),
  hmac: (alg: HashName, key, data) => u8(createHmac(alg, key).update(data).digest()),
  // HKDF-Extract is HMAC(salt, IKM) (RFC 5869 §2.2); node's hkdfSync only offers extract+expand together.
  hkdfExtract: (alg, salt, ikm) => u8(createHmac(alg, salt).update(ikm).digest()),
  hkdfExpand(alg, prk, info, length) {
    // RFC 5869 §2.3, written out because hkdfSync would extract again.
    const hashLen = alg === 'sha256' ? 32 : 48;
    if (length > 255 * hashLen) throw new RangeError('HKDF-Expand length too large');
    // Nearly every TLS expansion fits one block: T(1) = HMAC(PRK, info || 0x01).
    if (length <= hashLen) {
      const t = u8(createHmac(alg, prk).update(info).update(COUNTER_1).digest());
      return length === hashLen ? t : t.subarray(0, length);
    }
    const out = new Uint8Array(length);
    let t: Uint8Array = new Uint8Array(0);
    let at = 0;
    for (let i = 1; at < length; i++) {
      const h = createHmac(alg, prk);
      h.update(t);
      h.update(info);
      h.update(Uint8Array.of(i));
      t = u8(h.digest());
      out.set(t.subarray(0, Math.min(t.length, length - at)), at);
      at += t.length;
    }
    return out;
  },
  aead: nodeAead,
  generateKeyPair(group: GroupName, privateKey?: Uint8Array): KeyPair {
    if (group === 'x25519' || group === 'x448') {
      if (privateKey) {
        const sk = privateKey.slice();
        const key = montPrivate(group, sk);
        montKeyObjects.set(sk, key);
        const pub = createPublicKey(key).export({ format: 'jwk' });
        return { group, privateKey: sk, publicKey: fromB64url(pub.x) };
      }
      // JWK export reads the raw key; PKCS#8/SPKI export runs OpenSSL's encoders, far slower.
      const kp = generateKeyPairSync(MONTGOMERY[group].type as 'x25519');
      const jwk = kp.privateKey.export({ format: 'jwk' });
      const sk = fromB64url(jwk.d);
      montKeyObjects.set(sk, kp.privateKey);
      return { group, privateKey: sk, publicKey: fromB64url(jwk.x) };
    }
    const ecdh = createECDH(EC_CURVE[group as 'secp256r1']);
    if (privateKey) ecdh.setPrivateKey(Buffer.from(privateKey));
    else ecdh.generateKeys();
    return {
      group,
      privateKey: u8(ecdh.getPrivateKey()),
      publicKey: u8(ecdh.getPublicKey(null, 'uncompressed')),
    };
  },
  sharedSecret(group, privateKey, peerPublicKey) {
    if (peerPublicKey.length !== PUBLIC_KEY_LENGTH[group]) {
      throw new KeyShareError(`${group} public key must be ${PUBLIC_KEY_LENGTH[group]} bytes`);
    }
    if (group === 'x25519' || group === 'x448') {
      let out: Uint8Array;
      try {
        out = u8(
          diffieHellman({
            privateKey: montPrivate(group, privateKey),
            publicKey: montPublic(group, peerPublicKey),
          }),
        );
      } catch (e) {
        throw new KeyShareError(`${group}: ${(e as Error).message}`);
      }
      // RFC 8446 §7.4.2: an all-zero X25519 or X448 result MUST be rejected.
      if (isAllZero(out)) throw new KeyShareError(`${group} shared secret is all zeros`);
      return out;
    }
    // RFC 8446 §4.2.8.2: only the uncompressed form (0x04 || X || Y) is allowed.
    if (peerPublicKey[0] !== 4) throw new KeyShareError(`${group} key share must be uncompressed`);
    try {
      const ecdh = createECDH(EC_CURVE[group as 'secp256r1']);
      ecdh.setPrivateKey(Buffer.from(privateKey));
      // RFC 8446 §7.4.1: computeSecret returns the x-coordinate (left-padded to the field size), as TLS wants.
      return u8(ecdh.computeSecret(Buffer.from(peerPublicKey)));
    } catch (e) {
      throw new KeyShareError(`${group}: ${(e as Error).message}`);
    }
  },
  randomBytes: (n) => (n <= POOL_TAKE ? fromPool(n) : u8(randomBytes(n))),
};
