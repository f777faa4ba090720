/**
 * The crypto seam. Everything TLS needs from cryptography goes through this interface,
 * so the protocol code never names a library: the default provider uses the audited
 * pure-JS @noble packages, the node provider uses node:crypto (OpenSSL) for speed.
 * Both must give byte-identical results; the test suite runs once per provider.
 */

/** Hash functions of the TLS 1.3 cipher suites (RFC 8446 §B.4). */
export type HashName = 'sha256' | 'sha384';

/** AEAD algorithms of the TLS 1.3 cipher suites (RFC 8446 §B.4). */
export type AeadName = 'AES_128_GCM' | 'AES_256_GCM' | 'CHACHA20_POLY1305';

/** Key-exchange groups we implement (RFC 8446 §4.2.7 names). */
export type GroupName = 'x25519' | 'x448' | 'secp256r1' | 'secp384r1' | 'secp521r1';

export const HASH_LENGTH: Record<HashName, number> = { sha256: 32, sha384: 48 };
export const AEAD_KEY_LENGTH: Record<AeadName, number> = {
  AES_128_GCM: 16,
  AES_256_GCM: 32,
  CHACHA20_POLY1305: 32,
};
/** Every TLS 1.3 AEAD uses a 12-byte nonce (RFC 8446 §5.3: iv_length = max(8, N_MIN) = 12). */
export const AEAD_NONCE_LENGTH = 12;
export const AEAD_TAG_LENGTH = 16;

/** An AEAD bound to one key; seal/open are the hot path of the record layer. */
export interface Aead {
  readonly name: AeadName;
  /** ciphertext || tag. */
  seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  /** The plaintext, or null when the tag does not verify (the record layer maps that to bad_record_mac). */
  open(nonce: Uint8Array, aad: Uint8Array, ciphertextAndTag: Uint8Array): Uint8Array | null;
  /**
   * Seal `plaintext || trailer` into `out` at `at`, the tag right after it: the record layer
   * seals straight into the record it sends (header room in front), with no copies of its own.
   * `out` may not overlap `plaintext` or `trailer`. Optional: without it the record layer uses seal.
   */
  sealInto?(
    nonce: Uint8Array,
    aad: Uint8Array,
    plaintext: Uint8Array,
    trailer: Uint8Array,
    out: Uint8Array,
    at: number,
  ): void;
}

/**
 * A hash that takes its input in pieces and can be forked: the transcript hash (RFC 8446
 * §4.4.1) is read at several points of one handshake, each a prefix of the next.
 */
export interface RunningHash {
  update(data: Uint8Array): void;
  /** An independent copy of the state so far. */
  copy(): RunningHash;
  /** The digest; the hash must not be used after. */
  digest(): Uint8Array;
}

export interface KeyPair {
  readonly group: GroupName;
  /** x25519: the 32-byte scalar; secp256r1/secp384r1: the 32/48-byte big-endian scalar. */
  readonly privateKey: Uint8Array;
  /** As sent in a KeyShareEntry (RFC 8446 §4.2.8.2): x25519 32 bytes; secp256r1 uncompressed 65 bytes. */
  readonly publicKey: Uint8Array;
}

/** Thrown by sharedSecret for a peer key that is malformed or yields a degenerate secret. */
export class KeyShareError extends Error {
  override readonly name = 'KeyShareError';
}

export interface CryptoProvider {
  readonly name: string;
  hash(alg: HashName, data: Uint8Array): Uint8Array;
  /** A running hash, for transcripts. Optional: without it a transcript is rehashed whole. */
  runningHash?(alg: HashName): RunningHash;
  hmac(alg: HashName, key: Uint8Array, data: Uint8Array): Uint8Array;
  /** HKDF-Extract(salt, IKM) (RFC 5869 §2.2). */
  hkdfExtract(alg: HashName, salt: Uint8Array, ikm: Uint8Array): Uint8Array;
  /** HKDF-Expand(PRK, info, L) (RFC 5869 §2.3). */
  hkdfExpand(alg: HashName, prk: Uint8Array, info: Uint8Array, length: number): Uint8Array;
  aead(alg: AeadName, key: Uint8Array): Aead;
  /** A fresh key pair; with `privateKey` given, the pair for that key (used to replay test vectors). */
  generateKeyPair(group: GroupName, privateKey?: Uint8Array): KeyPair;
  /**
   * The (EC)DHE shared secret (RFC 8446 §7.4): X25519 output, or the x-coordinate for secp256r1.
   * Throws KeyShareError for an invalid peer public key or an all-zero X25519 result (§7.4.2).
   */
  sharedSecret(group: GroupName, privateKey: Uint8Array, peerPublicKey: Uint8Array): Uint8Array;
  randomBytes(n: number): Uint8Array;
}

/** Public key lengths per group, for validating a KeyShareEntry before any math (RFC 8446 §4.2.8.2). */
export const PUBLIC_KEY_LENGTH: Record<GroupName, number> = {
  x25519: 32,
  x448: 56,
  secp256r1: 65,
  secp384r1: 97,
  secp521r1: 133,
};

export function isAllZero(b: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < b.length; i++) acc |= b[i]!;
  return acc === 0;
}
