import { fromHex, toHex, utf8 } from '@stepwire/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type AeadName, KeyShareError, nobleCrypto, nodeCrypto } from '../src/crypto/index.ts';
import { PROVIDERS } from './providers.ts';

describe.each(PROVIDERS)('crypto provider $name', (c) => {
  it('hashes (FIPS 180-2 "abc")', () => {
    expect(toHex(c.hash('sha256', utf8('abc')))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    expect(toHex(c.hash('sha384', utf8('abc')))).toBe(
      'cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7',
    );
  });

  it('HKDF (RFC 5869 A.1)', () => {
    const ikm = new Uint8Array(22).fill(0x0b);
    const salt = fromHex('000102030405060708090a0b0c');
    const info = fromHex('f0f1f2f3f4f5f6f7f8f9');
    const prk = c.hkdfExtract('sha256', salt, ikm);
    expect(toHex(prk)).toBe('077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5');
    expect(toHex(c.hkdfExpand('sha256', prk, info, 42))).toBe(
      '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
    );
    // HKDF-Extract is HMAC keyed with the salt.
    expect(toHex(c.hmac('sha256', salt, ikm))).toBe(toHex(prk));
  });

  it('AES-GCM (McGrew-Viega test cases 1 and 2)', () => {
    const a = c.aead('AES_128_GCM', new Uint8Array(16));
    const nonce = new Uint8Array(12);
    expect(toHex(a.seal(nonce, new Uint8Array(0), new Uint8Array(0)))).toBe(
      '58e2fccefa7e3061367f1d57a4e7455a',
    );
    expect(toHex(a.seal(nonce, new Uint8Array(0), new Uint8Array(16)))).toBe(
      '0388dace60b6a392f328c2b971b2fe78ab6e47d42cec13bdf53a67b21257bddf',
    );
  });

  it('ChaCha20-Poly1305 (RFC 8439 §2.8.2)', () => {
    const key = fromHex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
    const nonce = fromHex('070000004041424344454647');
    const aad = fromHex('50515253c0c1c2c3c4c5c6c7');
    const pt = utf8(
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
    );
    const a = c.aead('CHACHA20_POLY1305', key);
    const sealed = a.seal(nonce, aad, pt);
    expect(toHex(sealed.subarray(0, 16))).toBe('d31a8d34648e60db7b86afbc53ef7ec2');
    expect(toHex(sealed.subarray(sealed.length - 16))).toBe('1ae10b594f09e26a7e902ecbd0600691');
    expect(a.open(nonce, aad, sealed)).toEqual(pt);
  });

  it('X25519 (RFC 7748 §6.1)', () => {
    const alice = c.generateKeyPair(
      'x25519',
      fromHex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'),
    );
    expect(toHex(alice.publicKey)).toBe('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
    const bobPub = fromHex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    expect(toHex(c.sharedSecret('x25519', alice.privateKey, bobPub))).toBe(
      '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742',
    );
  });

  it('rejects degenerate and malformed key shares (RFC 8446 §7.4.2, §4.2.8.2)', () => {
    const kp = c.generateKeyPair('x25519');
    // The all-zero u-coordinate is a small-order point: the result is all zeros.
    expect(() => c.sharedSecret('x25519', kp.privateKey, new Uint8Array(32))).toThrow(KeyShareError);
    expect(() => c.sharedSecret('x25519', kp.privateKey, new Uint8Array(31))).toThrow(KeyShareError);
    const p = c.generateKeyPair('secp256r1');
    expect(p.publicKey.length).toBe(65);
    const compressed = new Uint8Array(65);
    compressed[0] = 2;
    expect(() => c.sharedSecret('secp256r1', p.privateKey, compressed)).toThrow(KeyShareError);
    const offCurve = p.publicKey.slice();
    offCurve[64] = offCurve[64]! ^ 1;
    expect(() => c.sharedSecret('secp256r1', p.privateKey, offCurve)).toThrow(KeyShareError);
  });

  it('agrees on both groups with itself', () => {
    for (const g of ['x25519', 'secp256r1'] as const) {
      const a = c.generateKeyPair(g);
      const b = c.generateKeyPair(g);
      const s1 = c.sharedSecret(g, a.privateKey, b.publicKey);
      expect(s1.length).toBe(32);
      expect(c.sharedSecret(g, b.privateKey, a.publicKey)).toEqual(s1);
      // Re-deriving the public key from the private key gives the same pair.
      expect(c.generateKeyPair(g, a.privateKey).publicKey).toEqual(a.publicKey);
    }
  });

  it('random bytes have the asked length and differ', () => {
    expect(c.randomBytes(32).length).toBe(32);
    expect(c.randomBytes(32)).not.toEqual(c.randomBytes(32));
  });

  it('AEAD open rejects any flipped bit and short input', () => {
    for (const name of ['AES_128_GCM', 'AES_256_GCM', 'CHACHA20_POLY1305'] as AeadName[]) {
      const key = c.randomBytes(name === 'AES_128_GCM' ? 16 : 32);
      const a = c.aead(name, key);
      const nonce = c.randomBytes(12);
      const aad = utf8('header');
      const sealed = a.seal(nonce, aad, utf8('hello'));
      for (let i = 0; i < sealed.length; i++) {
        const bad = sealed.slice();
        bad[i] = bad[i]! ^ 0x80;
        expect(a.open(nonce, aad, bad)).toBeNull();
      }
      expect(a.open(nonce, utf8('Header'), sealed)).toBeNull();
      expect(a.open(nonce, aad, sealed.subarray(0, 15))).toBeNull();
      expect(a.open(nonce, aad, sealed)).toEqual(utf8('hello'));
    }
  });
});

describe('providers agree', () => {
  const names: AeadName[] = ['AES_128_GCM', 'AES_256_GCM', 'CHACHA20_POLY1305'];
  it('AEAD: noble seals what node opens and the bytes are the same', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...names),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
        fc.uint8Array({ maxLength: 40 }),
        fc.uint8Array({ maxLength: 300 }),
        (name, key32, nonce, aad, pt) => {
          const key = name === 'AES_128_GCM' ? key32.subarray(0, 16) : key32;
          const s1 = nobleCrypto.aead(name, key).seal(nonce, aad, pt);
          const s2 = nodeCrypto.aead(name, key).seal(nonce, aad, pt);
          expect(toHex(s1)).toBe(toHex(s2));
          expect(nodeCrypto.aead(name, key).open(nonce, aad, s1)).toEqual(pt);
          expect(nobleCrypto.aead(name, key).open(nonce, aad, s2)).toEqual(pt);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('HKDF-Expand and ECDH agree', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('sha256' as const, 'sha384' as const),
        fc.uint8Array({ minLength: 48, maxLength: 48 }),
        fc.uint8Array({ maxLength: 80 }),
        fc.integer({ min: 1, max: 200 }),
        (h, prk48, info, len) => {
          // In TLS the PRK is always a full hash output (noble insists on that).
          const prk = prk48.subarray(0, h === 'sha256' ? 32 : 48);
          expect(nodeCrypto.hkdfExpand(h, prk, info, len)).toEqual(nobleCrypto.hkdfExpand(h, prk, info, len));
        },
      ),
      { numRuns: 100 },
    );
    for (const g of ['x25519', 'secp256r1'] as const) {
      const a = nobleCrypto.generateKeyPair(g);
      const b = nodeCrypto.generateKeyPair(g);
      expect(nodeCrypto.generateKeyPair(g, a.privateKey).publicKey).toEqual(a.publicKey);
      expect(nobleCrypto.sharedSecret(g, a.privateKey, b.publicKey)).toEqual(
        nodeCrypto.sharedSecret(g, b.privateKey, a.publicKey),
      );
    }
  });
});
