import {
  createCipheriv,
  createDecipheriv,
  createECDH,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  randomBytes,
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
  const alg = CIPHER[name];
  const k = Buffer.from(key);
  const opts = { authTagLength: AEAD_TAG_LENGTH };
  return {
    name,
    seal(nonce, aad, plaintext) {
      // One OpenSSL context per record: createCipheriv is the cheapest correct way to set a new nonce.
      const c = createCipheriv(alg as 'aes-128-gcm', k, nonce, opts);
      c.setAAD(aad, { plaintextLength: plaintext.length });
      const out = new Uint8Array(plaintext.length + AEAD_TAG_LENGTH);
      const body = c.update(plaintext);
      out.set(body, 0);
      let at = body.length;
      const fin = c.final();
      out.set(fin, at);
      at += fin.length;
      out.set(c.getAuthTag(), at);
      return out;
    },
    open(nonce, aad, ciphertext) {
      if (ciphertext.length < AEAD_TAG_LENGTH) return null;
      const n = ciphertext.length - AEAD_TAG_LENGTH;
      const d = createDecipheriv(alg as 'aes-128-gcm', k, nonce, opts);
      d.setAuthTag(ciphertext.subarray(n));
      d.setAAD(aad, { plaintextLength: n });
      const body = d.update(ciphertext.subarray(0, n));
      try {
        const fin = d.final();
        if (fin.length === 0) return u8(body);
        return u8(Buffer.concat([body, fin]));
      } catch {
        return null;
      }
    },
  };
}

// DER wrappers for raw X25519 keys (RFC 8410 §7, §4): node:crypto only takes keys as KeyObjects.
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

/** X25519 and X448 (RFC 7748) as OpenSSL takes raw keys: fixed DER prefixes (RFC 8410). */
const MONTGOMERY: Record<'x25519' | 'x448', { type: string; pkcs8: Buffer; spki: Buffer }> = {
  x25519: { type: 'x25519', pkcs8: X25519_PKCS8_PREFIX, spki: X25519_SPKI_PREFIX },
  x448: {
    type: 'x448',
    pkcs8: Buffer.from('3046020100300506032b656f043a0438', 'hex'),
    spki: Buffer.from('3042300506032b656f033900', 'hex'),
  },
};
const EC_CURVE: Record<'secp256r1' | 'secp384r1' | 'secp521r1', string> = {
  secp256r1: 'prime256v1',
  secp384r1: 'secp384r1',
  secp521r1: 'secp521r1',
};

function montPrivate(m: { pkcs8: Buffer }, raw: Uint8Array) {
  return createPrivateKey({ key: Buffer.concat([m.pkcs8, raw]), format: 'der', type: 'pkcs8' });
}

function montPublic(m: { spki: Buffer }, raw: Uint8Array) {
  return createPublicKey({ key: Buffer.concat([m.spki, raw]), format: 'der', type: 'spki' });
}

/** node:crypto (OpenSSL). Same results as the noble provider, faster on the AEAD hot path. */
export const nodeCrypto: CryptoProvider = {
  name: 'node',
  hash: (alg: HashName, data) => u8(createHash(alg).update(data).digest()),
  hmac: (alg: HashName, key, data) => u8(createHmac(alg, key).update(data).digest()),
  // HKDF-Extract is HMAC(salt, IKM) (RFC 5869 §2.2); node's hkdfSync only offers extract+expand together.
  hkdfExtract: (alg, salt, ikm) => u8(createHmac(alg, salt).update(ikm).digest()),
  hkdfExpand(alg, prk, info, length) {
    // RFC 5869 §2.3, written out because hkdfSync would extract again.
    const hashLen = alg === 'sha256' ? 32 : 48;
    if (length > 255 * hashLen) throw new RangeError('HKDF-Expand length too large');
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
    const mont = MONTGOMERY[group as 'x25519' | 'x448'];
    if (mont) {
      if (privateKey) {
        const pub = createPublicKey(montPrivate(mont, privateKey)).export({ format: 'der', type: 'spki' });
        return { group, privateKey: privateKey.slice(), publicKey: u8(pub.subarray(mont.spki.length)) };
      }
      const kp = generateKeyPairSync(mont.type as 'x25519');
      const der = kp.privateKey.export({ format: 'der', type: 'pkcs8' });
      const spki = kp.publicKey.export({ format: 'der', type: 'spki' });
      return {
        group,
        privateKey: u8(der.subarray(mont.pkcs8.length)),
        publicKey: u8(spki.subarray(mont.spki.length)),
      };
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
    const mont = MONTGOMERY[group as 'x25519' | 'x448'];
    if (mont) {
      let out: Uint8Array;
      try {
        out = u8(
          diffieHellman({
            privateKey: montPrivate(mont, privateKey),
            publicKey: montPublic(mont, peerPublicKey),
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
  randomBytes: (n) => u8(randomBytes(n)),
};
