import { fc, test as fcTest } from '@fast-check/vitest';
import { ByteReader, concatBytes, fromHex, ParseError, toHex } from '@stepwire/wire';
import { arbitraryBytes, decodesOrParseError } from '@stepwire/wire/testing';
import { describe, expect, it } from 'vitest';
import {
  ackFrameFromRanges,
  ackFrameRanges,
  decodeFrame,
  decodeFrames,
  encodeFrame,
  encodeFrames,
} from '../src/frames/frame.ts';
import { FRAME_RULES, firstIllegalFrame, frameAllowedIn, isAckEliciting } from '../src/frames/legality.ts';
import {
  decodeInvariantHeader,
  decodePlainPacket,
  decodeRetry,
  decodeVersionNegotiation,
  encodePacketHeader,
  encodePlainPacket,
  encodeRetry,
  encodeVersionNegotiation,
  parseProtectedHeader,
  splitCoalescedPackets,
} from '../src/packet/header.ts';
import { decodePacketNumber, encodePacketNumber } from '../src/packet/number.ts';
import {
  encodeStatelessReset,
  isStatelessReset,
  statelessResetTokenOf,
} from '../src/packet/stateless-reset.ts';
import { decodeVarint, encodeVarint, readVarintLimit, VARINT_SAFE_MAX } from '../src/packet/varint.ts';
import {
  arbitraryFrame,
  arbitraryFrames,
  arbitraryPacketRanges,
  arbitraryPlainPacket,
  arbitraryRetryPacket,
  arbitraryVarint,
  arbitraryVersionNegotiationPacket,
} from '../src/testing.ts';

describe('variable-length integers (RFC 9000 §16, Appendix A.1)', () => {
  // RFC 9000 Appendix A.1 sample decodings.
  it('decodes the RFC samples', () => {
    expect(decodeVarint(fromHex('9d7f3e7d'))).toBe(494878333);
    expect(decodeVarint(fromHex('7bbd'))).toBe(15293);
    expect(decodeVarint(fromHex('25'))).toBe(37);
    // "as does the two-byte sequence 0x4025"
    expect(decodeVarint(fromHex('4025'))).toBe(37);
  });
  it('encodes minimally, as the RFC samples are written', () => {
    expect(toHex(encodeVarint(494878333))).toBe('9d7f3e7d');
    expect(toHex(encodeVarint(15293))).toBe('7bbd');
    expect(toHex(encodeVarint(37))).toBe('25');
    expect(toHex(encodeVarint(37, 2))).toBe('4025');
  });
  it('the eight-byte RFC sample (151288809941952652) is beyond 2^53: exact reads refuse it, limit reads saturate', () => {
    const b = fromHex('c2197c5eff14e88c');
    expect(() => decodeVarint(b)).toThrow(ParseError);
    expect(readVarintLimit(new ByteReader(b, 'quic'), 'v')).toBe(VARINT_SAFE_MAX);
    // 2^53-1 itself is exact.
    expect(decodeVarint(encodeVarint(VARINT_SAFE_MAX))).toBe(VARINT_SAFE_MAX);
    expect(toHex(encodeVarint(VARINT_SAFE_MAX))).toBe('c01fffffffffffff');
  });
  fcTest.prop([arbitraryVarint])('round trip', (v) => {
    expect(decodeVarint(encodeVarint(v))).toBe(v);
  });
  fcTest.prop([arbitraryVarint, fc.constantFrom<1 | 2 | 4 | 8>(1, 2, 4, 8)])(
    'round trip at any wide enough width',
    (v, w) => {
      fc.pre(encodeVarint(v).length <= w);
      expect(decodeVarint(encodeVarint(v, w))).toBe(v);
    },
  );
  fcTest.prop([arbitraryBytes(9)])('arbitrary bytes', (b) => decodesOrParseError(decodeVarint, b));
});

describe('packet numbers (RFC 9000 §17.1, Appendix A.2, A.3)', () => {
  it('§17.1 example: 0xac5c02 after 0xabe8b3 was acked needs 16 bits, 0xace8fe needs 24', () => {
    expect(encodePacketNumber(0xac5c02, 0xabe8b3)).toEqual({ truncated: 0x5c02, length: 2 });
    expect(encodePacketNumber(0xace8fe, 0xabe8b3)).toEqual({ truncated: 0xace8fe, length: 3 });
  });
  it('Appendix A.3 example: 0x9b32 after 0xa82f30ea decodes to 0xa82f9b32', () => {
    expect(decodePacketNumber(0xa82f30ea, 0x9b32, 16)).toBe(0xa82f9b32);
  });
  it('with nothing acknowledged, counts from zero', () => {
    expect(encodePacketNumber(0, undefined)).toEqual({ truncated: 0, length: 1 });
    expect(encodePacketNumber(127, undefined)).toEqual({ truncated: 127, length: 1 });
    expect(encodePacketNumber(128, undefined)).toEqual({ truncated: 128, length: 2 });
    expect(decodePacketNumber(-1, 0, 8)).toBe(0);
  });
  it('wraps backward and forward across a window boundary', () => {
    expect(decodePacketNumber(0x1ff, 0x01, 8)).toBe(0x201);
    expect(decodePacketNumber(0x201, 0xff, 8)).toBe(0x1ff);
  });
  fcTest.prop([
    fc.integer({ min: 0, max: 2 ** 50 }),
    fc.option(fc.integer({ min: 0, max: 2 ** 31 - 2 }), { nil: undefined }),
    fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  ])('decode(encode(pn)) = pn whenever the receiver has seen the peer-acked packet', (base, gap, ahead) => {
    // The sender's largest acked is at most the receiver's largest received, and the packet
    // is at most 2^31 ahead of it: the RFC's encoding then always decodes exactly.
    const largestAcked = gap === undefined ? undefined : base;
    const pn = (largestAcked ?? -1) + 1 + (ahead % 2 ** 30);
    const received =
      largestAcked === undefined ? -1 : largestAcked + Math.min(gap ?? 0, pn - largestAcked - 1);
    const { truncated, length } = encodePacketNumber(pn, largestAcked);
    expect(decodePacketNumber(received, truncated, 8 * length)).toBe(pn);
  });
});

describe('packet headers (RFC 9000 §17)', () => {
  // RFC 9001 Appendix A.2: the client Initial's unprotected header.
  it('decodes the RFC 9001 A.2 client Initial header', () => {
    const head = fromHex('c300000001088394c8f03e5157080000449e00000002');
    const payload = new Uint8Array(1182 - 4);
    const p = decodePlainPacket(concatBytes(head, payload), 0);
    expect(p.header).toEqual({
      type: 'Initial',
      version: 1,
      dcid: fromHex('8394c8f03e515708'),
      scid: new Uint8Array(0),
      token: new Uint8Array(0),
      reservedBits: 0,
      packetNumberLength: 4,
      truncatedPacketNumber: 2,
    });
    expect(p.payload.length).toBe(1178);
    expect(toHex(encodePacketHeader(p.header, 1178))).toBe(toHex(head));
  });
  // RFC 9001 Appendix A.3: the server Initial's unprotected header.
  it('decodes the RFC 9001 A.3 server Initial header', () => {
    const head = fromHex('c1000000010008f067a5502a4262b50040750001');
    const info = parseProtectedHeader(concatBytes(head, new Uint8Array(115)), 0);
    expect(info).toMatchObject({ type: 'Initial', pnOffset: 18, end: 18 + 117 });
    expect(toHex(info.scid)).toBe('f067a5502a4262b5');
    const p = decodePlainPacket(concatBytes(head, new Uint8Array(115)), 0);
    expect(p.header).toMatchObject({ type: 'Initial', packetNumberLength: 2, truncatedPacketNumber: 1 });
    expect(toHex(encodePacketHeader(p.header, 115))).toBe(toHex(head));
  });
  // RFC 9001 Appendix A.5: a short header with an empty DCID and a 3-byte packet number.
  it('decodes the RFC 9001 A.5 short header', () => {
    const p = decodePlainPacket(fromHex('4200bff401'), 0);
    expect(p.header).toEqual({
      type: '1-RTT',
      dcid: new Uint8Array(0),
      spinBit: false,
      reservedBits: 0,
      keyPhase: false,
      packetNumberLength: 3,
      truncatedPacketNumber: 0x00bff4,
    });
    expect(toHex(p.payload)).toBe('01');
  });
  // RFC 9001 Appendix A.4.
  it('decodes the RFC 9001 A.4 Retry packet', () => {
    const hex = 'ff000000010008f067a5502a4262b5746f6b656e04a265ba2eff4d829058fb3f0f2496ba';
    const p = decodeRetry(fromHex(hex));
    expect(p).toMatchObject({ type: 'Retry', version: 1, unusedBits: 0xf });
    expect(toHex(p.scid)).toBe('f067a5502a4262b5');
    expect(new TextDecoder().decode(p.retryToken)).toBe('token');
    expect(toHex(encodeRetry(p))).toBe(hex);
  });
  it('rejects a zero fixed bit, an oversized CID, a Length past the datagram', () => {
    const good = fromHex('c300000001088394c8f03e5157080000449e00000002');
    const noFixed = good.slice();
    noFixed[0] = 0x83;
    expect(() => parseProtectedHeader(concatBytes(noFixed, new Uint8Array(1178)), 0)).toThrow(/fixed bit/);
    const bigCid = fromHex(`c00000000115${'00'.repeat(21)}00000100`);
    expect(() => parseProtectedHeader(bigCid, 0)).toThrow(/exceeds 20/);
    expect(() => parseProtectedHeader(concatBytes(good, new Uint8Array(10)), 0)).toThrow(ParseError);
  });
  it('Version Negotiation carries the supported versions (RFC 9000 §17.2.1)', () => {
    const vn = {
      type: 'VersionNegotiation' as const,
      unusedBits: 0x2a,
      dcid: fromHex('0102'),
      scid: fromHex('0304'),
      supportedVersions: [1, 0x6b3343cf, 0x1a2a3a4a],
    };
    const bytes = encodeVersionNegotiation(vn);
    expect(toHex(bytes)).toBe('aa00000000020102020304000000016b3343cf1a2a3a4a');
    expect(decodeVersionNegotiation(bytes)).toEqual(vn);
    expect(decodeInvariantHeader(bytes, 0)).toEqual({
      form: 'long',
      version: 0,
      dcid: vn.dcid,
      scid: vn.scid,
    });
  });
  it('splits coalesced packets at each Length and stops at a short header (RFC 9000 §12.2)', () => {
    const a = encodePlainPacket({
      header: {
        type: 'Initial',
        version: 1,
        dcid: fromHex('aa'),
        scid: fromHex('bb'),
        token: new Uint8Array(0),
        reservedBits: 0,
        packetNumberLength: 1,
        truncatedPacketNumber: 0,
      },
      payload: new Uint8Array(30),
    });
    const b = encodePlainPacket({
      header: {
        type: 'Handshake',
        version: 1,
        dcid: fromHex('aa'),
        scid: fromHex('bb'),
        reservedBits: 0,
        packetNumberLength: 2,
        truncatedPacketNumber: 7,
      },
      payload: new Uint8Array(20).fill(1),
    });
    const c = encodePlainPacket({
      header: {
        type: '1-RTT',
        dcid: fromHex('aa'),
        spinBit: true,
        reservedBits: 0,
        keyPhase: true,
        packetNumberLength: 1,
        truncatedPacketNumber: 9,
      },
      payload: new Uint8Array(5).fill(2),
    });
    const { packets, error } = splitCoalescedPackets(concatBytes(a, b, c), 1);
    expect(error).toBeUndefined();
    expect(packets.map(toHex)).toEqual([a, b, c].map(toHex));
    const broken = splitCoalescedPackets(concatBytes(a, b.subarray(0, 10)), 1);
    expect(broken.packets.map(toHex)).toEqual([toHex(a)]);
    expect(broken.error?.offset).toBeGreaterThanOrEqual(a.length);
  });
  fcTest.prop([arbitraryPlainPacket(8)])('plain packet round trip', (p) => {
    expect(decodePlainPacket(encodePlainPacket(p), 8)).toEqual(p);
  });
  fcTest.prop([arbitraryRetryPacket])('Retry round trip', (p) => {
    expect(decodeRetry(encodeRetry(p))).toEqual(p);
  });
  fcTest.prop([arbitraryVersionNegotiationPacket])('Version Negotiation round trip', (p) => {
    expect(decodeVersionNegotiation(encodeVersionNegotiation(p))).toEqual(p);
  });
  fcTest.prop([arbitraryBytes(128), fc.integer({ min: 0, max: 20 })])('arbitrary bytes', (b, n) => {
    decodesOrParseError((x) => decodePlainPacket(x, n), b);
    decodesOrParseError(decodeRetry, b);
    decodesOrParseError(decodeVersionNegotiation, b);
    decodesOrParseError((x) => decodeInvariantHeader(x, n), b);
    const split = splitCoalescedPackets(b, n);
    expect(split.packets.reduce((s, p) => s + p.length, 0)).toBeLessThanOrEqual(b.length);
    return true;
  });
});

describe('frames (RFC 9000 §19, RFC 9221 §4)', () => {
  it('decodes the RFC 9001 A.3 server Initial payload: ACK then CRYPTO', () => {
    const payload = fromHex(
      '02000000000600405a020000560303eefce7f7b37ba1d1632e96677825ddf73988cfc79825df566dc5430b9a045a1200130100002e00330024001d00209d3c940d89690b84d08a60993c144eca684d1081287c834d5311bcf32bb9da1a002b00020304',
    );
    const frames = decodeFrames(payload);
    expect(frames).toHaveLength(2);
    expect(frames[0]).toEqual({
      type: 'ACK',
      largestAcknowledged: 0,
      ackDelay: 0,
      firstAckRange: 0,
      ackRanges: [],
      ecnCounts: undefined,
    });
    expect(frames[1]).toMatchObject({ type: 'CRYPTO', offset: 0 });
    expect(frames[1]?.type === 'CRYPTO' && frames[1].data.length).toBe(90);
    expect(toHex(encodeFrames(frames))).toBe(toHex(payload));
  });
  it('decodes the RFC 9001 A.2 client Initial payload: CRYPTO then a run of PADDING', () => {
    const crypto = fromHex('060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868');
    // Only the first bytes of the ClientHello matter here; the rest is filled in.
    const payload = new Uint8Array(1162);
    payload.set(crypto);
    const frames = decodeFrames(payload);
    expect(frames.map((f) => f.type)).toEqual(['CRYPTO', 'PADDING']);
    expect(frames[1]).toEqual({ type: 'PADDING', length: 1162 - 4 - 0xf1 });
  });
  it('ACK ranges follow §19.3.1 (gap is one less than the missing packets)', () => {
    // Acks 10..12, 5..7, 0..1: largest 12, first range 2, then gap 1 (8,9 missing) len 2, gap 2 (2,3,4 missing) len 1.
    const f = ackFrameFromRanges(
      [
        { smallest: 10, largest: 12 },
        { smallest: 5, largest: 7 },
        { smallest: 0, largest: 1 },
      ],
      3,
    );
    expect(f.ackRanges).toEqual([
      { gap: 1, ackRangeLength: 2 },
      { gap: 2, ackRangeLength: 1 },
    ]);
    expect(toHex(encodeFrame(f))).toBe('020c03020201020201');
    expect(ackFrameRanges(decodeFrame(fromHex('020c03020201020201')) as never)).toEqual([
      { smallest: 10, largest: 12 },
      { smallest: 5, largest: 7 },
      { smallest: 0, largest: 1 },
    ]);
  });
  it('rejects an ACK that reaches below packet 0 (§19.3.1 FRAME_ENCODING_ERROR)', () => {
    expect(() => decodeFrame(fromHex('0205000006'))).toThrow(/below 0/);
    expect(() => decodeFrame(fromHex('02050001020200'))).toThrow(/below 0/);
  });
  it('checks the field rules the RFC assigns to FRAME_ENCODING_ERROR', () => {
    expect(() => decodeFrame(fromHex('0700'))).toThrow(/empty token/); // §19.7
    expect(() => decodeFrame(fromHex(`180102${'08'}${'00'.repeat(8)}${'00'.repeat(16)}`))).toThrow(
      /Retire Prior To|retirePriorTo|exceeds Sequence/,
    ); // §19.15
    expect(() => decodeFrame(fromHex(`18020015${'00'.repeat(21)}${'00'.repeat(16)}`))).toThrow(/1\.\.20/);
    expect(() => decodeFrame(fromHex('12d000000000000001'))).toThrow(/2\^60/); // §19.11: 2^60+1
    expect(decodeFrame(fromHex('12d000000000000000'))).toMatchObject({ maximumStreams: VARINT_SAFE_MAX }); // 2^60 itself
    expect(() => decodeFrame(fromHex('4001'))).toThrow(/minimally/); // §12.4: PING in two bytes
    expect(() => decodeFrame(fromHex('21'))).toThrow(/unknown frame type/);
    // §19.8 bounds offset + length by 2^62-1; offsets past 2^53 are already refused as inexact.
    expect(() => decodeFrame(fromHex('0e04ffffffffffffffff01ff'))).toThrow(/offset at byte 2/);
  });
  it('STREAM frame variants keep their bits (§19.8)', () => {
    const f = decodeFrame(fromHex('0f040503616263'));
    expect(f).toEqual({
      type: 'STREAM',
      streamId: 4,
      offset: 5,
      hasOffset: true,
      hasLength: true,
      fin: true,
      data: fromHex('616263'),
    });
    const g = decodeFrame(fromHex('0804616263'));
    expect(g).toEqual({
      type: 'STREAM',
      streamId: 4,
      offset: 0,
      hasOffset: false,
      hasLength: false,
      fin: false,
      data: fromHex('616263'),
    });
  });
  it('DATAGRAM with and without Length (RFC 9221 §4)', () => {
    expect(decodeFrame(fromHex('31026162'))).toEqual({
      type: 'DATAGRAM',
      hasLength: true,
      data: fromHex('6162'),
    });
    expect(decodeFrame(fromHex('306162'))).toEqual({
      type: 'DATAGRAM',
      hasLength: false,
      data: fromHex('6162'),
    });
  });
  it('an empty payload is not a packet (§12.4)', () => {
    expect(() => decodeFrames(new Uint8Array(0))).toThrow(/at least one frame/);
  });
  fcTest.prop([arbitraryFrame])('frame round trip', (f) => {
    expect(decodeFrame(encodeFrame(f))).toEqual(f);
  });
  fcTest.prop([arbitraryFrames])('payload round trip', (fs) => {
    expect(decodeFrames(encodeFrames(fs))).toEqual(fs);
  });
  fcTest.prop([arbitraryPacketRanges()])('ACK ranges ↔ frame fields', (ranges) => {
    const f = ackFrameFromRanges(ranges, 0);
    expect(ackFrameRanges(decodeFrame(encodeFrame(f)) as typeof f)).toEqual(ranges);
  });
  fcTest.prop([arbitraryBytes(96)])('arbitrary bytes', (b) => {
    decodesOrParseError(decodeFrame, b);
    return decodesOrParseError(decodeFrames, b);
  });
});

describe('frame legality (RFC 9000 §12.4 Table 3)', () => {
  it('matches Table 3 rows', () => {
    expect(FRAME_RULES.PADDING).toMatchObject({ ackEliciting: false, probing: true });
    expect(FRAME_RULES.ACK).toMatchObject({
      ackEliciting: false,
      countsInFlight: false,
      packets: ['Initial', 'Handshake', '1-RTT'],
    });
    expect(FRAME_RULES.STREAM).toMatchObject({ flowControlled: true, packets: ['0-RTT', '1-RTT'] });
    expect(frameAllowedIn('CRYPTO', '0-RTT')).toBe(false);
    expect(frameAllowedIn('HANDSHAKE_DONE', 'Handshake')).toBe(false);
    expect(frameAllowedIn('CONNECTION_CLOSE', 'Initial')).toBe(true);
    expect(frameAllowedIn('CONNECTION_CLOSE_APPLICATION', 'Initial')).toBe(false);
    expect(frameAllowedIn('DATAGRAM', 'Handshake')).toBe(false);
    expect(frameAllowedIn('PATH_RESPONSE', '0-RTT')).toBe(false);
  });
  it('finds the first illegal frame and ack-eliciting packets', () => {
    expect(firstIllegalFrame([{ type: 'PING' }, { type: 'HANDSHAKE_DONE' }], 'Initial')).toEqual({
      type: 'HANDSHAKE_DONE',
    });
    expect(isAckEliciting([{ type: 'PADDING', length: 3 }])).toBe(false);
    expect(isAckEliciting([{ type: 'PADDING', length: 3 }, { type: 'PING' }])).toBe(true);
  });
});

describe('stateless reset (RFC 9000 §10.3)', () => {
  const token = fromHex('00112233445566778899aabbccddeeff');
  const random = (n: number) => new Uint8Array(n).fill(0xa5);
  it('looks like a short-header packet and ends in the token', () => {
    const d = encodeStatelessReset(token, 40, random);
    expect(d.length).toBe(40);
    expect(d[0]! & 0xc0).toBe(0x40);
    expect(toHex(statelessResetTokenOf(d))).toBe(toHex(token));
    expect(isStatelessReset(d, [fromHex('ff'.repeat(16)), token])).toBe(true);
    expect(isStatelessReset(d, [fromHex('ff'.repeat(16))])).toBe(false);
    expect(isStatelessReset(d.subarray(0, 20), [token])).toBe(false);
    expect(() => encodeStatelessReset(token, 20, random)).toThrow(RangeError);
  });
  fcTest.prop([arbitraryBytes(64)])('arbitrary bytes', (b) => decodesOrParseError(statelessResetTokenOf, b));
});
