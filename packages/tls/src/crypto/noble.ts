import { GHASH } from '@noble/ciphers/_polyval.js';
import { gcm, unsafe } from '@noble/ciphers/aes.js';
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
  if (name !== 'CHACHA20_POLY1305') return new NobleGcm(k);
  return {
    name,
    seal: (nonce, aad, plaintext) => chacha20poly1305(k, nonce, aad).encrypt(plaintext),
    open: (nonce, aad, ciphertext) => {
      try {
        return chacha20poly1305(k, nonce, aad).decrypt(ciphertext);
      } catch {
        // noble throws on a bad tag (and on a too-short input); both are an authentication failure.
        return null;
      }
    },
  };
}

/** Bytes a key protects through noble's one-shot gcm() before it gets tables of its own. */
const GCM_TABLES_AFTER = 64 * 1024;
const ZERO_BLOCK = new Uint8Array(16);

/**
 * AES-GCM (NIST SP 800-38D) for one key. noble's gcm() expands the AES key, derives H and
 * builds a GHASH table on every call, which is most of a small record's cost and a good part
 * of a large one's. A key that carries bulk data (past GCM_TABLES_AFTER bytes) keeps its
 * expanded key, H, and an 8-bit-window GHASH table (noble's fastest, 16 lookups a block)
 * for the rest of its life, from noble's own building blocks (aes.js `unsafe`, GHASH).
 * Handshake keys, used for a record or two, never pay for the table.
 */
class NobleGcm implements Aead {
  readonly name: AeadName;
  private bytes = 0;
  private tables?: { xk: Uint32Array; ghash: GHASH };

  constructor(private readonly key: Uint8Array) {
    this.name = key.length === 16 ? 'AES_128_GCM' : 'AES_256_GCM';
  }

  seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const t = this.ready(plaintext.length);
    if (!t) return gcm(this.key, nonce, aad).encrypt(plaintext);
    const counter = j0(nonce);
    // The tag mask E_K(J0); ctr32 leaves the counter at inc32(J0) for the payload (SP 800-38D §7.1).
    const tagMask = unsafe.ctr32(t.xk, false, counter, ZERO_BLOCK);
    const out = new Uint8Array(plaintext.length + 16);
    unsafe.ctr32(t.xk, false, counter, aligned(plaintext), out.subarray(0, plaintext.length));
    const tag = ghashTag(t.ghash, aad, out.subarray(0, plaintext.length), tagMask);
    out.set(tag, plaintext.length);
    return out;
  }

  open(nonce: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array): Uint8Array | null {
    if (ciphertext.length < 16) return null;
    const t = this.ready(ciphertext.length - 16);
    if (!t) {
      try {
        return gcm(this.key, nonce, aad).decrypt(ciphertext);
      } catch {
        // noble throws on a bad tag; that is an authentication failure.
        return null;
      }
    }
    const n = ciphertext.length - 16;
    const body = aligned(ciphertext.subarray(0, n));
    const counter = j0(nonce);
    const tagMask = unsafe.ctr32(t.xk, false, counter, ZERO_BLOCK);
    const tag = ghashTag(t.ghash, aad, body, tagMask);
    // The tag is checked before any plaintext exists (SP 800-38D §7.2), in constant time.
    let diff = 0;
    for (let i = 0; i < 16; i++) diff |= (tag[i] as number) ^ (ciphertext[n + i] as number);
    if (diff !== 0) return null;
    return unsafe.ctr32(t.xk, false, counter, body, new Uint8Array(n));
  }

  private ready(bytes: number): { xk: Uint32Array; ghash: GHASH } | undefined {
    if (this.tables) return this.tables;
    this.bytes += bytes;
    if (this.bytes < GCM_TABLES_AFTER) return undefined;
    const xk = unsafe.expandKeyLE(this.key);
    // H = E_K(0^128) (SP 800-38D §6.4): CTR over a zero block from a zero counter.
    const h = unsafe.ctr32(xk, false, new Uint8Array(16), ZERO_BLOCK);
    // An expected length past 64 KiB selects the 8-bit window.
    this.tables = { xk, ghash: new GHASH(h, 1 << 20) };
    return this.tables;
  }
}

/** J0 = IV || 0^31 || 1 for a 96-bit IV (SP 800-38D §7.1). */
function j0(nonce: Uint8Array): Uint8Array {
  const c = new Uint8Array(16);
  c.set(nonce);
  c[15] = 1;
  return c;
}

/** noble's CTR and GHASH read 32-bit words: an unaligned view is copied. */
function aligned(b: Uint8Array): Uint8Array {
  return b.byteOffset % 4 === 0 ? b : b.slice();
}

/**
 * GHASH_H(A || 0* || C || 0* || len(A) || len(C)) XOR E_K(J0) (SP 800-38D §7.1), on a fresh
 * accumulator that shares the key's table: the template is the prototype, the accumulator
 * words and flags are the instance's own, and digestInto (unlike digest) leaves the table whole.
 */
function ghashTag(template: GHASH, aad: Uint8Array, ciphertext: Uint8Array, tagMask: Uint8Array): Uint8Array {
  const h = Object.create(template) as GHASH;
  // GHASH's accumulator and flags (protected fields): set as own properties of the instance.
  Object.assign(h, { s0: 0, s1: 0, s2: 0, s3: 0, finished: false, destroyed: false });
  h.update(aad);
  h.update(ciphertext);
  const lengths = new Uint8Array(16);
  const v = new DataView(lengths.buffer);
  // Bit lengths as two 64-bit big-endian integers; records are far below 2^32 bits.
  v.setUint32(4, aad.length * 8);
  v.setUint32(12, ciphertext.length * 8);
  h.update(lengths);
  const tag = new Uint8Array(16);
  h.digestInto(tag);
  for (let i = 0; i < 16; i++) tag[i] = (tag[i] as number) ^ (tagMask[i] as number);
  return tag;
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
