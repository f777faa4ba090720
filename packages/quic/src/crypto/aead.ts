import { createCipheriv, createDecipheriv, createSecretKey } from 'node:crypto';
import type { Aead, AeadName } from '@stepwire/tls';

/**
 * The packet AEAD on node:crypto (OpenSSL), tuned for QUIC's shape (RFC 9001 §5.3): one
 * packet per call, the header as associated data, a 16-byte tag. It is the tls package's
 * node AEAD with the per-packet work cut to what OpenSSL needs: the key is a KeyObject made
 * once (no raw key copy and check per packet); no options object (GCM's and
 * ChaCha20-Poly1305's tag is 16 bytes by default, and only CCM needs the plaintext length
 * up front); sealing writes straight into the caller's packet buffer (`sealInto`), so the
 * ciphertext is copied once, from OpenSSL's output into the datagram.
 *
 * OpenSSL takes the nonce only at init and node offers no re-init, so one cipher context per
 * packet remains (the bench's raw-AEAD peer pays the same).
 */

const CIPHER: Record<AeadName, 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305'> = {
  AES_128_GCM: 'aes-128-gcm',
  AES_256_GCM: 'aes-256-gcm',
  CHACHA20_POLY1305: 'chacha20-poly1305',
};
const KEY_LENGTH: Record<AeadName, number> = { AES_128_GCM: 16, AES_256_GCM: 32, CHACHA20_POLY1305: 32 };
const TAG = 16;
const EMPTY = new Uint8Array(0);

export function nodePacketAead(name: AeadName, key: Uint8Array): Aead {
  if (key.length !== KEY_LENGTH[name]) throw new RangeError(`${name} needs a ${KEY_LENGTH[name]}-byte key`);
  // The GCM literal picks node's typings for an AEAD cipher; ChaCha20-Poly1305 has the same surface.
  const alg = CIPHER[name] as 'aes-128-gcm';
  const k = createSecretKey(key);
  const sealInto = (
    nonce: Uint8Array,
    aad: Uint8Array,
    plaintext: Uint8Array,
    trailer: Uint8Array,
    out: Uint8Array,
    at: number,
  ): void => {
    const c = createCipheriv(alg, k, nonce);
    c.setAAD(aad);
    // Stream modes: update returns exactly as many bytes as it is given.
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
      const out = new Uint8Array(plaintext.length + TAG);
      sealInto(nonce, aad, plaintext, EMPTY, out, 0);
      return out;
    },
    open(nonce, aad, ciphertext) {
      if (ciphertext.length < TAG) return null;
      const n = ciphertext.length - TAG;
      const d = createDecipheriv(alg, k, nonce);
      d.setAuthTag(ciphertext.subarray(n));
      d.setAAD(aad);
      const body = d.update(ciphertext.subarray(0, n));
      try {
        // Stream modes: final() yields no bytes, it only checks the tag.
        d.final();
      } catch {
        return null;
      }
      return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    },
  };
}
