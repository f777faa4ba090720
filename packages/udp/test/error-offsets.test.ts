import { fc, test as fcTest } from '@fast-check/vitest';
import { readU16, writeU16 } from '@stepwire/wire';
import { arbitraryBytes, parseErrorOf } from '@stepwire/wire/testing';
import { describe, expect } from 'vitest';
import { decodeUdp, decodeUdpHeader, encodeUdp, UDP, UDP_HEADER_LENGTH } from '../src/datagram.ts';
import { arbitraryPseudoHeader, arbitraryUdpDatagram } from '../src/testing.ts';

// ParseError's offset rule (packages/wire/src/errors.ts): the offset of the field that
// failed, from the start of the buffer given to the decoder; never past its end.

const FIELD_SIZE = 2; // every UDP header field is 16 bits (RFC 768)

describe('UDP error offsets', () => {
  fcTest.prop([arbitraryBytes(64), arbitraryPseudoHeader])(
    'any ParseError offset lies within the buffer, inside it once the header is there',
    (bytes, pseudo) => {
      const decoders: ((b: Uint8Array) => unknown)[] = [(b) => decodeUdp(b, pseudo), decodeUdpHeader];
      for (const decode of decoders) {
        const e = parseErrorOf(decode, bytes);
        if (e === undefined) continue;
        expect(e.offset).toBeGreaterThanOrEqual(0);
        expect(e.offset).toBeLessThanOrEqual(bytes.length);
        if (bytes.length >= UDP_HEADER_LENGTH) expect(e.offset).toBeLessThan(bytes.length);
        expect(Object.entries(UDP)).toContainEqual([e.field, e.offset]);
      }
    },
  );

  fcTest.prop([arbitraryUdpDatagram, arbitraryPseudoHeader, fc.nat(UDP_HEADER_LENGTH - 1)])(
    'a header cut short names the field it ends in',
    (d, pseudo, keep) => {
      const wire = encodeUdp(d, pseudo).subarray(0, keep);
      const e = parseErrorOf((b) => decodeUdp(b, pseudo), wire);
      expect(e).toBeDefined();
      // The input ends inside the named field, or exactly where it starts.
      expect(e?.offset).toBeLessThanOrEqual(keep);
      expect(keep).toBeLessThan((e?.offset ?? 0) + FIELD_SIZE);
      expect(UDP[e?.field as keyof typeof UDP]).toBe(e?.offset);
    },
  );

  fcTest.prop([
    arbitraryUdpDatagram,
    arbitraryPseudoHeader,
    fc.oneof(fc.nat(UDP_HEADER_LENGTH - 1), fc.integer({ min: 1, max: 0xffff })),
  ])('a Length below 8 or past the bytes present points at Length', (d, pseudo, delta) => {
    const wire = encodeUdp(d, pseudo).slice();
    // delta < 8: a Length below the header; otherwise one past what is there.
    const bad = delta < UDP_HEADER_LENGTH ? delta : Math.min(0xffff, wire.length + delta);
    fc.pre(bad < UDP_HEADER_LENGTH || bad > wire.length);
    writeU16(wire, UDP.length, bad);
    const e = parseErrorOf((b) => decodeUdp(b, pseudo), wire);
    expect(e?.field).toBe('length');
    expect(e?.offset).toBe(UDP.length);
  });

  fcTest.prop([arbitraryUdpDatagram, arbitraryPseudoHeader, fc.nat(), fc.integer({ min: 1, max: 255 })])(
    'a flipped bit anywhere the checksum covers points at Checksum',
    (d, pseudo, where, flip) => {
      const wire = encodeUdp(d, pseudo).slice();
      const at = where % wire.length;
      // Not the Length field: a changed Length is caught as Length (the property above).
      fc.pre(at !== UDP.length && at !== UDP.length + 1);
      wire[at] = (wire[at] ?? 0) ^ flip;
      // A single changed byte always changes the ones'-complement sum (it cannot turn a
      // word into its other zero), so only a checksum turned into zero over IPv4 ("no
      // checksum", RFC 768) may pass.
      const e = parseErrorOf((b) => decodeUdp(b, pseudo), wire);
      if (e === undefined) {
        expect(readU16(wire, UDP.checksum)).toBe(0);
        expect(pseudo.src.includes(':')).toBe(false);
        return;
      }
      expect(e.field).toBe('checksum');
      expect(e.offset).toBe(UDP.checksum);
    },
  );
});
