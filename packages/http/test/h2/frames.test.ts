/** RFC 9113 §4, §6 frame codec: laws, hand-written vectors, and the size/stream-0 rules. */
import { concatBytes, fromHex, ParseError, toHex } from '@stepwire/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, Http2Error } from '../../src/h2/errors.ts';
import { decodeFrame, encodeFrame, FrameReader, type Http2Frame } from '../../src/h2/frames.ts';
import { arbitraryHttp2Frame } from '../../src/h2/testing.ts';

const err = (hex: string): Http2Error => {
  try {
    decodeFrame(fromHex(hex));
  } catch (e) {
    if (e instanceof Http2Error) return e;
    throw e;
  }
  throw new Error('decoded');
};

describe('frame codec laws', () => {
  it('decode(encode(f)) = f', () => {
    fc.assert(
      fc.property(arbitraryHttp2Frame, (f) => {
        expect(decodeFrame(encodeFrame(f))).toEqual(f);
      }),
    );
  });
  it('decode of arbitrary bytes returns a frame or throws ParseError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 0, max: 0x11 }), (b, type) => {
        // Half the cases get a consistent header so payload checks run too.
        const framed = new Uint8Array(9 + b.length);
        framed.set([
          b.length >> 16,
          (b.length >> 8) & 0xff,
          b.length & 0xff,
          type,
          b[0] ?? 0,
          0,
          0,
          0,
          b[1] ?? 0,
        ]);
        framed.set(b, 9);
        for (const input of [b, framed]) {
          try {
            decodeFrame(input);
          } catch (e) {
            expect(e).toBeInstanceOf(ParseError);
          }
        }
      }),
    );
  });
  it('a FrameReader reassembles frames split at every byte', () => {
    fc.assert(
      fc.property(
        fc.array(arbitraryHttp2Frame, { maxLength: 6 }),
        fc.integer({ min: 1, max: 17 }),
        (frames, step) => {
          const wire = concatBytes(...frames.map((f) => encodeFrame(f)));
          const r = new FrameReader(1 << 20);
          const out: Http2Frame[] = [];
          for (let i = 0; i < wire.length; i += step) {
            r.push(new Uint8Array(wire.subarray(i, i + step)));
            for (let n = r.next(); n; n = r.next())
              out.push(decodeFrame(concatBytes(encodeHeaderOf(n.header), n.payload)));
          }
          expect(out).toEqual(frames);
        },
      ),
    );
  });
});

function encodeHeaderOf(h: { length: number; type: number; flags: number; streamId: number }): Uint8Array {
  return Uint8Array.from([
    h.length >> 16,
    (h.length >> 8) & 0xff,
    h.length & 0xff,
    h.type,
    h.flags,
    h.streamId >>> 24,
    (h.streamId >> 16) & 0xff,
    (h.streamId >> 8) & 0xff,
    h.streamId & 0xff,
  ]);
}

describe('frame vectors (RFC 9113 §4.1, §6)', () => {
  it('SETTINGS with every defined setting, incl. RFC 8441 and RFC 9218', () => {
    const f: Http2Frame = {
      type: 'SETTINGS',
      ack: false,
      settings: [
        [1, 4096],
        [2, 0],
        [3, 100],
        [4, 65535],
        [5, 16384],
        [6, 8192],
        [8, 1],
        [9, 1],
      ],
    };
    expect(toHex(encodeFrame(f))).toBe(
      '00003004000000000000010000100000020000000000030000006400040000ffff000500004000000600002000000800000001000900000001',
    );
    expect(decodeFrame(encodeFrame(f))).toEqual(f);
  });
  it('SETTINGS ACK, PING, WINDOW_UPDATE, RST_STREAM, GOAWAY', () => {
    expect(toHex(encodeFrame({ type: 'SETTINGS', ack: true, settings: [] }))).toBe('000000040100000000');
    expect(toHex(encodeFrame({ type: 'PING', ack: true, opaqueData: fromHex('0102030405060708') }))).toBe(
      '0000080601000000000102030405060708',
    );
    expect(toHex(encodeFrame({ type: 'WINDOW_UPDATE', streamId: 3, windowSizeIncrement: 1000 }))).toBe(
      '000004080000000003000003e8',
    );
    expect(toHex(encodeFrame({ type: 'RST_STREAM', streamId: 1, errorCode: ErrorCode.CANCEL }))).toBe(
      '00000403000000000100000008',
    );
    expect(
      toHex(encodeFrame({ type: 'GOAWAY', lastStreamId: 5, errorCode: 1, debugData: new Uint8Array() })),
    ).toBe('0000080700000000000000000500000001');
  });
  it('padded DATA: pad length octet, zero padding', () => {
    expect(
      toHex(encodeFrame({ type: 'DATA', streamId: 1, endStream: true, data: fromHex('aabb'), padding: 2 })),
    ).toBe('000005000900000001' + '02aabb0000');
  });
  it('unknown frame types decode as UNKNOWN (RFC 9113 §5.5)', () => {
    expect(decodeFrame(fromHex('000001ff0000000001aa'))).toEqual({
      type: 'UNKNOWN',
      frameType: 0xff,
      flags: 0,
      streamId: 1,
      payload: fromHex('aa'),
    });
  });
});

describe('frame errors (RFC 9113 §6)', () => {
  const cases: [string, string, number, boolean][] = [
    ['DATA on stream 0 (§6.1)', '000001000000000000aa', ErrorCode.PROTOCOL_ERROR, false],
    ['DATA padding ≥ payload (§6.1)', '0000020008000000010a00', ErrorCode.PROTOCOL_ERROR, false],
    ['HEADERS on stream 0 (§6.2)', '000001010400000000aa', ErrorCode.PROTOCOL_ERROR, false],
    [
      'PRIORITY of length 4 (§6.3), a stream error',
      '00000402000000000100000000',
      ErrorCode.FRAME_SIZE_ERROR,
      true,
    ],
    ['RST_STREAM of length 3 (§6.4)', '000003030000000001000000', ErrorCode.FRAME_SIZE_ERROR, false],
    ['RST_STREAM on stream 0 (§6.4)', '00000403000000000000000008', ErrorCode.PROTOCOL_ERROR, false],
    ['SETTINGS on stream 1 (§6.5)', '000000040000000001', ErrorCode.PROTOCOL_ERROR, false],
    ['SETTINGS ACK with payload (§6.5)', '000006040100000000000100001000', ErrorCode.FRAME_SIZE_ERROR, false],
    ['SETTINGS length 5 (§6.5)', '0000050400000000000001000010', ErrorCode.FRAME_SIZE_ERROR, false],
    ['ENABLE_PUSH 2 (§6.5.2)', '000006040000000000000200000002', ErrorCode.PROTOCOL_ERROR, false],
    [
      'INITIAL_WINDOW_SIZE 2^31 (§6.5.2)',
      '000006040000000000000480000000',
      ErrorCode.FLOW_CONTROL_ERROR,
      false,
    ],
    ['MAX_FRAME_SIZE 16383 (§6.5.2)', '000006040000000000000500003fff', ErrorCode.PROTOCOL_ERROR, false],
    [
      'ENABLE_CONNECT_PROTOCOL 2 (RFC 8441 §3)',
      '000006040000000000000800000002',
      ErrorCode.PROTOCOL_ERROR,
      false,
    ],
    ['PING length 7 (§6.7)', '00000706000000000001020304050607', ErrorCode.FRAME_SIZE_ERROR, false],
    ['PING on stream 1 (§6.7)', '0000080600000000010102030405060708', ErrorCode.PROTOCOL_ERROR, false],
    ['GOAWAY on stream 1 (§6.8)', '0000080700000000010000000000000000', ErrorCode.PROTOCOL_ERROR, false],
    [
      'WINDOW_UPDATE increment 0 on stream 0 (§6.9)',
      '00000408000000000000000000',
      ErrorCode.PROTOCOL_ERROR,
      false,
    ],
    [
      'WINDOW_UPDATE increment 0 on stream 1 (§6.9), a stream error',
      '00000408000000000100000000',
      ErrorCode.PROTOCOL_ERROR,
      true,
    ],
    ['WINDOW_UPDATE length 3 (§6.9)', '000003080000000001000001', ErrorCode.FRAME_SIZE_ERROR, false],
    ['CONTINUATION on stream 0 (§6.10)', '000001090400000000aa', ErrorCode.PROTOCOL_ERROR, false],
    [
      'PRIORITY_UPDATE on stream 1 (RFC 9218 §7.1)',
      '000004100000000001' + '00000001',
      ErrorCode.PROTOCOL_ERROR,
      false,
    ],
  ];
  for (const [title, hex, code, stream] of cases) {
    it(title, () => {
      const e = err(hex);
      expect(e.code).toBe(code);
      expect(e.isStreamError).toBe(stream);
    });
  }
  it('HEADERS with PRIORITY but fewer than 5 octets (§6.2; found by the fuzz campaign): FRAME_SIZE_ERROR', () => {
    const e = err('00000101231919030668');
    expect(e.code).toBe(ErrorCode.FRAME_SIZE_ERROR);
    expect(e.isStreamError).toBe(false);
  });
  it('PUSH_PROMISE shorter than its Promised Stream ID, padded or not (§6.6): FRAME_SIZE_ERROR', () => {
    expect(err('000003050400000001000000').code).toBe(ErrorCode.FRAME_SIZE_ERROR);
    expect(err('00000405080000000100000000').code).toBe(ErrorCode.FRAME_SIZE_ERROR);
  });
  it('a frame larger than SETTINGS_MAX_FRAME_SIZE is refused from its header (§4.2)', () => {
    const r = new FrameReader(16384);
    r.push(fromHex('004001000000000001'));
    expect(() => r.next()).toThrow(/FRAME_SIZE_ERROR/);
  });
});
