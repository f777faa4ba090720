import { fc, test as fcTest } from '@fast-check/vitest';
import { arbitraryBytes, parseErrorOf } from '@stepwire/wire/testing';
import { describe, expect } from 'vitest';
import {
  decodeIcmpv4,
  decodeIcmpv6,
  encodeIcmpv4,
  encodeIcmpv6,
  ICMP_ECHO,
  ICMP_ERROR,
  ICMP_HEADER,
  ICMPV4_PARAM_LAYOUT,
  ICMPV4_UNREACH_LAYOUT,
  ICMPV6_PACKET_TOO_BIG_LAYOUT,
  ICMPV6_PARAM_LAYOUT,
  type IcmpKind,
  type IcmpMessage,
} from '../src/icmp.ts';
import { arbitraryIcmpv4Message, arbitraryIcmpv6Message } from '../src/testing.ts';

// ParseError's offset rule (packages/wire/src/errors.ts): the offset of the field that
// failed, from the start of the buffer given to the decoder; never past its end.

type Layout = Readonly<Record<string, number>>;
const LAYOUTS: readonly Layout[] = [
  ICMP_HEADER,
  ICMP_ECHO,
  ICMP_ERROR,
  ICMPV4_UNREACH_LAYOUT,
  ICMPV4_PARAM_LAYOUT,
  ICMPV6_PACKET_TOO_BIG_LAYOUT,
  ICMPV6_PARAM_LAYOUT,
];
/** Every (field, offset) pair some layout names. */
const NAMED = new Set(LAYOUTS.flatMap((l) => Object.entries(l).map(([f, o]) => `${f}@${o}`)));

/** The layout the RFC gives each kind of message, [ICMPv4, ICMPv6] (the fixed part ends at its last field). */
const LAYOUT_OF: Record<IcmpKind, [Layout, Layout]> = {
  'echo-request': [ICMP_ECHO, ICMP_ECHO],
  'echo-reply': [ICMP_ECHO, ICMP_ECHO],
  'destination-unreachable': [ICMPV4_UNREACH_LAYOUT, ICMP_ERROR],
  'time-exceeded': [ICMP_ERROR, ICMP_ERROR],
  'packet-too-big': [ICMPV6_PACKET_TOO_BIG_LAYOUT, ICMPV6_PACKET_TOO_BIG_LAYOUT],
  'parameter-problem': [ICMPV4_PARAM_LAYOUT, ICMPV6_PARAM_LAYOUT],
  unknown: [ICMP_HEADER, ICMP_HEADER],
};
const layoutOf = (m: IcmpMessage, version: 4 | 6): Layout => LAYOUT_OF[m.kind][version === 4 ? 0 : 1];

/** [field, start, end) of the fixed field that byte `at` falls in (the last field runs on). */
function fieldAt(layout: Layout, at: number): [string, number, number] {
  const entries = Object.entries(layout);
  for (let i = entries.length - 1; i >= 0; i--) {
    const [name, start] = entries[i] as [string, number];
    if (start <= at) return [name, start, entries[i + 1]?.[1] ?? Number.POSITIVE_INFINITY];
  }
  throw new Error(`no field at ${at}`);
}

const SRC = 'fd00::1';
const DST = 'fd00::2';
const decoders: [string, 4 | 6, (b: Uint8Array) => unknown, (b: Uint8Array) => unknown][] = [
  ['ICMPv4', 4, (b) => decodeIcmpv4(b), (b) => decodeIcmpv4(b, { verifyChecksum: false })],
  [
    'ICMPv6',
    6,
    (b) => decodeIcmpv6(b, SRC, DST),
    (b) => decodeIcmpv6(b, SRC, DST, { verifyChecksum: false }),
  ],
];

describe.each(decoders)('%s error offsets', (_name, version, decode, decodeUnchecked) => {
  const arbitraryMessage = version === 4 ? arbitraryIcmpv4Message : arbitraryIcmpv6Message;
  const encode = (m: IcmpMessage): Uint8Array =>
    version === 4 ? encodeIcmpv4(m) : encodeIcmpv6(m, SRC, DST);

  fcTest.prop([arbitraryBytes(48)])(
    'any ParseError names a field at its offset, within the buffer',
    (bytes) => {
      for (const d of [decode, decodeUnchecked]) {
        const e = parseErrorOf(d, bytes);
        if (e === undefined) continue;
        expect(e.offset).toBeGreaterThanOrEqual(0);
        expect(e.offset).toBeLessThanOrEqual(bytes.length);
        if (bytes.length >= ICMP_ERROR.original) expect(e.offset).toBeLessThan(bytes.length);
        expect(NAMED).toContain(`${e.field}@${e.offset}`);
      }
    },
  );

  fcTest.prop([arbitraryMessage, fc.nat()])(
    'a message cut inside its fixed part names the field it ends in',
    (m, cut) => {
      const layout = layoutOf(m, version);
      const fixed = Math.max(...Object.values(layout));
      const keep = cut % fixed;
      const e = parseErrorOf(decodeUnchecked, encode(m).subarray(0, keep));
      // Short of the common four bytes the common layout is all that is known yet.
      const [field, start, end] = fieldAt(keep < ICMP_HEADER.body ? ICMP_HEADER : layout, keep);
      expect(e?.field).toBe(field);
      expect(e?.offset).toBe(start);
      expect(keep).toBeLessThan(end);
    },
  );

  fcTest.prop([arbitraryMessage, fc.nat(), fc.integer({ min: 1, max: 255 })])(
    'a changed byte anywhere points at Checksum',
    (m, where, flip) => {
      const wire = encode(m).slice();
      const at = where % wire.length;
      wire[at] = (wire[at] ?? 0) ^ flip;
      // One changed byte always changes the ones'-complement sum (RFC 1071).
      const e = parseErrorOf(decode, wire);
      expect(e?.field).toBe('checksum');
      expect(e?.offset).toBe(ICMP_HEADER.checksum);
    },
  );

  if (version === 6) {
    fcTest.prop([arbitraryIcmpv6Message])(
      'ICMPv6: another source address (the pseudo-header) points at Checksum',
      (m) => {
        // fd00::3 sums 2 more than fd00::1, so the pseudo-header sum differs (RFC 8200 §8.1).
        const e = parseErrorOf((b) => decodeIcmpv6(b, 'fd00::3', DST), encode(m));
        expect(e?.field).toBe('checksum');
        expect(e?.offset).toBe(ICMP_HEADER.checksum);
      },
    );
  }
});
