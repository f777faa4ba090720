/**
 * qlogFrame: every frame of RFC 9000 and RFC 9221 becomes qlog's QuicFrame
 * (draft-ietf-quic-qlog-quic-events §8.13) — plain JSON, the fields qvis draws, no payload.
 */
import { test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { ackFrameRanges } from '../src/frames/frame.ts';
import { qlogFrame } from '../src/qlog.ts';
import { arbitraryFrame } from '../src/testing.ts';

const QLOG_FRAME_TYPES = new Set([
  'padding',
  'ping',
  'ack',
  'reset_stream',
  'stop_sending',
  'crypto',
  'new_token',
  'stream',
  'max_data',
  'max_stream_data',
  'max_streams',
  'data_blocked',
  'stream_data_blocked',
  'streams_blocked',
  'new_connection_id',
  'retire_connection_id',
  'path_challenge',
  'path_response',
  'connection_close',
  'handshake_done',
  'datagram',
]);

describe('qlogFrame', () => {
  test.prop([arbitraryFrame])('is plain JSON of a qlog frame type, without the bytes it carries', (f) => {
    const q = qlogFrame(f);
    expect(QLOG_FRAME_TYPES.has(q.frame_type as string)).toBe(true);
    expect(JSON.parse(JSON.stringify(q))).toEqual(q);
    expect(Object.values(q).some((v) => v instanceof Uint8Array)).toBe(false);
  });

  test.prop([arbitraryFrame.filter((f) => f.type === 'ACK')])(
    'lists an ACK frame’s ranges ascending, as [smallest, largest] or [single]',
    (f) => {
      if (f.type !== 'ACK') return;
      const ranges = qlogFrame(f).acked_ranges as number[][];
      const want = ackFrameRanges(f).reverse();
      expect(ranges).toEqual(
        want.map((r) => (r.smallest === r.largest ? [r.smallest] : [r.smallest, r.largest])),
      );
    },
  );

  it('gives a STREAM frame its stream, offset, length and fin', () => {
    const data = new Uint8Array(1200);
    expect(
      qlogFrame({
        type: 'STREAM',
        streamId: 4,
        offset: 2400,
        hasOffset: true,
        hasLength: true,
        fin: true,
        data,
      }),
    ).toEqual({ frame_type: 'stream', stream_id: 4, offset: 2400, length: 1200, fin: true });
    expect(qlogFrame({ type: 'MAX_STREAMS', bidirectional: false, maximumStreams: 7 })).toEqual({
      frame_type: 'max_streams',
      stream_type: 'unidirectional',
      maximum: 7,
    });
    expect(
      qlogFrame({
        type: 'CONNECTION_CLOSE',
        errorCode: 0x0a,
        frameType: 0x08,
        reasonPhrase: new TextEncoder().encode('bad'),
      }),
    ).toEqual({
      frame_type: 'connection_close',
      error_space: 'transport',
      error_code: 10,
      reason: 'bad',
      trigger_frame_type: 8,
    });
  });
});
