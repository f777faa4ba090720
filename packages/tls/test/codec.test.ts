import { fromHex, ParseError } from '@stepwire/wire';
import { decodesOrParseError } from '@stepwire/wire/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AlertDescription, alertName, decodeAlert, encodeAlert } from '../src/codec/alert.ts';
import { ContentType } from '../src/codec/common.ts';
import { type Extension, encodeExtensions } from '../src/codec/extensions.ts';
import {
  decodeHandshake,
  decodeHandshakeFrame,
  encodeHandshake,
  encodeHandshakeFrame,
  HandshakeReassembler,
  HELLO_RETRY_REQUEST_RANDOM,
} from '../src/codec/handshake.ts';
import {
  decodeRecordHeader,
  decodeTLSCiphertext,
  decodeTLSInnerPlaintext,
  decodeTLSPlaintext,
  encodeRecordHeader,
  encodeTLSCiphertext,
  encodeTLSInnerPlaintext,
  encodeTLSPlaintext,
  MAX_PLAINTEXT,
  RecordReader,
} from '../src/codec/record.ts';
import {
  arbitraryAlert,
  arbitraryCertificate,
  arbitraryClientHello,
  arbitraryHandshakeMessage,
  arbitraryHelloRetryRequest,
  arbitraryRecordHeader,
  arbitraryServerHello,
  arbitraryTLSCiphertext,
  arbitraryTLSInnerPlaintext,
  arbitraryTLSPlaintext,
} from '../src/testing.ts';

const RUNS = { numRuns: 300 };

/** A valid encoding with one byte changed or cut short: the decoder must still be total. */
const mutated = (enc: fc.Arbitrary<Uint8Array>) =>
  enc.chain((b) =>
    fc.oneof(
      fc.integer({ min: 0, max: Math.max(0, b.length - 1) }).map((n) => b.subarray(0, n)),
      fc
        .tuple(fc.integer({ min: 0, max: Math.max(0, b.length - 1) }), fc.integer({ min: 1, max: 255 }))
        .map(([i, x]) => {
          const c = b.slice();
          if (c.length > 0) c[i] = c[i]! ^ x;
          return c;
        }),
    ),
  );

describe('record layer codecs (RFC 8446 §5)', () => {
  it('round-trips headers, plaintext, ciphertext, inner plaintext', () => {
    fc.assert(
      fc.property(
        arbitraryRecordHeader,
        (h) => void expect(decodeRecordHeader(encodeRecordHeader(h))).toEqual(h),
      ),
      RUNS,
    );
    // Byte arrays up to 2^14+256 long: compare them as bytes, deep equality on them is slow.
    const same = (a: object, b: object) => {
      const flat = (o: object) =>
        JSON.stringify(o, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v));
      return flat(a) === flat(b);
    };
    fc.assert(
      fc.property(arbitraryTLSPlaintext, (p) => same(decodeTLSPlaintext(encodeTLSPlaintext(p)), p)),
      RUNS,
    );
    fc.assert(
      fc.property(arbitraryTLSCiphertext, (c) => same(decodeTLSCiphertext(encodeTLSCiphertext(c)), c)),
      RUNS,
    );
    fc.assert(
      fc.property(arbitraryTLSInnerPlaintext, (p) =>
        same(decodeTLSInnerPlaintext(encodeTLSInnerPlaintext(p)), p),
      ),
      RUNS,
    );
  });

  it('decodes arbitrary bytes or throws ParseError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        decodesOrParseError(decodeRecordHeader, b);
        decodesOrParseError(decodeTLSPlaintext, b);
        decodesOrParseError(decodeTLSCiphertext, b);
        decodesOrParseError(decodeTLSInnerPlaintext, b);
        return true;
      }),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(mutated(arbitraryTLSPlaintext.map(encodeTLSPlaintext)), (b) =>
        decodesOrParseError(decodeTLSPlaintext, b),
      ),
      RUNS,
    );
  });

  it('enforces the 2^14 and 2^14+256 limits and type rules', () => {
    const big = new Uint8Array(5 + MAX_PLAINTEXT + 1);
    big.set([23, 3, 3, (MAX_PLAINTEXT + 1) >> 8, (MAX_PLAINTEXT + 1) & 0xff]);
    expect(() => decodeTLSPlaintext(big)).toThrow(/record_overflow/);
    // The same length is fine for a protected record.
    expect(decodeTLSCiphertext(big).encryptedRecord.length).toBe(MAX_PLAINTEXT + 1);
    expect(() => decodeRecordHeader(fromHex('1703034101'))).toThrow(/2\^14\+256/);
    expect(decodeRecordHeader(fromHex('1703034100')).length).toBe(0x4100);
    expect(() => decodeRecordHeader(fromHex('1803030001'))).toThrow(ParseError);
    expect(() => decodeTLSPlaintext(fromHex('1603030000'))).toThrow(/empty handshake/);
    expect(() => decodeTLSCiphertext(fromHex('160303000100'))).toThrow(/type 23/);
    expect(() =>
      encodeTLSPlaintext({
        type: 23,
        legacyRecordVersion: 0x0303,
        fragment: new Uint8Array(MAX_PLAINTEXT + 1),
      }),
    ).toThrow();
  });

  it('recovers the inner content type under padding (RFC 8446 §5.4)', () => {
    expect(decodeTLSInnerPlaintext(fromHex('010216000000'))).toEqual({
      content: fromHex('0102'),
      type: 22,
      zeros: 3,
    });
    expect(decodeTLSInnerPlaintext(fromHex('17'))).toEqual({
      content: new Uint8Array(0),
      type: 23,
      zeros: 0,
    });
    expect(() => decodeTLSInnerPlaintext(new Uint8Array(10))).toThrow(/no non-zero content type/);
    expect(() => decodeTLSInnerPlaintext(new Uint8Array(0))).toThrow(ParseError);
    expect(() => decodeTLSInnerPlaintext(new Uint8Array(MAX_PLAINTEXT + 2).fill(1))).toThrow(
      /record_overflow/,
    );
  });

  it('RecordReader cuts any chunking of a stream into the same records', () => {
    fc.assert(
      fc.property(
        fc.array(
          arbitraryTLSPlaintext.filter((p) => p.fragment.length < 1000),
          { minLength: 1, maxLength: 5 },
        ),
        fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 20 }),
        (recs, cuts) => {
          const stream = Buffer.concat(recs.map(encodeTLSPlaintext));
          const rr = new RecordReader();
          const got: Uint8Array[] = [];
          let at = 0;
          let i = 0;
          while (at < stream.length) {
            const n = cuts[i++ % cuts.length]!;
            got.push(...rr.push(new Uint8Array(stream.subarray(at, at + n))));
            at += n;
          }
          expect(got.map((g) => decodeTLSPlaintext(g))).toEqual(recs);
          expect(rr.buffered).toBe(0);
        },
      ),
      { numRuns: 100 },
    );
    // An oversized header is refused before its body arrives: the buffer cannot be grown by lying.
    expect(() => new RecordReader().push(fromHex('17030350'))).not.toThrow();
    expect(() => new RecordReader().push(fromHex('1703035000'))).toThrow(ParseError);
  });
});

describe('alerts (RFC 8446 §6)', () => {
  it('round-trips and is total', () => {
    fc.assert(
      fc.property(arbitraryAlert, (a) => void expect(decodeAlert(encodeAlert(a))).toEqual(a)),
      RUNS,
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4 }), (b) => decodesOrParseError(decodeAlert, b)),
      RUNS,
    );
  });
  it('names every RFC 8446 description', () => {
    expect(decodeAlert(fromHex('0100'))).toEqual({ level: 1, description: AlertDescription.close_notify });
    const expected: Record<number, string> = {
      0: 'close_notify',
      10: 'unexpected_message',
      20: 'bad_record_mac',
      22: 'record_overflow',
      40: 'handshake_failure',
      42: 'bad_certificate',
      43: 'unsupported_certificate',
      44: 'certificate_revoked',
      45: 'certificate_expired',
      46: 'certificate_unknown',
      47: 'illegal_parameter',
      48: 'unknown_ca',
      49: 'access_denied',
      50: 'decode_error',
      51: 'decrypt_error',
      70: 'protocol_version',
      71: 'insufficient_security',
      80: 'internal_error',
      86: 'inappropriate_fallback',
      90: 'user_canceled',
      109: 'missing_extension',
      110: 'unsupported_extension',
      112: 'unrecognized_name',
      113: 'bad_certificate_status_response',
      115: 'unknown_psk_identity',
      116: 'certificate_required',
      120: 'no_application_protocol',
    };
    for (const [code, name] of Object.entries(expected)) expect(alertName(Number(code))).toBe(name);
    expect(alertName(200)).toBe('alert(200)');
  });
});

describe('handshake codecs (RFC 8446 §4)', () => {
  it('round-trips every message type', () => {
    fc.assert(
      fc.property(
        arbitraryHandshakeMessage,
        (m) => void expect(decodeHandshake(encodeHandshake(m))).toEqual(m),
      ),
      {
        numRuns: 1000,
      },
    );
  });

  it('decodes arbitrary and mutated bytes or throws ParseError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => decodesOrParseError(decodeHandshake, b)),
      { numRuns: 1000 },
    );
    // Random bodies behind a correct header reach each message decoder.
    fc.assert(
      fc.property(
        fc.constantFrom(1, 2, 4, 5, 8, 11, 13, 15, 20, 24),
        fc.uint8Array({ maxLength: 200 }),
        (t, body) => decodesOrParseError(decodeHandshake, encodeHandshakeFrame({ msgType: t, body })),
      ),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(mutated(arbitraryHandshakeMessage.map(encodeHandshake)), (b) =>
        decodesOrParseError(decodeHandshake, b),
      ),
      {
        numRuns: 1000,
      },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 20 }), (b) => decodesOrParseError(decodeHandshakeFrame, b)),
      RUNS,
    );
  });

  it('tells a HelloRetryRequest from a ServerHello by its random (RFC 8446 §4.1.3)', () => {
    fc.assert(
      fc.property(arbitraryHelloRetryRequest, (h) => {
        const enc = encodeHandshake(h);
        expect(enc.subarray(6, 38)).toEqual(HELLO_RETRY_REQUEST_RANDOM);
        expect(decodeHandshake(enc).msgType).toBe('hello_retry_request');
      }),
      { numRuns: 50 },
    );
    fc.assert(
      fc.property(
        arbitraryServerHello,
        (s) => void expect(decodeHandshake(encodeHandshake(s)).msgType).toBe('server_hello'),
      ),
      {
        numRuns: 50,
      },
    );
  });

  const withExtensions = (exts: Extension[]) =>
    fc
      .sample(arbitraryClientHello, { numRuns: 1, seed: 42 })
      .map((ch) => encodeHandshake({ ...ch, extensions: exts }))[0]!;
  const sv: Extension = { type: 'supported_versions', versions: [0x0304, 0x0303] };

  it('rejects duplicate extensions (RFC 8446 §4.2)', () => {
    expect(() =>
      decodeHandshake(withExtensions([sv, { type: 'raw', code: 0xaaaa, data: new Uint8Array(4) }])),
    ).not.toThrow();
    expect(() =>
      decodeHandshake(withExtensions([sv, { type: 'raw', code: 43, data: fromHex('020304') }])),
    ).toThrow(/duplicate extension 43/);
  });

  it('requires pre_shared_key to be the last ClientHello extension (RFC 8446 §4.2.11)', () => {
    const psk: Extension = {
      type: 'pre_shared_key',
      identities: [{ identity: fromHex('01'), obfuscatedTicketAge: 7 }],
      binders: [new Uint8Array(32)],
    };
    expect(() => decodeHandshake(withExtensions([sv, psk]))).not.toThrow();
    expect(() => decodeHandshake(withExtensions([psk, sv]))).toThrow(/not the last/);
    expect(() => decodeHandshake(withExtensions([sv, { ...psk, binders: [] }]))).toThrow(ParseError);
  });

  it('enforces extension field limits', () => {
    expect(() => decodeHandshake(withExtensions([sv, { type: 'record_size_limit', limit: 63 }]))).toThrow(
      /below 64/,
    );
    expect(() =>
      decodeHandshake(
        withExtensions([
          sv,
          {
            type: 'key_share',
            clientShares: [
              { group: 29, keyExchange: fromHex('01') },
              { group: 29, keyExchange: fromHex('02') },
            ],
          },
        ]),
      ),
    ).toThrow(/duplicate share/);
    // ClientHello extensions<8..2^16-1>.
    expect(() =>
      decodeHandshake(withExtensions([{ type: 'raw', code: 0xaaaa, data: new Uint8Array(3) }])),
    ).toThrow(/outside 8/);
    // RFC 7301 §3.1: a server selects exactly one protocol.
    const ee = fromHex(
      `08000000${Buffer.from(encodeExtensions([{ type: 'alpn', protocols: ['h2', 'http/1.1'] }])).toString('hex')}`,
    );
    ee[3] = ee.length - 4;
    expect(() => decodeHandshake(ee)).toThrow(/not one/);
    expect(() => decodeHandshake(fromHex('1800000102'))).toThrow(/invalid value 2/);
  });

  it('keeps per-entry Certificate extensions', () => {
    fc.assert(
      fc.property(arbitraryCertificate, (c) => {
        const d = decodeHandshake(encodeHandshake(c));
        expect(d).toEqual(c);
      }),
      { numRuns: 100 },
    );
  });

  it('HandshakeReassembler splits and coalesces messages across fragments', () => {
    fc.assert(
      fc.property(
        fc.array(arbitraryHandshakeMessage, { minLength: 1, maxLength: 4 }),
        fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 10 }),
        (msgs, cuts) => {
          const stream = Buffer.concat(msgs.map(encodeHandshake));
          const r = new HandshakeReassembler();
          const out: Uint8Array[] = [];
          let at = 0;
          let i = 0;
          while (at < stream.length) {
            const n = cuts[i++ % cuts.length]!;
            out.push(...r.push(new Uint8Array(stream.subarray(at, at + n))));
            at += n;
          }
          expect(out.map((m) => decodeHandshake(m))).toEqual(msgs);
          expect(r.empty).toBe(true);
        },
      ),
      { numRuns: 100 },
    );
    const small = new HandshakeReassembler(100);
    expect(() => small.push(fromHex('0b000065'))).toThrow(/exceeds the 100-byte cap/);
  });

  it('content type numbers', () => {
    expect(ContentType.application_data).toBe(23);
  });
});
