import {
  type Aead,
  type AeadName,
  type CryptoProvider,
  type HashName,
  nobleCrypto,
  nodeCrypto,
} from '@stepwire/tls';
import { fromHex } from '@stepwire/wire';
import { type HeaderProtectionProvider, nobleHeaderProtection, nodeHeaderProtection } from './hp.ts';

/**
 * Packet protection keys (RFC 9001 §5.1, §5.2, §6).
 *
 * The TLS crypto provider supplies HKDF and the AEADs; the header-protection provider the
 * raw block ciphers. A `QuicCrypto` pairs the two so that a whole connection runs on one
 * implementation: `nobleQuicCrypto` (pure TypeScript) or `nodeQuicCrypto` (OpenSSL).
 */
export interface QuicCrypto {
  readonly name: string;
  readonly crypto: CryptoProvider;
  readonly hp: HeaderProtectionProvider;
}

export const nobleQuicCrypto: QuicCrypto = { name: 'noble', crypto: nobleCrypto, hp: nobleHeaderProtection };
export const nodeQuicCrypto: QuicCrypto = {
  name: 'node',
  crypto: nodeCrypto,
  hp: nodeHeaderProtection,
};

/** The TLS 1.3 cipher suites QUIC v1 uses (RFC 9001 §5.3; TLS_AES_128_CCM_SHA256 is not implemented). */
export type QuicCipherSuite =
  | 'TLS_AES_128_GCM_SHA256'
  | 'TLS_AES_256_GCM_SHA384'
  | 'TLS_CHACHA20_POLY1305_SHA256';

export interface SuiteParams {
  hash: HashName;
  hashLength: number;
  aead: AeadName;
  keyLength: number;
  /** Header protection: AES-ECB for the AES-GCM suites, ChaCha20 for ChaCha20-Poly1305 (§5.4.3, §5.4.4). */
  hp: 'aes' | 'chacha20';
}

export const QUIC_SUITES: Readonly<Record<QuicCipherSuite, SuiteParams>> = {
  TLS_AES_128_GCM_SHA256: { hash: 'sha256', hashLength: 32, aead: 'AES_128_GCM', keyLength: 16, hp: 'aes' },
  TLS_AES_256_GCM_SHA384: { hash: 'sha384', hashLength: 48, aead: 'AES_256_GCM', keyLength: 32, hp: 'aes' },
  TLS_CHACHA20_POLY1305_SHA256: {
    hash: 'sha256',
    hashLength: 32,
    aead: 'CHACHA20_POLY1305',
    keyLength: 32,
    hp: 'chacha20',
  },
};

/**
 * RFC 9001 §6.6: usage limits per key. The confidentiality limit counts packets protected
 * with one key (an endpoint updates keys before reaching it); the integrity limit counts
 * packets that failed authentication across all keys of the connection (reaching it ends
 * the connection with AEAD_LIMIT_REACHED).
 */
export const AEAD_LIMITS: Readonly<Record<QuicCipherSuite, { confidentiality: number; integrity: number }>> =
  {
    TLS_AES_128_GCM_SHA256: { confidentiality: 2 ** 23, integrity: 2 ** 52 },
    TLS_AES_256_GCM_SHA384: { confidentiality: 2 ** 23, integrity: 2 ** 52 },
    // §6.6: "For AEAD_CHACHA20_POLY1305, the confidentiality limit is greater than the
    // number of possible packets (2^62) and so can be disregarded."
    TLS_CHACHA20_POLY1305_SHA256: { confidentiality: Number.POSITIVE_INFINITY, integrity: 2 ** 36 },
  };

/** TLS 1.3 cipher suite code points (RFC 8446 §B.4), for mapping a negotiated suite. */
export const QUIC_SUITE_BY_CODE: ReadonlyMap<number, QuicCipherSuite> = new Map([
  [0x1301, 'TLS_AES_128_GCM_SHA256'],
  [0x1302, 'TLS_AES_256_GCM_SHA384'],
  [0x1303, 'TLS_CHACHA20_POLY1305_SHA256'],
]);

/** RFC 9001 §5.2: initial_salt for QUIC version 1. */
export const INITIAL_SALT_V1 = fromHex('38762cf7f55934b34d179ae6a4c80cadccbb7f0a');

const enc = new TextEncoder();
const EMPTY = new Uint8Array(0);

/**
 * HKDF-Expand-Label (RFC 8446 §7.1) as RFC 9001 §5.1 uses it: the HkdfLabel structure
 * with the "tls13 " prefix. (The tls package has its own; QUIC keeps this one so its key
 * derivation depends only on the provider interface.)
 */
export function hkdfExpandLabel(
  c: CryptoProvider,
  hash: HashName,
  secret: Uint8Array,
  label: string,
  context: Uint8Array,
  length: number,
): Uint8Array {
  const full = enc.encode(`tls13 ${label}`);
  const info = new Uint8Array(2 + 1 + full.length + 1 + context.length);
  info[0] = length >> 8;
  info[1] = length & 0xff;
  info[2] = full.length;
  info.set(full, 3);
  info[3 + full.length] = context.length;
  info.set(context, 4 + full.length);
  return c.hkdfExpand(hash, secret, info, length);
}

export interface InitialSecrets {
  clientInitialSecret: Uint8Array;
  serverInitialSecret: Uint8Array;
}

/** RFC 9001 §5.2: the Initial secrets from the client's first Destination Connection ID. */
export function initialSecrets(
  c: CryptoProvider,
  clientDcid: Uint8Array,
  salt = INITIAL_SALT_V1,
): InitialSecrets {
  const initialSecret = c.hkdfExtract('sha256', salt, clientDcid);
  return {
    clientInitialSecret: hkdfExpandLabel(c, 'sha256', initialSecret, 'client in', EMPTY, 32),
    serverInitialSecret: hkdfExpandLabel(c, 'sha256', initialSecret, 'server in', EMPTY, 32),
  };
}

/** The keys of one direction at one encryption level (or key phase). */
export interface PacketKeys {
  readonly suite: QuicCipherSuite;
  /** The traffic secret these keys come from; the next key phase derives from it (§6.1). */
  readonly secret: Uint8Array;
  readonly key: Uint8Array;
  readonly iv: Uint8Array;
  readonly hpKey: Uint8Array;
  readonly aead: Aead;
  /** The 5-byte (or longer) header-protection mask for a 16-byte sample. */
  readonly hpMask: (sample: Uint8Array) => Uint8Array;
}

/** RFC 9001 §5.1: "quic key", "quic iv" and "quic hp" from a traffic secret. */
export function derivePacketKeys(qc: QuicCrypto, suite: QuicCipherSuite, secret: Uint8Array): PacketKeys {
  const s = QUIC_SUITES[suite];
  const key = hkdfExpandLabel(qc.crypto, s.hash, secret, 'quic key', EMPTY, s.keyLength);
  const iv = hkdfExpandLabel(qc.crypto, s.hash, secret, 'quic iv', EMPTY, 12);
  const hpKey = hkdfExpandLabel(qc.crypto, s.hash, secret, 'quic hp', EMPTY, s.keyLength);
  const hpMask = s.hp === 'aes' ? qc.hp.aesMask(hpKey) : qc.hp.chacha20Mask(hpKey);
  return { suite, secret, key, iv, hpKey, aead: qc.crypto.aead(s.aead, key), hpMask };
}

/** Both directions' Initial keys (RFC 9001 §5.2: always AES-128-GCM with SHA-256). */
export function initialKeys(
  qc: QuicCrypto,
  clientDcid: Uint8Array,
): { client: PacketKeys; server: PacketKeys } {
  const s = initialSecrets(qc.crypto, clientDcid);
  return {
    client: derivePacketKeys(qc, 'TLS_AES_128_GCM_SHA256', s.clientInitialSecret),
    server: derivePacketKeys(qc, 'TLS_AES_128_GCM_SHA256', s.serverInitialSecret),
  };
}

/**
 * RFC 9001 §6.1: the next key phase. secret_<n+1> = HKDF-Expand-Label(secret_<n>, "quic ku",
 * "", Hash.length); key and IV are derived from it as before, while the header protection
 * key is not updated ("The header protection key is not updated").
 */
export function nextKeyPhase(qc: QuicCrypto, keys: PacketKeys): PacketKeys {
  const s = QUIC_SUITES[keys.suite];
  const secret = hkdfExpandLabel(qc.crypto, s.hash, keys.secret, 'quic ku', EMPTY, s.hashLength);
  const key = hkdfExpandLabel(qc.crypto, s.hash, secret, 'quic key', EMPTY, s.keyLength);
  const iv = hkdfExpandLabel(qc.crypto, s.hash, secret, 'quic iv', EMPTY, 12);
  return { ...keys, secret, key, iv, aead: qc.crypto.aead(s.aead, key) };
}
