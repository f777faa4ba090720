import { fromHex, toHex } from '@stepwire/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AlertDescription, TlsAlertError } from '../src/codec/alert.ts';
import { ContentType } from '../src/codec/common.ts';
import { MAX_PLAINTEXT } from '../src/codec/record.ts';
import { CIPHER_SUITES, hkdfLabel, nextTrafficSecret, trafficKeys } from '../src/keyschedule.ts';
import { RecordProtection } from '../src/record.ts';
import { PROVIDERS } from './providers.ts';

const alertOf = (f: () => unknown): number | undefined => {
  try {
    f();
  } catch (e) {
    if (e instanceof TlsAlertError) return e.description;
    throw e;
  }
  return undefined;
};

describe.each(PROVIDERS)('record protection ($name)', (c) => {
  const suites = [...CIPHER_SUITES.values()];

  it('opens what it seals, for every suite, type and padding (RFC 8446 §5.2, §5.4)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...suites),
        fc.uint8Array({ minLength: 48, maxLength: 48 }),
        fc.array(
          fc.record({
            type: fc.constantFrom(ContentType.handshake, ContentType.alert, ContentType.application_data),
            content: fc.uint8Array({ maxLength: 200 }),
            padding: fc.integer({ min: 0, max: 300 }),
          }),
          { minLength: 1, maxLength: 5 },
        ),
        (s, secret48, recs) => {
          const secret = secret48.subarray(0, s.hashLength);
          const w = new RecordProtection(c, s, secret);
          const r = new RecordProtection(c, s, secret);
          for (const rec of recs) {
            const wire = w.seal(rec.type, rec.content, rec.padding);
            expect(wire.length).toBe(5 + rec.content.length + 1 + rec.padding + 16);
            expect(toHex(wire.subarray(0, 3))).toBe('170303');
            const o = r.open(wire);
            expect(o.type).toBe(rec.type);
            expect(toHex(o.content)).toBe(toHex(rec.content));
          }
          expect(r.sequenceNumber).toBe(BigInt(recs.length));
        },
      ),
      { numRuns: 60 },
    );
  });

  const suite = CIPHER_SUITES.get(0x1301)!;
  const secret = new Uint8Array(32).fill(7);

  it('rejects tampering, a wrong key and a wrong sequence number with bad_record_mac', () => {
    const wire = new RecordProtection(c, suite, secret).seal(
      ContentType.application_data,
      fromHex('68656c6c6f'),
    );
    for (let i = 0; i < wire.length; i++) {
      const bad = wire.slice();
      bad[i] = bad[i]! ^ 1;
      const alert = alertOf(() => new RecordProtection(c, suite, secret).open(bad));
      // Flipping the type byte or the length is caught before decryption.
      expect([
        AlertDescription.bad_record_mac,
        AlertDescription.unexpected_message,
        AlertDescription.decode_error,
      ]).toContain(alert);
    }
    expect(alertOf(() => new RecordProtection(c, suite, new Uint8Array(32)).open(wire))).toBe(
      AlertDescription.bad_record_mac,
    );
    expect(alertOf(() => new RecordProtection(c, suite, secret, 1n).open(wire))).toBe(
      AlertDescription.bad_record_mac,
    );
  });

  it('refuses an all-padding inner plaintext and oversized records', () => {
    // Seal a record whose inner plaintext is only zeros by sealing type 0 bytes by hand.
    const { key, iv } = trafficKeys(c, suite, secret);
    const aead = c.aead(suite.aead, key);
    const header = fromHex('1703030014');
    const sealed = aead.seal(iv, header, new Uint8Array(4));
    const wire = new Uint8Array([...header, ...sealed]);
    expect(alertOf(() => new RecordProtection(c, suite, secret).open(wire))).toBe(
      AlertDescription.unexpected_message,
    );
    // 2^14 + 2 bytes of inner plaintext: authentic but too long.
    const n = MAX_PLAINTEXT + 2 + 16;
    const bigHeader = new Uint8Array([23, 3, 3, n >> 8, n & 0xff]);
    const inner = new Uint8Array(MAX_PLAINTEXT + 2).fill(23);
    const big = new Uint8Array([...bigHeader, ...aead.seal(iv, bigHeader, inner)]);
    expect(alertOf(() => new RecordProtection(c, suite, secret).open(big))).toBe(
      AlertDescription.record_overflow,
    );
    const tooLong = new Uint8Array(5 + MAX_PLAINTEXT + 257);
    tooLong.set([23, 3, 3, (MAX_PLAINTEXT + 257) >> 8, (MAX_PLAINTEXT + 257) & 0xff]);
    expect(alertOf(() => new RecordProtection(c, suite, secret).open(tooLong))).toBe(
      AlertDescription.record_overflow,
    );
    expect(() => new RecordProtection(c, suite, secret).seal(23, new Uint8Array(MAX_PLAINTEXT), 1)).toThrow(
      RangeError,
    );
    expect(new RecordProtection(c, suite, secret).seal(23, new Uint8Array(MAX_PLAINTEXT)).length).toBe(
      5 + MAX_PLAINTEXT + 17,
    );
  });

  it('XORs the 64-bit sequence number into the IV and never wraps it (RFC 8446 §5.3)', () => {
    const { iv } = trafficKeys(c, suite, secret);
    const p = new RecordProtection(c, suite, secret, 0x0102030405060708n);
    const n = p.nonce();
    const expected = iv.slice();
    for (let i = 0; i < 8; i++) expected[4 + i] = expected[4 + i]! ^ (i + 1);
    expect(toHex(n)).toBe(toHex(expected));
    // Carry from the low to the high word.
    const q = new RecordProtection(c, suite, secret, 0xffffffffn);
    q.seal(23, new Uint8Array(1));
    expect(q.sequenceNumber).toBe(0x100000000n);
    // The last usable number is 2^64-1; after it the key must not be used again.
    const last = new RecordProtection(c, suite, secret, 0xffffffffffffffffn);
    expect(last.keyUpdateDue).toBe(true);
    const wire = last.seal(23, fromHex('01'));
    expect(new RecordProtection(c, suite, secret, 0xffffffffffffffffn).open(wire).content).toEqual(
      fromHex('01'),
    );
    expect(alertOf(() => last.seal(23, fromHex('01')))).toBe(AlertDescription.internal_error);
  });

  it('derives the next traffic secret with "traffic upd" (RFC 8446 §7.2)', () => {
    const next = nextTrafficSecret(c, 'sha256', secret);
    expect(toHex(next)).toBe(
      toHex(c.hkdfExpand('sha256', secret, hkdfLabel('traffic upd', new Uint8Array(0), 32), 32)),
    );
    // uint16 length 32, label "tls13 traffic upd" (17 bytes), empty context.
    expect(toHex(hkdfLabel('traffic upd', new Uint8Array(0), 32))).toBe(
      `002011${toHex(new TextEncoder().encode('tls13 traffic upd'))}00`,
    );
    expect(toHex(next)).not.toBe(toHex(secret));
    expect(nextTrafficSecret(c, 'sha384', new Uint8Array(48)).length).toBe(48);
  });
});
