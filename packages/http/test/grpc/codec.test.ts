/**
 * gRPC's wire formats: the length-prefixed message (codec laws, a streaming reader that
 * must not care where DATA frames split, the receive limit), grpc-timeout, grpc-message's
 * percent-encoding, and the status mapping tables of PROTOCOL-HTTP2.md and
 * http-grpc-status-mapping.md.
 */
import { ParseError } from '@stepwire/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeGrpcMessage,
  decodeGrpcMessageText,
  decodeGrpcTimeout,
  echoService,
  encodeGrpcMessage,
  encodeGrpcMessageText,
  encodeGrpcTimeout,
  GRPC_TIMEOUT_UNIT_MS,
  GrpcError,
  GrpcMessageReader,
  GrpcStatus,
  grpcStatusFromHttp,
  grpcStatusFromRstStream,
  grpcStatusName,
  grpcTimeoutFromMillis,
  grpcTimeoutToMillis,
} from '../../src/grpc/index.ts';
import {
  arbitraryGrpcMessage,
  arbitraryGrpcStatusMessage,
  arbitraryGrpcTimeout,
} from '../../src/grpc/testing.ts';
import { ErrorCode } from '../../src/h2/errors.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const total = <T>(f: () => T): void => {
  try {
    f();
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
  }
};

describe('Length-Prefixed-Message', () => {
  it('EchoMessage { message: "hi", n: 5 } framed (body bytes as python3-protobuf 4.21 serializes them)', () => {
    const body = echoService.Unary.serializeRequest({ message: 'hi', n: 5 });
    expect(hex(body)).toBe('0a0268691005');
    expect(hex(encodeGrpcMessage({ compressed: false, data: body }))).toBe('00000000060a0268691005');
    expect(hex(encodeGrpcMessage({ compressed: true, data: new Uint8Array(0) }))).toBe('0100000000');
  });

  it('decode(encode(m)) = m', () => {
    fc.assert(
      fc.property(arbitraryGrpcMessage, (m) => {
        expect(decodeGrpcMessage(encodeGrpcMessage(m))).toEqual(m);
      }),
    );
  });

  it('decode of arbitrary bytes returns or throws ParseError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => total(() => decodeGrpcMessage(b))));
  });

  it('a flag other than 0/1, a short prefix, a short body and trailing bytes are ParseErrors', () => {
    expect(() => decodeGrpcMessage(Uint8Array.from([2, 0, 0, 0, 0]))).toThrow(ParseError);
    expect(() => decodeGrpcMessage(Uint8Array.from([0, 0, 0]))).toThrow(ParseError);
    expect(() => decodeGrpcMessage(Uint8Array.from([0, 0, 0, 0, 2, 9]))).toThrow(ParseError);
    expect(() => decodeGrpcMessage(Uint8Array.from([0, 0, 0, 0, 0, 9]))).toThrow(ParseError);
  });
});

describe('GrpcMessageReader', () => {
  it('yields the same messages however the bytes are split into DATA frames', () => {
    fc.assert(
      fc.property(
        fc.array(arbitraryGrpcMessage, { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (messages, cuts) => {
          const bytes = Buffer.concat(messages.map(encodeGrpcMessage));
          const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
          const reader = new GrpcMessageReader();
          const got = [];
          let at = 0;
          for (const p of [...points, bytes.length]) {
            got.push(...reader.push(bytes.subarray(at, p)));
            at = p;
          }
          reader.finish();
          expect(got).toEqual(messages);
        },
      ),
    );
  });

  it('a length over the limit is RESOURCE_EXHAUSTED at the prefix, before the body is held', () => {
    const reader = new GrpcMessageReader(100);
    expect(reader.push(encodeGrpcMessage({ compressed: false, data: new Uint8Array(100) }))).toHaveLength(1);
    let err: unknown;
    try {
      reader.push(Uint8Array.from([0, 0, 0x10, 0, 0]));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GrpcError);
    expect((err as GrpcError).code).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    expect(reader.pending).toBe(0);
  });

  it('a bad flag is INTERNAL; ending inside a message is INTERNAL', () => {
    expect(() => new GrpcMessageReader().push(Uint8Array.from([7, 0, 0, 0, 0]))).toThrow(
      expect.objectContaining({ code: GrpcStatus.INTERNAL }),
    );
    const r = new GrpcMessageReader();
    r.push(Uint8Array.from([0, 0, 0, 0, 4, 1]));
    expect(r.pending).toBe(1);
    expect(() => r.finish()).toThrow(expect.objectContaining({ code: GrpcStatus.INTERNAL }));
  });

  it('arbitrary bytes: messages, or a GrpcError, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        try {
          new GrpcMessageReader(32).push(b);
        } catch (e) {
          expect(e).toBeInstanceOf(GrpcError);
        }
      }),
    );
  });
});

describe('grpc-timeout', () => {
  it('PROTOCOL-HTTP2.md units', () => {
    expect(grpcTimeoutToMillis(decodeGrpcTimeout('1H'))).toBe(3_600_000);
    expect(grpcTimeoutToMillis(decodeGrpcTimeout('2M'))).toBe(120_000);
    expect(grpcTimeoutToMillis(decodeGrpcTimeout('3S'))).toBe(3000);
    expect(grpcTimeoutToMillis(decodeGrpcTimeout('100m'))).toBe(100);
    expect(grpcTimeoutToMillis(decodeGrpcTimeout('1500u'))).toBeCloseTo(1.5);
    expect(grpcTimeoutToMillis(decodeGrpcTimeout('99999999n'))).toBeCloseTo(99.999999);
  });

  it('more than 8 digits, no digits, a sign, or another unit are ParseErrors', () => {
    for (const bad of ['123456789S', 'S', '-1S', '+1S', '1 S', '1x', '1s', '', '1.5S'])
      expect(() => decodeGrpcTimeout(bad), bad).toThrow(ParseError);
  });

  it('decode(encode(t)) = t; decode of any string returns or throws ParseError', () => {
    fc.assert(
      fc.property(arbitraryGrpcTimeout, (t) => {
        expect(decodeGrpcTimeout(encodeGrpcTimeout(t))).toEqual(t);
      }),
    );
    fc.assert(fc.property(fc.string({ maxLength: 12 }), (s) => total(() => decodeGrpcTimeout(s))));
  });

  it('from milliseconds: at most 8 digits, never earlier than asked, the finest unit that fits', () => {
    expect(encodeGrpcTimeout(grpcTimeoutFromMillis(150))).toBe('150000u');
    expect(encodeGrpcTimeout(grpcTimeoutFromMillis(50))).toBe('50000000n');
    expect(encodeGrpcTimeout(grpcTimeoutFromMillis(86_400_000))).toBe('86400000m');
    expect(encodeGrpcTimeout(grpcTimeoutFromMillis(1e9))).toBe('1000000S');
    fc.assert(
      fc.property(fc.double({ min: 0.000001, max: 1e12, noNaN: true }), (ms) => {
        const t = grpcTimeoutFromMillis(ms);
        expect(t.value).toBeLessThanOrEqual(99_999_999);
        expect(grpcTimeoutToMillis(t)).toBeGreaterThanOrEqual(ms * (1 - 1e-9));
        // Rounded up by less than one unit.
        expect(grpcTimeoutToMillis(t) - ms).toBeLessThan(GRPC_TIMEOUT_UNIT_MS[t.unit] * (1 + 1e-9));
      }),
    );
  });
});

describe('grpc-message percent-encoding', () => {
  it('vectors: "%" itself, non-ASCII as UTF-8 bytes, control characters', () => {
    expect(encodeGrpcMessageText('100% done')).toBe('100%25 done');
    expect(encodeGrpcMessageText('ü')).toBe('%C3%BC');
    expect(encodeGrpcMessageText('a\nb')).toBe('a%0Ab');
    expect(encodeGrpcMessageText('plain text ~!')).toBe('plain text ~!');
    expect(decodeGrpcMessageText('%C3%BC%0a')).toBe('ü\n');
  });

  it('decoding is lenient: a "%" not followed by two hex digits stays as it is', () => {
    expect(decodeGrpcMessageText('50%')).toBe('50%');
    expect(decodeGrpcMessageText('%zz%4')).toBe('%zz%4');
  });

  it('decode(encode(s)) = s, and the encoding is printable ASCII', () => {
    fc.assert(
      fc.property(arbitraryGrpcStatusMessage, (s) => {
        const e = encodeGrpcMessageText(s);
        expect(e).toMatch(/^[\x20-\x7e]*$/);
        expect(decodeGrpcMessageText(e)).toBe(s);
      }),
    );
  });
});

describe('status tables', () => {
  it('statuscodes.md numbering', () => {
    expect(GrpcStatus.OK).toBe(0);
    expect(GrpcStatus.DEADLINE_EXCEEDED).toBe(4);
    expect(GrpcStatus.RESOURCE_EXHAUSTED).toBe(8);
    expect(GrpcStatus.UNIMPLEMENTED).toBe(12);
    expect(GrpcStatus.UNAUTHENTICATED).toBe(16);
    expect(grpcStatusName(14)).toBe('UNAVAILABLE');
    expect(grpcStatusName(99)).toBe('STATUS_99');
  });

  it('http-grpc-status-mapping.md', () => {
    const rows: [number, number][] = [
      [400, GrpcStatus.INTERNAL],
      [401, GrpcStatus.UNAUTHENTICATED],
      [403, GrpcStatus.PERMISSION_DENIED],
      [404, GrpcStatus.UNIMPLEMENTED],
      [429, GrpcStatus.UNAVAILABLE],
      [502, GrpcStatus.UNAVAILABLE],
      [503, GrpcStatus.UNAVAILABLE],
      [504, GrpcStatus.UNAVAILABLE],
      [500, GrpcStatus.UNKNOWN],
      [302, GrpcStatus.UNKNOWN],
    ];
    for (const [http, grpc] of rows) expect(grpcStatusFromHttp(http), String(http)).toBe(grpc);
  });

  it('PROTOCOL-HTTP2.md RST_STREAM error codes', () => {
    expect(grpcStatusFromRstStream(ErrorCode.NO_ERROR)).toBe(GrpcStatus.INTERNAL);
    expect(grpcStatusFromRstStream(ErrorCode.PROTOCOL_ERROR)).toBe(GrpcStatus.INTERNAL);
    expect(grpcStatusFromRstStream(ErrorCode.REFUSED_STREAM)).toBe(GrpcStatus.UNAVAILABLE);
    expect(grpcStatusFromRstStream(ErrorCode.CANCEL)).toBe(GrpcStatus.CANCELLED);
    expect(grpcStatusFromRstStream(ErrorCode.ENHANCE_YOUR_CALM)).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    expect(grpcStatusFromRstStream(ErrorCode.INADEQUATE_SECURITY)).toBe(GrpcStatus.PERMISSION_DENIED);
  });
});
