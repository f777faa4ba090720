import { fc, test as fcTest } from '@fast-check/vitest';
import { completeChecksum } from '@stepwire/ip';
import { describe, expect } from 'vitest';
import { decodeSegment, encodeSegment, encodeSegmentInto, segmentHeaderLength, TCP } from '../src/segment.ts';
import { arbitraryPseudoHeader, arbitraryTcpSegment } from '../src/testing.ts';

/**
 * The send path writes a segment into a buffer with room in front for the IP header
 * (encodeSegmentInto), and with checksum offload leaves the checksum partial for the link
 * to complete. Both must give exactly the bytes of the plain encoder: that encoder is
 * checked against RFC vectors and tshark elsewhere, so equality carries those checks over.
 */
describe('TCP segment with header room', () => {
  fcTest.prop([arbitraryTcpSegment(1600), arbitraryPseudoHeader, fc.integer({ min: 0, max: 64 })])(
    'encodeSegmentInto at any offset equals encodeSegment byte for byte',
    (seg, pseudo, room) => {
      const plain = encodeSegment(seg, pseudo);
      const buf = new Uint8Array(room + plain.length + 3).fill(0xa5);
      const n = encodeSegmentInto(seg, pseudo, buf, room);
      expect(n).toBe(plain.length);
      expect(buf.subarray(room, room + n)).toEqual(plain);
      // The room in front and the bytes after are not touched.
      expect(buf.subarray(0, room).every((b) => b === 0xa5)).toBe(true);
      expect(buf.subarray(room + n).every((b) => b === 0xa5)).toBe(true);
    },
  );

  fcTest.prop([arbitraryTcpSegment(1600), arbitraryPseudoHeader, fc.integer({ min: 0, max: 64 })])(
    'a payload already in place after the header is used where it lies, same bytes',
    (seg, pseudo, room) => {
      const plain = encodeSegment(seg, pseudo);
      const hdr = segmentHeaderLength(seg);
      const buf = new Uint8Array(room + plain.length);
      buf.set(seg.payload, room + hdr);
      const inPlace = { ...seg, payload: buf.subarray(room + hdr, room + hdr + seg.payload.length) };
      encodeSegmentInto(inPlace, pseudo, buf, room);
      expect(buf.subarray(room)).toEqual(plain);
    },
  );

  fcTest.prop([arbitraryTcpSegment(1600), arbitraryPseudoHeader, fc.integer({ min: 0, max: 60 })])(
    'a partial checksum, completed as a link does it, is the checksum the plain encoder writes',
    (seg, pseudo, start) => {
      const plain = encodeSegment(seg, pseudo);
      const buf = new Uint8Array(start + plain.length);
      encodeSegmentInto(seg, pseudo, buf, start, 'partial');
      // Only the checksum field differs before completion...
      const before = buf.slice(start);
      before[TCP.checksum] = plain[TCP.checksum] as number;
      before[TCP.checksum + 1] = plain[TCP.checksum + 1] as number;
      expect(before).toEqual(plain);
      // ...and after it the segment is the plain one, and it verifies.
      completeChecksum(buf, start, TCP.checksum);
      expect(buf.subarray(start)).toEqual(plain);
      expect(decodeSegment(buf.subarray(start), pseudo).seq).toBe(seg.seq);
    },
  );
});
