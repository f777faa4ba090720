import fc from 'fast-check';
import type { PacketInfo } from './link.ts';
import type { PcapFile, PcapRecord } from './pcap.ts';
import {
  BT_DSB,
  BT_EPB,
  BT_IDB,
  BT_SHB,
  BT_SPB,
  type PcapngBlock,
  type PcapngFile,
  type PcapngOption,
  SECRETS_TYPE_TLS_KEYLOG,
} from './pcapng.ts';
import type { VirtioNetHdr, VnetGsoType } from './vnet-hdr.ts';

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

const arbitraryPcapngOptions = (max = 3): fc.Arbitrary<PcapngOption[]> =>
  fc.array(
    fc.record({ code: fc.integer({ min: 1, max: 0xffff }), value: fc.uint8Array({ maxLength: 24 }) }),
    { maxLength: max },
  );

const KNOWN_BLOCK_TYPES = new Set([BT_SHB, BT_IDB, BT_SPB, BT_EPB, BT_DSB]);

/** Any block the pcapng decoder reads back as itself (an unknown block's body is a multiple of 4). */
export const arbitraryPcapngBlock: fc.Arbitrary<PcapngBlock> = fc.oneof(
  fc.record({
    type: fc.constant('idb' as const),
    linkType: fc.nat({ max: 0xffff }),
    snaplen: fc.nat({ max: 0xffffffff }),
    options: arbitraryPcapngOptions(),
  }),
  fc.record({
    type: fc.constant('epb' as const),
    interfaceId: fc.nat({ max: 0xffffffff }),
    timestamp: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    originalLength: fc.nat({ max: 0xffffffff }),
    data: fc.uint8Array({ maxLength: 96 }),
    options: arbitraryPcapngOptions(),
  }),
  // §4.4: a Simple Packet Block's data is the whole packet unless snaplen cut it.
  fc
    .uint8Array({ maxLength: 96 })
    .map((data) => ({ type: 'spb' as const, originalLength: data.length, data })),
  fc.record({
    type: fc.constant('dsb' as const),
    secretsType: fc.oneof(fc.constant(SECRETS_TYPE_TLS_KEYLOG), fc.nat({ max: 0xffffffff })),
    secrets: fc.uint8Array({ maxLength: 96 }),
    options: arbitraryPcapngOptions(),
  }),
  fc.record({
    type: fc.constant('unknown' as const),
    blockType: fc.nat({ max: 0xffffffff }).filter((t) => !KNOWN_BLOCK_TYPES.has(t)),
    body: fc.nat({ max: 16 }).chain((n) => fc.uint8Array({ minLength: n * 4, maxLength: n * 4 })),
  }),
);

/** Any pcapng file: one or more sections, each in either byte order. */
export const arbitraryPcapngFile: fc.Arbitrary<PcapngFile> = fc.record({
  sections: fc.array(
    fc.record({
      byteOrder: fc.constantFrom<'le' | 'be'>('le', 'be'),
      versionMajor: fc.constant(1),
      versionMinor: fc.nat({ max: 0xffff }),
      sectionLength: fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
      options: arbitraryPcapngOptions(),
      blocks: fc.array(arbitraryPcapngBlock, { maxLength: 6 }),
    }),
    { minLength: 1, maxLength: 3 },
  ),
});

/** Any virtio-net header the decoder accepts (every flag mix, every GSO type, any u16 fields). */
export const arbitraryVnetHdr: fc.Arbitrary<VirtioNetHdr> = fc
  .record({
    needsCsum: fc.boolean(),
    dataValid: fc.boolean(),
    rscInfo: fc.boolean(),
    gsoType: fc.constantFrom<VnetGsoType>('none', 'tcpv4', 'udp', 'tcpv6', 'udp_l4'),
    gsoEcn: fc.boolean(),
    hdrLen: fc.nat({ max: 0xffff }),
    gsoSize: fc.nat({ max: 0xffff }),
    csumStart: fc.nat({ max: 0xffff }),
    csumOffset: fc.nat({ max: 0xffff }),
  })
  .map((h) => (h.gsoType === 'none' ? { ...h, gsoEcn: false } : h));

/** PacketInfo as a sender hands it to a link with offloads (what the virtio header can say on send). */
export const arbitrarySendPacketInfo: fc.Arbitrary<PacketInfo> = fc.record(
  {
    csum: fc.record({
      kind: fc.constant('partial' as const),
      start: fc.nat({ max: 0xffff }),
      offset: fc.nat({ max: 0xffff }),
    }),
    gso: fc.record({
      type: fc.constantFrom<'tcpv4' | 'tcpv6'>('tcpv4', 'tcpv6'),
      size: fc.integer({ min: 1, max: 0xffff }),
      hdrLen: fc.nat({ max: 0xffff }),
    }),
  },
  { requiredKeys: [] },
);
