/**
 * Key exchange for the key_share extension (RFC 8446 §4.2.8): the (EC)DHE groups of the
 * crypto provider, and the hybrid post-quantum group X25519MLKEM768
 * (draft-ietf-tls-ecdhe-mlkem, code point 0x11EC), which browsers and OpenSSL 3.5 offer first.
 *
 * X25519MLKEM768 combines ML-KEM-768 (FIPS 203; @noble/post-quantum) with X25519, ML-KEM
 * first in every field (draft-ietf-tls-ecdhe-mlkem §3; unlike SecP256r1MLKEM768):
 *   client key_exchange  = ML-KEM encapsulation key (1184) || X25519 public key (32)
 *   server key_exchange  = ML-KEM ciphertext (1088)         || X25519 public key (32)
 *   shared secret        = ML-KEM shared secret (32)        || X25519 shared secret (32)
 * The X25519 half goes through the provider (so node's provider uses OpenSSL for it); ML-KEM
 * has one implementation here, whichever provider is chosen.
 */
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { concatBytes } from '@stepwire/wire';
import { NamedGroup } from './codec/common.ts';
import { type CryptoProvider, type GroupName, KeyShareError } from './crypto/provider.ts';

/** draft-ietf-tls-ecdhe-mlkem §6 (IANA TLS Supported Groups). */
export const X25519MLKEM768 = 0x11ec;

export type KexGroupName = GroupName | 'X25519MLKEM768';

/** The groups we can exchange keys with, by code point. */
export const KEX_GROUPS: Record<number, KexGroupName> = {
  [X25519MLKEM768]: 'X25519MLKEM768',
  [NamedGroup.x25519]: 'x25519',
  [NamedGroup.secp256r1]: 'secp256r1',
  [NamedGroup.secp384r1]: 'secp384r1',
  [NamedGroup.secp521r1]: 'secp521r1',
  [NamedGroup.x448]: 'x448',
};

/** Our half of a key exchange, kept until the peer's share arrives. */
export interface KexShare {
  readonly group: KexGroupName;
  readonly publicKey: Uint8Array;
  readonly privateKey: Uint8Array;
}

const MLKEM768_EK = 1184;
const MLKEM768_DK = 2400;
const MLKEM768_CT = 1088;
const X25519_LEN = 32;

/** A client's key share for `group` (RFC 8446 §4.2.8). */
export function clientKeyShare(crypto: CryptoProvider, group: KexGroupName): KexShare {
  if (group !== 'X25519MLKEM768') return crypto.generateKeyPair(group);
  // FIPS 203 ML-KEM.KeyGen from a 64-byte seed (d || z), drawn from the provider.
  const kem = ml_kem768.keygen(crypto.randomBytes(64));
  const x = crypto.generateKeyPair('x25519');
  return {
    group,
    publicKey: concatBytes(kem.publicKey, x.publicKey),
    privateKey: concatBytes(kem.secretKey, x.privateKey),
  };
}

/**
 * The server's side (RFC 8446 §4.2.8; draft-ietf-tls-ecdhe-mlkem §3): its share for the
 * ServerHello and the shared secret. Throws KeyShareError (illegal_parameter) for a client
 * share of the wrong length or one that fails the ML-KEM encapsulation key check (FIPS 203 §7.2).
 */
export function serverKeyShare(
  crypto: CryptoProvider,
  group: KexGroupName,
  clientShare: Uint8Array,
): { publicKey: Uint8Array; shared: Uint8Array } {
  if (group !== 'X25519MLKEM768') {
    const ours = crypto.generateKeyPair(group);
    return { publicKey: ours.publicKey, shared: crypto.sharedSecret(group, ours.privateKey, clientShare) };
  }
  if (clientShare.length !== MLKEM768_EK + X25519_LEN)
    throw new KeyShareError(`X25519MLKEM768 client share must be ${MLKEM768_EK + X25519_LEN} bytes`);
  let kem: { cipherText: Uint8Array; sharedSecret: Uint8Array };
  try {
    kem = ml_kem768.encapsulate(clientShare.subarray(0, MLKEM768_EK), crypto.randomBytes(32));
  } catch (e) {
    throw new KeyShareError(`ML-KEM-768 encapsulation key: ${(e as Error).message}`);
  }
  const x = crypto.generateKeyPair('x25519');
  const xShared = crypto.sharedSecret('x25519', x.privateKey, clientShare.subarray(MLKEM768_EK));
  return {
    publicKey: concatBytes(kem.cipherText, x.publicKey),
    shared: concatBytes(kem.sharedSecret, xShared),
  };
}

/** The client's shared secret from the server's share (RFC 8446 §7.4; the draft's order). */
export function clientSharedSecret(
  crypto: CryptoProvider,
  ours: KexShare,
  serverShare: Uint8Array,
): Uint8Array {
  if (ours.group !== 'X25519MLKEM768') return crypto.sharedSecret(ours.group, ours.privateKey, serverShare);
  if (serverShare.length !== MLKEM768_CT + X25519_LEN)
    throw new KeyShareError(`X25519MLKEM768 server share must be ${MLKEM768_CT + X25519_LEN} bytes`);
  const kemShared = ml_kem768.decapsulate(
    serverShare.subarray(0, MLKEM768_CT),
    ours.privateKey.subarray(0, MLKEM768_DK),
  );
  const xShared = crypto.sharedSecret(
    'x25519',
    ours.privateKey.subarray(MLKEM768_DK),
    serverShare.subarray(MLKEM768_CT),
  );
  return concatBytes(kemShared, xShared);
}
