import { createCipheriv } from 'node:crypto';
import { unsafe as aes } from '@noble/ciphers/aes.js';
import { hchacha } from '@noble/ciphers/chacha.js';

/**
 * The header-protection seam (RFC 9001 §5.4). Header protection needs two raw primitives
 * that the TLS crypto provider has no reason to expose: AES in ECB mode on one block
 * (§5.4.3) and one ChaCha20 block with a caller-chosen counter (§5.4.4). Both
 * implementations here must give identical masks; the tests run RFC 9001 Appendix A
 * through each.
 */
export interface HeaderProtectionProvider {
  readonly name: string;
  /** mask = AES-ECB(hp_key, sample) (RFC 9001 §5.4.3); returns at least 5 bytes. */
  aesMask(hpKey: Uint8Array): (sample: Uint8Array) => Uint8Array;
  /**
   * RFC 9001 §5.4.4: counter = sample[0..3] (little-endian), nonce = sample[4..15],
   * mask = ChaCha20(hp_key, counter, nonce, {0,0,0,0,0}).
   */
  chacha20Mask(hpKey: Uint8Array): (sample: Uint8Array) => Uint8Array;
}

export const HP_SAMPLE_LENGTH = 16;

function checkSample(sample: Uint8Array): void {
  if (sample.length !== HP_SAMPLE_LENGTH) throw new RangeError('a header protection sample is 16 bytes');
}

/** node:crypto (OpenSSL). */
export const nodeHeaderProtection: HeaderProtectionProvider = {
  name: 'node',
  aesMask(hpKey) {
    const alg = hpKey.length === 16 ? 'aes-128-ecb' : hpKey.length === 32 ? 'aes-256-ecb' : undefined;
    if (!alg) throw new RangeError('an AES header protection key is 16 or 32 bytes');
    // ECB keeps no state between blocks, so one cipher context serves every packet as long
    // as it is fed whole blocks and never finalised.
    const c = createCipheriv(alg, hpKey, null);
    c.setAutoPadding(false);
    return (sample) => {
      checkSample(sample);
      const out = c.update(sample);
      return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    };
  },
  // ChaCha20 is add-rotate-xor, constant-time in JavaScript too, and a mask is one block:
  // setting up an OpenSSL context per packet (the sample is the IV) cost four times the
  // block itself, so the OpenSSL provider takes the TypeScript block for this one primitive.
  chacha20Mask: (hpKey) => chacha20BlockMask(hpKey),
};

/** "expand 32-byte k" (RFC 8439 §2.3): the first four words of every ChaCha20 state. */
const SIGMA = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);

/** @noble/ciphers (pure TypeScript). */
export const nobleHeaderProtection: HeaderProtectionProvider = {
  name: 'noble',
  aesMask(hpKey) {
    if (hpKey.length !== 16 && hpKey.length !== 32)
      throw new RangeError('an AES header protection key is 16 or 32 bytes');
    // noble's ECB mode refuses a second encrypt() on one instance; the raw block function
    // over a key schedule expanded once is AES-ECB on one block, which is all §5.4.3 asks.
    const xk = aes.expandKeyLE(hpKey.slice());
    return (sample) => {
      checkSample(sample);
      // encryptBlock works in place on an aligned copy.
      return aes.encryptBlock(xk, sample.slice());
    };
  },
  chacha20Mask: (hpKey) => chacha20BlockMask(hpKey),
};

function readLe32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

/** RFC 9001 §5.4.4 in TypeScript: one ChaCha20 block from HChaCha20 (see the comment inside). */
function chacha20BlockMask(hpKey: Uint8Array): (sample: Uint8Array) => Uint8Array {
  if (hpKey.length !== 32) throw new RangeError('a ChaCha20 header protection key is 32 bytes');
  const k = new Uint32Array(8);
  for (let i = 0; i < 8; i++) k[i] = readLe32(hpKey, 4 * i);
  const input = new Uint32Array(4);
  const permuted = new Uint32Array(8);
  return (sample) => {
    checkSample(sample);
    // The ChaCha20 state is sigma | key | counter | nonce (RFC 8439 §2.3), and for QUIC
    // counter | nonce is the sample read as four little-endian words. noble's chacha20()
    // refuses the counter 2^32-1 (it will not wrap), which a sample can hold, so the block
    // is computed from HChaCha20 instead: HChaCha20 returns words 0..3 and 12..15 of the
    // state after the 20 rounds, without the final addition of the input state (RFC 8439
    // §2.3 step "add the original input words"). The mask's five bytes come from words 0
    // and 1 of the block, so adding sigma back to those two words gives them exactly.
    for (let i = 0; i < 4; i++) input[i] = readLe32(sample, 4 * i);
    hchacha(SIGMA, k, input, permuted);
    const w0 = (permuted[0]! + SIGMA[0]!) >>> 0;
    const w1 = (permuted[1]! + SIGMA[1]!) >>> 0;
    return Uint8Array.of(w0 & 0xff, (w0 >>> 8) & 0xff, (w0 >>> 16) & 0xff, w0 >>> 24, w1 & 0xff);
  };
}
