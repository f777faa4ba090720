import { fc, test as fcTest } from '@fast-check/vitest';
import { ByteWriter } from '@stepwire/wire';
import { arbitraryBytes, parseErrorOf } from '@stepwire/wire/testing';
import { describe, expect } from 'vitest';
import {
  decodeOptions,
  MAX_OPTIONS_LENGTH,
  OPT_EOL,
  OPT_LENGTH,
  OPT_MSS,
  OPT_NOP,
  OPT_SACK,
  OPT_SACK_PERMITTED,
  OPT_TIMESTAMPS,
  OPT_WSCALE,
  optionsLength,
  TCP_OPTION,
  type TcpOptions,
  writeOptions,
} from '../src/options.ts';
import { decodeSegment, encodeSegment, TCP_HEADER_LENGTH } from '../src/segment.ts';
import { arbitraryPseudoHeader, arbitraryTcpOptions, arbitraryTcpSegment } from '../src/testing.ts';

// ParseError's offset rule (packages/wire/src/errors.ts): the offset of the field that
// failed, from the start of the buffer given to the decoder. For TCP options every
// error is about an option's size, so it points at that option's Length byte; inside a
// segment the same byte is counted from the segment's first byte.

function encodeOptions(o: TcpOptions): Uint8Array {
  const w = new ByteWriter(MAX_OPTIONS_LENGTH);
  writeOptions(w, o);
  return w.finish().slice();
}

/** [start, kind] of every option but NOP, read by RFC 9293 §3.1's two cases, not by the codec. */
function optionStarts(area: Uint8Array): [number, number][] {
  const out: [number, number][] = [];
  let at = 0;
  while (at < area.length) {
    const kind = area[at] ?? OPT_EOL;
    if (kind === OPT_EOL) break;
    if (kind === OPT_NOP) {
      at++;
      continue;
    }
    out.push([at, kind]);
    at += area[at + TCP_OPTION.length] ?? 0;
  }
  return out;
}

/** The Length a well-formed option of this kind must have, if it has only one. */
const FIXED: ReadonlyMap<number, number> = new Map([
  [OPT_MSS, OPT_LENGTH.mss],
  [OPT_WSCALE, OPT_LENGTH.windowScale],
  [OPT_SACK_PERMITTED, OPT_LENGTH.sackPermitted],
  [OPT_TIMESTAMPS, OPT_LENGTH.timestamps],
]);

/** Is `len` a Length the codec must refuse for an option of `kind` that starts at `start`? */
function refused(kind: number, len: number, start: number, areaLength: number): boolean {
  if (len < TCP_OPTION.data || start + len > areaLength) return true;
  const fixed = FIXED.get(kind);
  if (fixed !== undefined) return len !== fixed;
  if (kind === OPT_SACK) return len < 10 || (len - TCP_OPTION.data) % 8 !== 0;
  return false;
}

const nonEmptyOptions = arbitraryTcpOptions.filter((o) => optionsLength(o) > 0);

describe('TCP options error offsets', () => {
  fcTest.prop([arbitraryBytes(MAX_OPTIONS_LENGTH)])(
    'any ParseError points at an option Length byte, at most one past the end',
    (bytes) => {
      const e = parseErrorOf(decodeOptions, bytes);
      if (e === undefined) return;
      expect(e.offset).toBeGreaterThanOrEqual(TCP_OPTION.length);
      expect(e.offset).toBeLessThanOrEqual(bytes.length);
      // The byte before is the option's Kind: neither EOL nor NOP (they have no Length).
      const kind = bytes[e.offset - TCP_OPTION.length];
      expect(kind).not.toBe(OPT_EOL);
      expect(kind).not.toBe(OPT_NOP);
      // Only a Kind as the last byte leaves the Length outside the buffer.
      if (e.offset === bytes.length) expect(e.field).toBe('option length');
    },
  );

  fcTest.prop([nonEmptyOptions, fc.nat(), fc.integer({ min: 0, max: 255 })])(
    'a refused Length points at that option, alone or inside a segment',
    (o, which, len) => {
      const area = encodeOptions(o);
      const starts = optionStarts(area);
      const [start, kind] = starts[which % starts.length] ?? [0, 0];
      fc.pre(refused(kind, len, start, area.length));
      area[start + TCP_OPTION.length] = len;
      const e = parseErrorOf(decodeOptions, area);
      expect(e?.offset).toBe(start + TCP_OPTION.length);
      // The same options behind a segment header: offsets count from the segment's start.
      const pseudo = { src: '198.18.0.1', dst: '198.18.0.2' };
      const seg = encodeSegment(
        {
          srcPort: 1,
          dstPort: 2,
          seq: 0,
          ack: 0,
          flags: 0x10,
          window: 0,
          urgentPointer: 0,
          options: o,
          payload: new Uint8Array(0),
        },
        pseudo,
      ).slice();
      seg[TCP_HEADER_LENGTH + start + TCP_OPTION.length] = len;
      const s = parseErrorOf((b) => decodeSegment(b, pseudo, { verifyChecksum: false }), seg);
      expect(s?.offset).toBe(TCP_HEADER_LENGTH + start + TCP_OPTION.length);
      expect(s?.field).toBe(e?.field);
    },
  );

  fcTest.prop([arbitraryTcpSegment(), arbitraryPseudoHeader, fc.nat()])(
    'a segment cut inside its options points at a Length byte within the cut',
    (seg, pseudo, cut) => {
      const wire = encodeSegment(seg, pseudo);
      const area = wire.length - seg.payload.length - TCP_HEADER_LENGTH;
      fc.pre(area > 0);
      const keep = TCP_HEADER_LENGTH + (cut % area);
      const e = parseErrorOf(
        (b) => decodeSegment(b, pseudo, { verifyChecksum: false }),
        wire.subarray(0, keep),
      );
      expect(e).toBeDefined();
      expect(e?.offset).toBeGreaterThanOrEqual(0);
      expect(e?.offset).toBeLessThanOrEqual(keep);
    },
  );
});
