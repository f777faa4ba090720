/**
 * One certificate authority and leaf for the TLS machine targets, made once per worker, and
 * a crypto provider whose randomness and key shares are fixed per connection, so the same
 * input takes the same path every time (a recorded server flight stays valid for the
 * client target, and coverage feedback is stable).
 */
import { certificateSigner, certificateVerifier } from '../../packages/tls/src/credentials.ts';
import { nodeCrypto } from '../../packages/tls/src/crypto/node.ts';
import type { CryptoProvider, GroupName, KeyPair } from '../../packages/tls/src/crypto/provider.ts';
import { credentialsFromPem, decodeCertificatesPem } from '../../packages/tls/src/pki/index.ts';
import { CA_PEM, LEAF_KEY_PEM, LEAF_PEM } from './tls-identity.ts';

export const signer = certificateSigner(credentialsFromPem(LEAF_PEM, LEAF_KEY_PEM));
export const verifier = certificateVerifier({ ca: decodeCertificatesPem(CA_PEM) });
export const SERVER_NAME = 'stepwire.test';
/** Connection time inside the certificates' validity (the verifier checks it at the connection's now). */
export const NOW = Date.UTC(2026, 0, 2);

// Fixed scalars (any 32 bytes clamp to an x25519 key; 0x22.. is below the P-256 order);
// groups without one here get fresh keys.
const FIXED_KEYS: Partial<Record<GroupName, KeyPair>> = {
  x25519: nodeCrypto.generateKeyPair('x25519', new Uint8Array(32).fill(0x11)),
  secp256r1: nodeCrypto.generateKeyPair('secp256r1', new Uint8Array(32).fill(0x22)),
};

/** nodeCrypto with counter-made randomness and one fixed key pair per group: a fresh one per connection. */
export function fixedCrypto(label: number): CryptoProvider {
  let counter = 0;
  return {
    ...nodeCrypto,
    randomBytes(n) {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = (label * 31 + counter++ * 7 + i) & 0xff;
      return out;
    },
    generateKeyPair(group, privateKey) {
      if (privateKey) return nodeCrypto.generateKeyPair(group, privateKey);
      const fixed = FIXED_KEYS[group];
      return fixed ? nodeCrypto.generateKeyPair(group, fixed.privateKey) : nodeCrypto.generateKeyPair(group);
    },
  };
}
