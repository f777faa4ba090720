import { fromHex, utf8 } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { cryptoError, TransportErrorCode, transportErrorName } from '../src/errors.ts';
import { ackFrameFromRanges, decodeFrames } from '../src/frames/frame.ts';
import { decodePlainPacket } from '../src/packet/header.ts';
import { frameSummary, packetSummary } from '../src/summary.ts';

describe('trace summaries', () => {
  it('names frames and their key fields', () => {
    const ack = ackFrameFromRanges(
      [
        { smallest: 10, largest: 12 },
        { smallest: 5, largest: 5 },
      ],
      3,
    );
    expect(frameSummary(ack)).toBe('ACK 5,10-12 delay=3');
    expect(
      frameSummary({
        type: 'STREAM',
        streamId: 4,
        offset: 10,
        hasOffset: true,
        hasLength: true,
        fin: true,
        data: utf8('abc'),
      }),
    ).toBe('STREAM s=4 off=10 len=3 FIN');
    expect(
      frameSummary({ type: 'CONNECTION_CLOSE', errorCode: 0x0a, frameType: 0x08, reasonPhrase: utf8('bad') }),
    ).toBe('CONNECTION_CLOSE PROTOCOL_VIOLATION frame=0x8 "bad"');
    // RFC 9001 A.3's server Initial payload.
    const frames = decodeFrames(fromHex(`02000000000600405a${'00'.repeat(90)}`));
    expect(frames.map(frameSummary)).toEqual(['ACK 0 delay=0', 'CRYPTO off=0 len=90']);
  });
  it('names packets', () => {
    const p = decodePlainPacket(
      fromHex(`c300000001088394c8f03e5157080000449e00000002${'00'.repeat(1178)}`),
      0,
    );
    expect(packetSummary(p.header)).toBe('Initial pn=2 dcid=8394c8f03e515708 scid=');
    expect(packetSummary(decodePlainPacket(fromHex('4400bff401'), 0).header, 654360564)).toBe(
      '1-RTT pn=654360564 dcid= KP1',
    );
  });
  it('names transport errors (RFC 9000 §20.1) and CRYPTO_ERROR (RFC 9001 §4.8)', () => {
    expect(transportErrorName(TransportErrorCode.FRAME_ENCODING_ERROR)).toBe('FRAME_ENCODING_ERROR');
    expect(transportErrorName(cryptoError(0x28))).toBe('CRYPTO_ERROR(0x28)');
    expect(transportErrorName(0x4242)).toBe('0x4242');
  });
});
