import { gcm } from '@noble/ciphers/aes.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { x448 } from '@noble/curves/ed448.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { expand, extract } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha384 } from '@noble/hashes/sha2.js';
import { randomBytes } from '@noble/hashes/utils.js';
import {
  AEAD_KEY_LENGTH,
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

const HASHES = { sha256, sha384 } as const;

function nobleAead(name: AeadName, key: Uint8Array): Aead {
  if (key.length !== AEAD_KEY_LENGTH[name])
    throw new RangeError(`${name} needs a ${AEAD_KEY_LENGTH[name]}-byte key`);
  const k = key.slice();
  const make = name === 'CHACHA20_POLY1305' ? chacha20poly1305 : gcm;
  return {
    name,
    seal: (nonce, aad, plaintext) => make(k, nonce, aad).encrypt(plaintext),
    open: (nonce, aad, ciphertext) => {
      try {
        return make(k, nonce, aad).decrypt(ciphertext);
      } catch {
        // noble throws on a bad tag (and on a too-short input); both are an authentication failure.
        return null;
      }
    },
  };
}

interface NobleHash {
  update(data: Uint8Array): unknown;
  clone(): NobleHash;
  digest(): Uint8Array;
}

function nobleRunningHash(h: NobleHash): RunningHash {
  return {
    update: (data) => {
      h.update(data);
    },
    copy: () => nobleRunningHash(h.clone()),
    digest: () => h.digest(),
  };
}

/** The default provider: @noble/hashes, @noble/ciphers, @noble/curves (pure TypeScript). */
export const nobleCrypto: CryptoProvider = {
  name: 'noble',
  hash: (alg: HashName, data) => HASHES[alg](data),
  runningHash: (alg: HashName) => nobleRunningHash(HASHES[alg].create()),
  hmac: (alg: HashName, key, data) => hmac(HASHES[alg], key, data),
  hkdfExtract: (alg, salt, ikm) => extract(HASHES[alg], ikm, salt),
  hkdfExpand: (alg, prk, info, length) => expand(HASHES[alg], prk, info, length),
  aead: nobleAead,
  generateKeyPair(group: GroupName, privateKey?: Uint8Array): KeyPair {
    if (group === 'x25519' || group === 'x448') {
      const m = group === 'x448' ? x448 : x25519;
      const sk = privateKey ?? m.utils.randomSecretKey();
      return { group, privateKey: sk, publicKey: m.getPublicKey(sk) };
    }
    const curve = group === 'secp521r1' ? p521 : group === 'secp384r1' ? p384 : p256;
    const sk = privateKey ?? curve.utils.randomSecretKey();
    return { group, privateKey: sk, publicKey: curve.getPublicKey(sk, false) };
  },
  sharedSecret(group, privateKey, peerPublicKey) {
    if (peerPublicKey.length !== PUBLIC_KEY_LENGTH[group]) {
      throw new KeyShareError(`${group} public key must be ${PUBLIC_KEY_LENGTH[group]} bytes`);
    }
    if (group === 'x25519' || group === 'x448') {
      const m = group === 'x448' ? x448 : x25519;
      let out: Uint8Array;
      try {
        out = m.getSharedSecret(privateKey, peerPublicKey);
      } catch (e) {
        throw new KeyShareError(`${group}: ${(e as Error).message}`);
      }
      // RFC 8446 §7.4.2: an all-zero X25519 or X448 result MUST be rejected.
      if (isAllZero(out)) throw new KeyShareError(`${group} shared secret is all zeros`);
      return out;
    }
    // RFC 8446 §4.2.8.2: only the uncompressed form (0x04 || X || Y) is allowed.
    if (peerPublicKey[0] !== 4) throw new KeyShareError(`${group} key share must be uncompressed`);
    const curve = group === 'secp521r1' ? p521 : group === 'secp384r1' ? p384 : p256;
    try {
      // RFC 8446 §7.4.1: the shared secret is the x-coordinate of the shared point.
      return curve.getSharedSecret(privateKey, peerPublicKey, true).subarray(1);
    } catch (e) {
      throw new KeyShareError(`${group}: ${(e as Error).message}`);
    }
  },
  randomBytes(n) {
    // getRandomValues fills at most 65536 bytes per call.
    const out = new Uint8Array(n);
    for (let at = 0; at < n; at += 65536) out.set(randomBytes(Math.min(65536, n - at)), at);
    return out;
  },
};
