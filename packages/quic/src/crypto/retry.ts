import type { CryptoProvider } from '@stepwire/tls';
import { bytesEqual, fromHex } from '@stepwire/wire';
import { encodeRetry, RETRY_INTEGRITY_TAG_LENGTH, type RetryPacket } from '../packet/header.ts';

/**
 * The Retry integrity tag (RFC 9001 §5.8): AES-128-GCM with a fixed key and nonce over an
 * empty plaintext, with the Retry Pseudo-Packet as associated data:
 *
 *   Retry Pseudo-Packet { ODCID Length (8), Original Destination Connection ID (0..160),
 *                         the Retry packet up to (not including) its Integrity Tag }
 */
export const RETRY_INTEGRITY_KEY_V1 = fromHex('be0c690b9f66575a1d766b54e368c84e');
export const RETRY_INTEGRITY_NONCE_V1 = fromHex('461599d35d632bf2239825bb');

export function retryPseudoPacket(originalDcid: Uint8Array, retryWithoutTag: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + originalDcid.length + retryWithoutTag.length);
  out[0] = originalDcid.length;
  out.set(originalDcid, 1);
  out.set(retryWithoutTag, 1 + originalDcid.length);
  return out;
}

export function retryIntegrityTag(
  c: CryptoProvider,
  originalDcid: Uint8Array,
  retryWithoutTag: Uint8Array,
): Uint8Array {
  const aead = c.aead('AES_128_GCM', RETRY_INTEGRITY_KEY_V1);
  return aead.seal(
    RETRY_INTEGRITY_NONCE_V1,
    retryPseudoPacket(originalDcid, retryWithoutTag),
    new Uint8Array(0),
  );
}

/** Appends the tag to a Retry packet encoded without one. */
export function sealRetry(
  c: CryptoProvider,
  originalDcid: Uint8Array,
  retryWithoutTag: Uint8Array,
): Uint8Array {
  const tag = retryIntegrityTag(c, originalDcid, retryWithoutTag);
  const out = new Uint8Array(retryWithoutTag.length + tag.length);
  out.set(retryWithoutTag, 0);
  out.set(tag, retryWithoutTag.length);
  return out;
}

/** RFC 9001 §5.8: a client discards a Retry whose tag does not verify. */
export function verifyRetry(c: CryptoProvider, originalDcid: Uint8Array, retry: Uint8Array): boolean {
  if (retry.length < RETRY_INTEGRITY_TAG_LENGTH) return false;
  const body = retry.subarray(0, retry.length - RETRY_INTEGRITY_TAG_LENGTH);
  const aead = c.aead('AES_128_GCM', RETRY_INTEGRITY_KEY_V1);
  // Opening (rather than recomputing and comparing) gives the AEAD's constant-time check.
  const opened = aead.open(
    RETRY_INTEGRITY_NONCE_V1,
    retryPseudoPacket(originalDcid, body),
    retry.subarray(body.length),
  );
  return opened !== null && bytesEqual(opened, new Uint8Array(0));
}

/** Encodes a Retry packet (RFC 9000 §17.2.5) and computes its tag for the client's original DCID. */
export function buildRetry(
  c: CryptoProvider,
  originalDcid: Uint8Array,
  retry: Omit<RetryPacket, 'type' | 'retryIntegrityTag'>,
): Uint8Array {
  const untagged = encodeRetry({
    ...retry,
    type: 'Retry',
    retryIntegrityTag: new Uint8Array(RETRY_INTEGRITY_TAG_LENGTH),
  });
  return sealRetry(c, originalDcid, untagged.subarray(0, untagged.length - RETRY_INTEGRITY_TAG_LENGTH));
}
