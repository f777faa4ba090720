import fc from 'fast-check';
import type { PcapFile, PcapRecord } from './pcap.ts';

/** Any well-formed pcap record for a file of the given precision. */
export const arbitraryPcapRecord = (precision: 'usec' | 'nsec', maxData = 128): fc.Arbitrary<PcapRecord> =>
  fc.record({
    tsSec: fc.nat({ max: 0xffffffff }),
    tsFrac: fc.nat({ max: precision === 'nsec' ? 999_999_999 : 999_999 }),
    origLen: fc.nat({ max: 0xffffffff }),
    data: fc.uint8Array({ maxLength: maxData }),
  });

/** Any pcap file the decoder accepts: either byte order, either precision, any header values. */
export const arbitraryPcapFile: fc.Arbitrary<PcapFile> = fc
  .constantFrom<'usec' | 'nsec'>('usec', 'nsec')
  .chain((precision) =>
    fc.record({
      byteOrder: fc.constantFrom<'le' | 'be'>('le', 'be'),
      precision: fc.constant(precision),
      versionMajor: fc.constant(2),
      versionMinor: fc.nat({ max: 0xffff }),
      thiszone: fc.integer({ min: -0x80000000, max: 0x7fffffff }),
      sigfigs: fc.nat({ max: 0xffffffff }),
      snaplen: fc.nat({ max: 0xffffffff }),
      linkType: fc.nat({ max: 0xffffffff }),
      records: fc.array(arbitraryPcapRecord(precision), { maxLength: 8 }),
    }),
  );
