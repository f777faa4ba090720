import { fc, test as fcTest } from '@fast-check/vitest';
import { fromHex, ParseError, toHex } from '@stepwire/wire';
import { arbitraryBytes, decodesOrParseError } from '@stepwire/wire/testing';
import { describe, expect, it } from 'vitest';
import { applyMask, decodeFrame, decodeFrameHeader, encodeFrame, Opcode } from '../../src/ws/frame.ts';
import { acceptKey, parseExtensions } from '../../src/ws/handshake.ts';
import { arbitraryMaskingKey, arbitraryWebSocketFrame } from '../../src/ws/testing.ts';
import { isValidUtf8, Utf8Validator } from '../../src/ws/utf8.ts';

const hello = new TextEncoder().encode('Hello');
const base = { fin: true, rsv1: false, rsv2: false, rsv3: false };

describe('RFC 6455 §5.7 examples', () => {
  const key = fromHex('37fa213d');
  const vectors = [
    {
      name: 'single-frame unmasked text',
      hex: '810548656c6c6f',
      frame: { ...base, opcode: Opcode.Text, payload: hello },
    },
    {
      name: 'single-frame masked text',
      hex: '818537fa213d7f9f4d5158',
      frame: { ...base, opcode: Opcode.Text, maskingKey: key, payload: hello },
    },
    {
      name: 'first fragment of an unmasked text',
      hex: '010348656c',
      frame: { ...base, fin: false, opcode: Opcode.Text, payload: hello.subarray(0, 3) },
    },
    {
      name: 'last fragment',
      hex: '80026c6f',
      frame: { ...base, opcode: Opcode.Continuation, payload: hello.subarray(3) },
    },
    { name: 'unmasked Ping', hex: '890548656c6c6f', frame: { ...base, opcode: Opcode.Ping, payload: hello } },
    {
      name: 'masked Pong',
      hex: '8a8537fa213d7f9f4d5158',
      frame: { ...base, opcode: Opcode.Pong, maskingKey: key, payload: hello },
    },
  ];
  for (const v of vectors) {
    it(`decodes and re-encodes: ${v.name}`, () => {
      expect(decodeFrame(fromHex(v.hex))).toEqual(v.frame);
      expect(toHex(encodeFrame(v.frame))).toBe(v.hex);
    });
  }

  it('256 bytes of binary use the 16-bit length: 0x82 0x7E 0x0100', () => {
    const payload = new Uint8Array(256).map((_, i) => i);
    const wire = encodeFrame({ ...base, opcode: Opcode.Binary, payload });
    expect(toHex(wire.subarray(0, 4))).toBe('827e0100');
    expect(wire.length).toBe(4 + 256);
    expect(decodeFrame(wire).payload).toEqual(payload);
  });

  it('64 KiB of binary use the 64-bit length: 0x82 0x7F 0x0000000000010000', () => {
    const payload = new Uint8Array(65536).fill(7);
    const wire = encodeFrame({ ...base, opcode: Opcode.Binary, payload });
    expect(toHex(wire.subarray(0, 10))).toBe('827f0000000000010000');
    expect(decodeFrame(wire).payload).toEqual(payload);
  });
});

describe('frame codec laws', () => {
  fcTest.prop([arbitraryWebSocketFrame])('decode(encode(f)) equals f', (f) => {
    expect(decodeFrame(encodeFrame(f))).toEqual(f);
  });

  fcTest.prop([arbitraryWebSocketFrame])(
    'a masked frame carries payload XOR key[i mod 4] (RFC 6455 §5.3)',
    (f) => {
      const wire = encodeFrame(f);
      const h = decodeFrameHeader(wire);
      expect(h).toBeDefined();
      const onWire = wire.subarray(h?.headerLength ?? 0);
      for (let i = 0; i < f.payload.length; i++) {
        const k = f.maskingKey ? (f.maskingKey[i % 4] as number) : 0;
        expect(onWire[i]).toBe((f.payload[i] as number) ^ k);
      }
    },
  );

  fcTest.prop([fc.uint8Array({ maxLength: 64 }), arbitraryMaskingKey, fc.nat(64)])(
    'masking is its own inverse and continues at any offset',
    (data, key, cut) => {
      const at = Math.min(cut, data.length);
      const whole = applyMask(data.slice(), key);
      const parts = new Uint8Array(data.length);
      parts.set(applyMask(data.slice(0, at), key, 0));
      parts.set(applyMask(data.slice(at), key, at), at);
      expect(parts).toEqual(whole);
      expect(applyMask(whole.slice(), key)).toEqual(data);
    },
  );

  fcTest.prop([arbitraryWebSocketFrame, fc.nat()])(
    'an incomplete header or payload is never mistaken for a frame',
    (f, n) => {
      const wire = encodeFrame(f);
      const cut = n % wire.length;
      const h = decodeFrameHeader(wire.subarray(0, cut));
      if (h) expect(h.headerLength + h.payloadLength).toBeGreaterThan(cut);
      expect(() => decodeFrame(wire.subarray(0, cut))).toThrow(ParseError);
    },
  );

  fcTest.prop([arbitraryBytes(300)])('decode of arbitrary bytes returns or throws ParseError', (b) => {
    expect(decodesOrParseError(decodeFrame, b)).toBe(true);
  });

  it('rejects lengths not in their minimal form (RFC 6455 §5.2)', () => {
    expect(() => decodeFrameHeader(fromHex('827e007d'))).toThrow(/16-bit/);
    expect(() => decodeFrameHeader(fromHex('827f000000000000ffff'))).toThrow(/64-bit/);
    expect(() => decodeFrameHeader(fromHex('827f8000000000010000'))).toThrow(/most significant/);
  });
});

describe('opening handshake key (RFC 6455 §1.3)', () => {
  it('dGhlIHNhbXBsZSBub25jZQ== is answered with s3pPLMBiTxaQ9kYGzzhZRbK+xOo=', () => {
    expect(acceptKey('dGhlIHNhbXBsZSBub25jZQ==')).toBe('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  });
});

describe('Sec-WebSocket-Extensions grammar (RFC 6455 §9.1)', () => {
  it('parses lists, parameters and quoted values', () => {
    expect(parseExtensions(['permessage-deflate; client_max_window_bits, foo; x="10"', 'bar'])).toEqual([
      { name: 'permessage-deflate', params: [['client_max_window_bits', true]] },
      { name: 'foo', params: [['x', '10']] },
      { name: 'bar', params: [] },
    ]);
  });
  it('rejects garbage', () => {
    expect(() => parseExtensions(['permessage-deflate; =3'])).toThrow(ParseError);
    expect(() => parseExtensions(['a b'])).toThrow(ParseError);
    expect(() => parseExtensions(['a; x="1 2"'])).toThrow(ParseError);
  });
});

describe('UTF-8 validation (RFC 3629 §4)', () => {
  fcTest.prop([fc.string({ unit: 'binary', maxLength: 40 }), fc.array(fc.nat(50), { maxLength: 6 })])(
    'any string encoded is valid, however it is split',
    (s, cuts) => {
      const b = new TextEncoder().encode(s);
      const v = new Utf8Validator();
      let o = 0;
      for (const c of [...cuts].sort((x, y) => x - y)) {
        const at = Math.min(c, b.length);
        expect(v.update(b.subarray(o, Math.max(o, at)))).toBe(true);
        o = Math.max(o, at);
      }
      expect(v.update(b.subarray(o))).toBe(true);
      expect(v.complete).toBe(true);
    },
  );
  fcTest.prop([fc.uint8Array({ maxLength: 16 })])('agrees with a fatal TextDecoder', (b) => {
    let ok = true;
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(b);
    } catch {
      ok = false;
    }
    expect(isValidUtf8(b)).toBe(ok);
  });
  it('rejects surrogates, overlongs and code points past U+10FFFF', () => {
    for (const hex of ['eda080', 'c0af', 'e08080', 'f4908080', 'f8', 'ff', '80'])
      expect(isValidUtf8(fromHex(hex))).toBe(false);
  });
});
