/**
 * What the RFC 8448 replays share: a crypto provider that hands out the trace's randoms and
 * private keys so that our machine writes the RFC's bytes, and the groups and signature
 * schemes the traces' client (NSS) offers.
 */
import type { CryptoProvider } from '../../src/crypto/provider.ts';

/** supported_groups of the RFC 8448 ClientHellos. */
export const RFC_GROUPS = [0x001d, 0x0017, 0x0018, 0x0019, 0x0100, 0x0101, 0x0102, 0x0103, 0x0104];
/** signature_algorithms of the RFC 8448 ClientHellos. */
export const RFC_SCHEMES = [
  0x0403, 0x0503, 0x0603, 0x0203, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0201, 0x0402, 0x0502,
  0x0602, 0x0202,
];

/**
 * `base`, except that its first 32-byte randoms are `randoms` (in order: the hello random, then
 * a legacy_session_id, say) and its first x25519 (and secp256r1) key pairs are made from the
 * given private keys; then it behaves normally.
 */
export function scripted(
  base: CryptoProvider,
  randoms: Uint8Array | readonly Uint8Array[],
  x25519Private: Uint8Array,
  p256Private?: Uint8Array,
): CryptoProvider {
  const queue = randoms instanceof Uint8Array ? [randoms] : [...randoms];
  let keyUsed = false;
  let p256Used = false;
  return {
    ...base,
    name: `${base.name}, scripted`,
    randomBytes: (n) => (n === 32 && queue.length > 0 ? (queue.shift() as Uint8Array) : base.randomBytes(n)),
    generateKeyPair(group, privateKey) {
      if (group === 'x25519' && !privateKey && !keyUsed) {
        keyUsed = true;
        return base.generateKeyPair(group, x25519Private);
      }
      if (group === 'secp256r1' && !privateKey && p256Private && !p256Used) {
        p256Used = true;
        return base.generateKeyPair(group, p256Private);
      }
      return base.generateKeyPair(group, privateKey);
    },
  };
}
