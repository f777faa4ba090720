import { fc, test as fcTest } from '@fast-check/vitest';
import { fromHex, toHex } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { nobleHeaderProtection, nodeHeaderProtection } from '../src/crypto/hp.ts';
import {
  derivePacketKeys,
  initialKeys,
  initialSecrets,
  nextKeyPhase,
  nobleQuicCrypto,
  nodeQuicCrypto,
  QUIC_SUITES,
  type QuicCipherSuite,
} from '../src/crypto/keys.ts';
import {
  openPacket,
  packetNonce,
  protectPacket,
  removeHeaderProtection,
  sealPacket,
} from '../src/crypto/protect.ts';
import { buildRetry, retryIntegrityTag, sealRetry, verifyRetry } from '../src/crypto/retry.ts';
import { parseProtectedHeader } from '../src/packet/header.ts';
import { encodePacketNumber } from '../src/packet/number.ts';
import { arbitraryPacketHeader } from '../src/testing.ts';
import * as A from './vectors/rfc9001.ts';

const hex = fromHex;

for (const qc of [nobleQuicCrypto, nodeQuicCrypto]) {
  describe(`RFC 9001 Appendix A with the ${qc.name} provider`, () => {
    it('A.1: Initial secrets and keys', () => {
      const s = initialSecrets(qc.crypto, hex(A.DCID));
      expect(toHex(s.clientInitialSecret)).toBe(A.CLIENT_INITIAL_SECRET);
      expect(toHex(s.serverInitialSecret)).toBe(A.SERVER_INITIAL_SECRET);
      const { client, server } = initialKeys(qc, hex(A.DCID));
      expect([toHex(client.key), toHex(client.iv), toHex(client.hpKey)]).toEqual([
        A.CLIENT_KEY,
        A.CLIENT_IV,
        A.CLIENT_HP,
      ]);
      expect([toHex(server.key), toHex(server.iv), toHex(server.hpKey)]).toEqual([
        A.SERVER_KEY,
        A.SERVER_IV,
        A.SERVER_HP,
      ]);
    });

    it('A.2: the client Initial, protected byte for byte', () => {
      const { client } = initialKeys(qc, hex(A.DCID));
      const payload = new Uint8Array(A.CLIENT_PAYLOAD_LENGTH);
      payload.set(hex(A.CLIENT_CRYPTO_FRAME));
      expect(toHex(client.hpMask(hex(A.CLIENT_SAMPLE)).subarray(0, 5))).toBe(A.CLIENT_MASK);
      const out = protectPacket(client, hex(A.CLIENT_HEADER), A.CLIENT_PN, payload);
      expect(out.length).toBe(1200);
      expect(toHex(out)).toBe(A.CLIENT_PROTECTED);
    });

    it('A.2: the server opens the client Initial', () => {
      const { client } = initialKeys(qc, hex(A.DCID));
      const packet = hex(A.CLIENT_PROTECTED);
      const info = parseProtectedHeader(packet, 0);
      expect(info.type).toBe('Initial');
      const opened = openPacket(client, packet, info.pnOffset, -1);
      expect(opened?.packetNumber).toBe(A.CLIENT_PN);
      expect(toHex(opened?.header ?? new Uint8Array())).toBe(A.CLIENT_HEADER);
      expect(toHex(opened?.payload.subarray(0, A.CLIENT_CRYPTO_FRAME.length / 2) ?? new Uint8Array())).toBe(
        A.CLIENT_CRYPTO_FRAME,
      );
    });

    it('A.3: the server Initial, both ways', () => {
      const { server } = initialKeys(qc, hex(A.DCID));
      expect(toHex(server.hpMask(hex(A.SERVER_SAMPLE)).subarray(0, 5))).toBe(A.SERVER_MASK);
      const out = protectPacket(server, hex(A.SERVER_HEADER), A.SERVER_PN, hex(A.SERVER_PAYLOAD));
      expect(toHex(out)).toBe(A.SERVER_PROTECTED);
      const info = parseProtectedHeader(out, 0);
      const opened = openPacket(server, out, info.pnOffset, 0);
      expect(opened?.packetNumber).toBe(1);
      expect(toHex(opened?.payload ?? new Uint8Array())).toBe(A.SERVER_PAYLOAD);
    });

    it('A.4: the Retry integrity tag', () => {
      const retry = hex(A.RETRY);
      const body = retry.subarray(0, retry.length - 16);
      expect(toHex(retryIntegrityTag(qc.crypto, hex(A.DCID), body))).toBe(A.RETRY_TAG);
      expect(toHex(sealRetry(qc.crypto, hex(A.DCID), body))).toBe(A.RETRY);
      const built = buildRetry(qc.crypto, hex(A.DCID), {
        version: 1,
        unusedBits: 0xf,
        dcid: new Uint8Array(0),
        scid: hex('f067a5502a4262b5'),
        retryToken: new TextEncoder().encode('token'),
      });
      expect(toHex(built)).toBe(A.RETRY);
      expect(verifyRetry(qc.crypto, hex(A.DCID), retry)).toBe(true);
      // A tag for another ODCID, or a changed token, does not verify (§5.8).
      expect(verifyRetry(qc.crypto, hex('0102030405060708'), retry)).toBe(false);
      const tampered = retry.slice();
      tampered[16] = tampered[16]! ^ 1;
      expect(verifyRetry(qc.crypto, hex(A.DCID), tampered)).toBe(false);
    });

    it('A.5: ChaCha20-Poly1305 short header packet and its key update', () => {
      const keys = derivePacketKeys(qc, 'TLS_CHACHA20_POLY1305_SHA256', hex(A.CHACHA_SECRET));
      expect([toHex(keys.key), toHex(keys.iv), toHex(keys.hpKey)]).toEqual([
        A.CHACHA_KEY,
        A.CHACHA_IV,
        A.CHACHA_HP,
      ]);
      expect(toHex(packetNonce(keys.iv, A.CHACHA_PN))).toBe(A.CHACHA_NONCE);
      const out = protectPacket(keys, hex(A.CHACHA_HEADER), A.CHACHA_PN, hex(A.CHACHA_PAYLOAD));
      expect(toHex(out)).toBe(A.CHACHA_PROTECTED);
      expect(toHex(out.subarray(5, 21))).toBe(A.CHACHA_SAMPLE);
      const opened = openPacket(keys, out, 1, A.CHACHA_PN - 1);
      expect(opened?.packetNumber).toBe(A.CHACHA_PN);
      expect(toHex(opened?.payload ?? new Uint8Array())).toBe(A.CHACHA_PAYLOAD);
      // §6.1: secret_<n+1> = HKDF-Expand-Label(secret_<n>, "quic ku", "", 32); hp key unchanged.
      const next = nextKeyPhase(qc, keys);
      expect(toHex(next.secret)).toBe(A.CHACHA_KU);
      expect(toHex(next.hpKey)).toBe(A.CHACHA_HP);
      expect(toHex(next.key)).not.toBe(A.CHACHA_KEY);
      // The old phase's keys do not open the new phase's packets.
      const updated = protectPacket(next, hex(A.CHACHA_HEADER), A.CHACHA_PN, hex(A.CHACHA_PAYLOAD));
      expect(openPacket(keys, updated, 1, A.CHACHA_PN - 1)).toBeUndefined();
      expect(openPacket(next, updated, 1, A.CHACHA_PN - 1)?.packetNumber).toBe(A.CHACHA_PN);
    });

    it('rejects a tampered packet (AEAD) and a packet too short to sample', () => {
      const { client } = initialKeys(qc, hex(A.DCID));
      const packet = hex(A.CLIENT_PROTECTED);
      packet[100] = packet[100]! ^ 0x80;
      expect(openPacket(client, packet, 18, -1)).toBeUndefined();
      expect(() => openPacket(client, hex(A.CLIENT_PROTECTED).subarray(0, 30), 18, -1)).toThrow(/sample/);
    });
  });
}

describe('header protection providers agree', () => {
  fcTest.prop([
    fc.uint8Array({ minLength: 16, maxLength: 16 }),
    fc.uint8Array({ minLength: 32, maxLength: 32 }),
    fc.uint8Array({ minLength: 16, maxLength: 16 }),
  ])('AES-128, AES-256 and ChaCha20 masks are identical', (k16, k32, sample) => {
    expect(toHex(nobleHeaderProtection.aesMask(k16)(sample))).toBe(
      toHex(nodeHeaderProtection.aesMask(k16)(sample)),
    );
    expect(toHex(nobleHeaderProtection.aesMask(k32)(sample))).toBe(
      toHex(nodeHeaderProtection.aesMask(k32)(sample)),
    );
    expect(toHex(nobleHeaderProtection.chacha20Mask(k32)(sample))).toBe(
      toHex(nodeHeaderProtection.chacha20Mask(k32)(sample)),
    );
  });
  it('the ChaCha20 counter is the sample’s first four bytes, little-endian, up to 2^32-1', () => {
    const key = new Uint8Array(32).fill(7);
    const sample = fromHex('ffffffff000102030405060708090a0b');
    expect(toHex(nobleHeaderProtection.chacha20Mask(key)(sample))).toBe(
      toHex(nodeHeaderProtection.chacha20Mask(key)(sample)),
    );
  });
});

describe('protect/open round trip for every suite and both providers', () => {
  const suites = Object.keys(QUIC_SUITES) as QuicCipherSuite[];
  fcTest.prop([
    fc.constantFrom(...suites),
    fc.constantFrom(nobleQuicCrypto, nodeQuicCrypto),
    arbitraryPacketHeader(8),
    fc.uint8Array({ minLength: 48, maxLength: 48 }),
    fc.uint8Array({ minLength: 4, maxLength: 200 }),
    fc.integer({ min: 0, max: 2 ** 40 }),
  ])(
    'open(seal(packet)) gives the packet back, across providers',
    (suite, qc, header, secret, payload, pn) => {
      const s = QUIC_SUITES[suite];
      const sec = secret.subarray(0, s.hashLength);
      const sender = derivePacketKeys(qc, suite, sec);
      const receiver = derivePacketKeys(
        qc === nobleQuicCrypto ? nodeQuicCrypto : nobleQuicCrypto,
        suite,
        sec,
      );
      const largestAcked = pn > 0 ? pn - 1 : undefined;
      const { truncated, length } = encodePacketNumber(pn, largestAcked);
      const h = { ...header, packetNumberLength: length, truncatedPacketNumber: truncated };
      const packet = sealPacket(sender, h, pn, payload);
      const info = parseProtectedHeader(packet, 8);
      const opened = openPacket(receiver, packet, info.pnOffset, pn - 1);
      expect(opened?.packetNumber).toBe(pn);
      expect(toHex(opened?.payload ?? new Uint8Array())).toBe(toHex(payload));
      const unmasked = removeHeaderProtection(receiver.hpMask, packet, info.pnOffset);
      expect(unmasked.packetNumberLength).toBe(length);
    },
  );
});
