/**
 * The fast paths of the frame codec and packet protection: a payload encoded in one
 * pre-sized buffer, frame data decoded as views of a decrypted payload, the packet AEAD
 * sealing straight into the packet, and ChaCha20 header protection computed in TypeScript
 * by the node provider. Each must give exactly what the plain path gives.
 */
import { fc, test as fcTest } from '@fast-check/vitest';
import { nobleCrypto, nodeCrypto } from '@stepwire/tls';
import { bytesEqual, concatBytes, ParseError } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { nobleHeaderProtection, nodeHeaderProtection } from '../src/crypto/hp.ts';
import { derivePacketKeys, nobleQuicCrypto, nodeQuicCrypto } from '../src/crypto/keys.ts';
import { openPacket, sealPacket } from '../src/crypto/protect.ts';
import { decodeFrames, encodeFrame, encodeFrames } from '../src/frames/frame.ts';
import { parseProtectedHeader } from '../src/packet/header.ts';
import { arbitraryFrames } from '../src/testing.ts';

describe('frame codec fast paths', () => {
  fcTest.prop([arbitraryFrames])('encodeFrames is the frames encoded one by one, back to back', (frames) => {
    expect(bytesEqual(encodeFrames(frames), concatBytes(...frames.map(encodeFrame)))).toBe(true);
  });

  fcTest.prop([arbitraryFrames])('decoding with views gives the same frames as decoding copies', (frames) => {
    const payload = encodeFrames(frames);
    expect(decodeFrames(payload, 0, true)).toEqual(decodeFrames(payload));
  });

  fcTest.prop([fc.uint8Array({ maxLength: 200 })])(
    'decoding arbitrary bytes with views returns or throws ParseError, like copies',
    (bytes) => {
      let copies: unknown;
      let views: unknown;
      try {
        copies = decodeFrames(bytes);
      } catch (e) {
        expect(e).toBeInstanceOf(ParseError);
        copies = 'error';
      }
      try {
        views = decodeFrames(bytes, 0, true);
      } catch (e) {
        expect(e).toBeInstanceOf(ParseError);
        views = 'error';
      }
      expect(views).toEqual(copies);
    },
  );

  it('views share the payload and copies do not', () => {
    const payload = encodeFrames([
      {
        type: 'STREAM',
        streamId: 4,
        offset: 0,
        hasOffset: false,
        hasLength: false,
        fin: false,
        data: Uint8Array.of(1, 2, 3),
      },
    ]);
    const [viewed] = decodeFrames(payload, 0, true);
    const [copied] = decodeFrames(payload);
    payload[payload.length - 1] = 9;
    expect(viewed?.type === 'STREAM' && [...viewed.data]).toEqual([1, 2, 9]);
    expect(copied?.type === 'STREAM' && [...copied.data]).toEqual([1, 2, 3]);
  });
});

describe('packet protection fast paths', () => {
  const nonce = new Uint8Array(12).fill(1);
  const aad = Uint8Array.of(0x40, 1, 2, 3, 4);

  for (const name of ['AES_128_GCM', 'AES_256_GCM', 'CHACHA20_POLY1305'] as const) {
    fcTest.prop([fc.uint8Array({ maxLength: 1500 }), fc.uint8Array({ maxLength: 40 })], { numRuns: 40 })(
      `${name}: the node AEAD's sealInto (a trailer, at an offset) and open agree with noble's`,
      (plaintext, trailer) => {
        const key = new Uint8Array(name === 'AES_128_GCM' ? 16 : 32).fill(5);
        const ours = nodeCrypto.aead(name, key);
        const tls = nobleCrypto.aead(name, key);
        const sealed = tls.seal(nonce, aad, concatBytes(plaintext, trailer));
        const out = new Uint8Array(3 + plaintext.length + trailer.length + 16).fill(0xee);
        ours.sealInto?.(nonce, aad, plaintext, trailer, out, 3);
        expect(bytesEqual(out.subarray(3), sealed)).toBe(true);
        expect(bytesEqual(ours.seal(nonce, aad, plaintext), tls.seal(nonce, aad, plaintext))).toBe(true);
        const opened = ours.open(nonce, aad, sealed);
        expect(opened && bytesEqual(opened, concatBytes(plaintext, trailer))).toBe(true);
        // A flipped bit anywhere fails authentication: null, not an exception.
        const bad = sealed.slice();
        bad[bad.length - 1]! ^= 1;
        expect(ours.open(nonce, aad, bad)).toBeNull();
        expect(ours.open(nonce, aad, sealed.subarray(0, 15))).toBeNull();
      },
    );
  }

  fcTest.prop([
    fc.uint8Array({ minLength: 32, maxLength: 32 }),
    fc.uint8Array({ minLength: 16, maxLength: 16 }),
  ])('the node provider’s ChaCha20 mask is OpenSSL’s chacha20 keystream', async (key, sample) => {
    const { createCipheriv } = await import('node:crypto');
    // OpenSSL's chacha20 IV is the sample itself: 32-bit little-endian counter, 96-bit nonce.
    const openssl = createCipheriv('chacha20', key, sample).update(new Uint8Array(5));
    expect([...nodeHeaderProtection.chacha20Mask(key)(sample).subarray(0, 5)]).toEqual([...openssl]);
  });

  it('a counter of 2^32-1 in the sample (the block noble’s chacha20() refuses) still masks', () => {
    const key = new Uint8Array(32).fill(7);
    const sample = new Uint8Array(16).fill(0xff);
    expect(nodeHeaderProtection.chacha20Mask(key)(sample)).toEqual(
      nobleHeaderProtection.chacha20Mask(key)(sample),
    );
  });

  for (const suite of ['TLS_AES_128_GCM_SHA256', 'TLS_CHACHA20_POLY1305_SHA256'] as const) {
    it(`${suite}: node packets open with noble keys and the other way round`, () => {
      const secret = new Uint8Array(32).fill(9);
      const node = derivePacketKeys(nodeQuicCrypto, suite, secret);
      const noble = derivePacketKeys(nobleQuicCrypto, suite, secret);
      const payload = new Uint8Array(1100).map((_, i) => i & 0xff);
      const header = {
        type: '1-RTT' as const,
        dcid: new Uint8Array(8).fill(3),
        spinBit: false,
        reservedBits: 0,
        keyPhase: false,
        packetNumberLength: 2 as const,
        truncatedPacketNumber: 77,
      };
      for (const [tx, rx] of [
        [node, noble],
        [noble, node],
      ] as const) {
        const packet = sealPacket(tx, header, 77, payload);
        const opened = openPacket(rx, packet, parseProtectedHeader(packet, 8).pnOffset, 76);
        expect(opened && bytesEqual(opened.payload, payload)).toBe(true);
      }
    });
  }
});
