import fc from 'fast-check';
import type { SackBlock, TcpOptions } from './options.ts';
import { optionsLength } from './options.ts';
import type { PseudoHeader, TcpSegment } from './segment.ts';

const u32 = fc.integer({ min: 0, max: 0xffffffff });

export const arbitrarySackBlock: fc.Arbitrary<SackBlock> = fc.record({ left: u32, right: u32 });

/** Options whose canonical encoding fits in 40 bytes (larger sets are filtered out). */
export const arbitraryTcpOptions: fc.Arbitrary<TcpOptions> = fc
  .record(
    {
      mss: fc.integer({ min: 0, max: 0xffff }),
      windowScale: fc.integer({ min: 0, max: 255 }),
      sackPermitted: fc.constant(true),
      sack: fc.array(arbitrarySackBlock, { minLength: 1, maxLength: 4 }),
      timestamps: fc.record({ value: u32, echo: u32 }),
      fastOpen: fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ minLength: 4, maxLength: 16 })),
      unknown: fc.array(
        fc.record({
          kind: fc.integer({ min: 0, max: 255 }).filter((k) => ![0, 1, 2, 3, 4, 5, 8, 34].includes(k)),
          data: fc.uint8Array({ maxLength: 10 }),
        }),
        { minLength: 1, maxLength: 2 },
      ),
    },
    { requiredKeys: [] },
  )
  .filter((o) => optionsLength(o) <= 40);

export const arbitraryTcpFlags: fc.Arbitrary<number> = fc.integer({ min: 0, max: 0x0fff });

export const arbitraryTcpSegment = (maxPayload = 64): fc.Arbitrary<TcpSegment> =>
  fc.record({
    srcPort: fc.integer({ min: 0, max: 0xffff }),
    dstPort: fc.integer({ min: 0, max: 0xffff }),
    seq: u32,
    ack: u32,
    flags: arbitraryTcpFlags,
    window: fc.integer({ min: 0, max: 0xffff }),
    urgentPointer: fc.integer({ min: 0, max: 0xffff }),
    options: arbitraryTcpOptions,
    payload: fc.uint8Array({ maxLength: maxPayload }),
  });

const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((b) => b.join('.'));
const v6 = fc
  .array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 })
  .map((w) => w.map((x) => x.toString(16)).join(':'));

/** A pseudo-header of two addresses of one family. */
export const arbitraryPseudoHeader: fc.Arbitrary<PseudoHeader<string>> = fc.oneof(
  fc.record({ src: v4, dst: v4 }),
  fc.record({ src: v6, dst: v6 }),
);
