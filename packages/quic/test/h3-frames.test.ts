import { test as fcTest } from '@fast-check/vitest';
import { fromHex, ParseError, toHex } from '@stepwire/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  altSvcH3,
  decodeH3Frame,
  decodeH3Frames,
  encodeH3Frame,
  type H3Frame,
  H3FrameReader,
  H3FrameTooLarge,
  type H3StreamItem,
  h3ContentLengthOf,
  h3MalformedReason,
  isReservedH3Type,
} from '../src/h3/index.ts';
import { arbitraryH3Frame } from '../src/testing.ts';

describe('HTTP/3 frame codec (RFC 9114 §7)', () => {
  // Hand-assembled from the layouts of §7.1 (Type (i), Length (i), payload) and §7.2.
  const vectors: [string, H3Frame][] = [
    ['0003616263', { type: 'DATA', data: new Uint8Array([0x61, 0x62, 0x63]) }],
    ['0102c0d1', { type: 'HEADERS', fieldSection: fromHex('c0d1') }],
    ['030107', { type: 'CANCEL_PUSH', pushId: 7 }],
    // SETTINGS: QPACK_MAX_TABLE_CAPACITY=4096 (2-byte varint 0x5000), QPACK_BLOCKED_STREAMS=16.
    [
      '0405015000 0710'.replace(/ /g, ''),
      {
        type: 'SETTINGS',
        settings: [
          { id: 1, value: 4096 },
          { id: 7, value: 16 },
        ],
      },
    ],
    ['0400', { type: 'SETTINGS', settings: [] }],
    ['050302c0d1', { type: 'PUSH_PROMISE', pushId: 2, fieldSection: fromHex('c0d1') }],
    ['07024004', { type: 'GOAWAY', id: 0x4004 & 0x3fff }],
    ['0d0100', { type: 'MAX_PUSH_ID', pushId: 0 }],
    // A reserved type (§7.2.8: 0x1f * 1 + 0x21 = 0x40, a 2-byte varint).
    ['4040 02 6833'.replace(/ /g, ''), { type: 'unknown', frameType: 0x40, payload: fromHex('6833') }],
  ];
  for (const [hex, frame] of vectors) {
    it(`${frame.type} ${hex}`, () => {
      expect(decodeH3Frame(fromHex(hex))).toEqual(frame);
      if (hex !== '07024004') expect(toHex(encodeH3Frame(frame))).toBe(hex);
    });
  }

  it('GOAWAY with a non-minimal varint decodes to its value (§7.1 does not require minimal encodings)', () => {
    expect(decodeH3Frame(fromHex('07024004'))).toEqual({ type: 'GOAWAY', id: 4 });
  });

  it('a payload with bytes left over after its fields is a ParseError (§7.1: H3_FRAME_ERROR)', () => {
    expect(() => decodeH3Frame(fromHex('03020700'))).toThrow(ParseError);
    // GOAWAY whose Length promises a byte that is not there.
    expect(() => decodeH3Frame(fromHex('0701'))).toThrow(ParseError);
  });

  it('a reserved setting with a 62-bit value saturates instead of failing (§7.2.4.1)', () => {
    const f = decodeH3Frame(fromHex('040a 4040 ffffffffffffffff'.replace(/ /g, '')));
    expect(f).toEqual({ type: 'SETTINGS', settings: [{ id: 0x40, value: Number.MAX_SAFE_INTEGER }] });
  });

  it('a grease frame type beyond 2^53 is still an unknown frame', () => {
    // 0x1f * N + 0x21 for a large N, encoded as an 8-byte varint.
    const f = decodeH3Frame(fromHex('fffffffffffffffe 00'.replace(/ /g, '')));
    expect(f.type).toBe('unknown');
  });

  it('reserved types are 0x1f * N + 0x21 (§7.2.8)', () => {
    expect([0x21, 0x40, 0x5f].map(isReservedH3Type)).toEqual([true, true, true]);
    expect([0x00, 0x20, 0x22, 0x41].map(isReservedH3Type)).toEqual([false, false, false, false]);
  });

  fcTest.prop([arbitraryH3Frame])('decode(encode(frame)) is the frame', (f) => {
    expect(decodeH3Frame(encodeH3Frame(f))).toEqual(f);
  });

  fcTest.prop([fc.uint8Array({ maxLength: 64 })])('arbitrary bytes decode or throw ParseError', (b) => {
    try {
      decodeH3Frames(b);
    } catch (e) {
      expect(e).toBeInstanceOf(ParseError);
    }
  });
});

describe('H3FrameReader: frames from a stream cut anywhere', () => {
  const flatten = (items: H3StreamItem[]) => {
    const frames: H3Frame[] = [];
    let data: number[] = [];
    for (const it of items) {
      if (it.kind === 'frame') frames.push(it.frame);
      else if (it.kind === 'data') {
        data.push(...it.data);
        if (it.last) {
          frames.push({ type: 'DATA', data: new Uint8Array(data) });
          data = [];
        }
      }
    }
    return frames;
  };

  fcTest.prop([
    fc.array(arbitraryH3Frame, { maxLength: 6 }),
    fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1 }),
  ])('any split yields the frames in order (unknown frames skipped, DATA streamed)', (frames, cuts) => {
    const bytes = Buffer.concat(frames.map(encodeH3Frame));
    const r = new H3FrameReader(1 << 16);
    const items: H3StreamItem[] = [];
    let at = 0;
    for (let i = 0; at < bytes.length; i++) {
      const n = cuts[i % cuts.length] ?? 1;
      items.push(...r.push(new Uint8Array(bytes.subarray(at, at + n))));
      at += n;
    }
    expect(r.atFrameBoundary).toBe(true);
    expect(flatten(items)).toEqual(frames.filter((f) => f.type !== 'unknown'));
    expect(items.filter((i) => i.kind === 'skipped').length).toBe(
      frames.filter((f) => f.type === 'unknown').length,
    );
  });

  it('a HEADERS frame longer than the limit is refused from its header alone', () => {
    const r = new H3FrameReader(100);
    // Type 0x01, Length 16384 (0x7fff would be 2 bytes: 0x7f 0xff = 16383); only the header arrives.
    expect(() => r.push(fromHex('017fff'))).toThrow(H3FrameTooLarge);
  });

  it('a DATA frame of any length passes (it is never held whole)', () => {
    const r = new H3FrameReader(100);
    const items = r.push(fromHex('00 80 01 00 00 61 62'.replace(/ /g, '')));
    expect(items).toEqual([{ kind: 'data', data: fromHex('6162'), last: false }]);
    expect(r.atFrameBoundary).toBe(false);
  });
});

describe('HTTP/3 messages (RFC 9114 §4.2, §4.3)', () => {
  const req: [string, string][] = [
    [':method', 'GET'],
    [':scheme', 'https'],
    [':authority', 'example.com'],
    [':path', '/'],
  ];
  it('a well-formed request passes', () => {
    expect(h3MalformedReason(req, 'request')).toBeUndefined();
  });
  const bad: [string, [string, string][], 'request' | 'response' | 'trailers'][] = [
    ['uppercase name (§4.2)', [...req, ['Accept', '*/*']], 'request'],
    ['connection-specific field (§4.2)', [...req, ['connection', 'close']], 'request'],
    ['TE other than trailers (§4.2)', [...req, ['te', 'gzip']], 'request'],
    ['pseudo after regular (§4.3)', [['accept', '*/*'], ...req], 'request'],
    ['duplicate :path (§4.3)', [...req.slice(0, 4), [':path', '/x']], 'request'],
    ['missing :scheme (§4.3.1)', req.filter(([n]) => n !== ':scheme'), 'request'],
    ['empty :path (§4.3.1)', [...req.slice(0, 3), [':path', '']], 'request'],
    ['no authority for https (§4.3.1)', req.filter(([n]) => n !== ':authority'), 'request'],
    ['response pseudo in a request (§4.3)', [...req.slice(0, 4), [':status', '200']], 'request'],
    [
      'CONNECT with :path (§4.4)',
      [
        [':method', 'CONNECT'],
        [':authority', 'a:1'],
        [':path', '/'],
      ],
      'request',
    ],
    ['bad :status (§4.3.2)', [[':status', '20']], 'response'],
    ['pseudo in trailers (§4.3)', [[':status', '200']], 'trailers'],
    ['CR in a value (§10.3)', [...req, ['x', 'a\rb']], 'request'],
  ];
  for (const [name, fields, kind] of bad) {
    it(`malformed: ${name}`, () => {
      expect(h3MalformedReason(fields, kind)).toBeTypeOf('string');
    });
  }
  it('content-length: repeated equal values are one; differing or non-numeric are malformed', () => {
    expect(h3ContentLengthOf([['content-length', '5, 5']])).toBe(5);
    expect(
      h3ContentLengthOf([
        ['content-length', '5'],
        ['content-length', '6'],
      ]),
    ).toBeNaN();
    expect(h3ContentLengthOf([['content-length', '-1']])).toBeNaN();
  });
});

describe('Alt-Svc (RFC 7838 §3, RFC 9114 §3.1.1)', () => {
  it('h3 on port 443 for a day by default', () => {
    expect(altSvcH3()).toBe('h3=":443"; ma=86400');
  });
  it('another host and port, max-age and persist', () => {
    expect(altSvcH3({ host: 'alt.example', port: 8443, maxAge: 60, persist: true })).toBe(
      'h3="alt.example:8443"; ma=60; persist=1',
    );
  });
  it('refuses a port out of range', () => {
    expect(() => altSvcH3({ port: 70000 })).toThrow(RangeError);
  });
});
