import { fc, test as fcTest } from '@fast-check/vitest';
import { decodeSegment, encodeSegment, type TcpSegment } from '@stepwire/tcp';
import { arbitraryTcpSegment } from '@stepwire/tcp/testing';
import { ParseError } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { completeChecksum } from '../src/checksum.ts';
import { type GsoSpec, gsoSegment, TCP_GSO_FIELD } from '../src/gso.ts';
import { decodeIpv4, encodeIpv4, type Ipv4Packet } from '../src/ipv4.ts';
import { decodeIpv6, encodeIpv6, type Ipv6Packet } from '../src/ipv6.ts';
import { arbitraryIpv4Packet, arbitraryIpv6Packet, ipv4Packet } from '../src/testing.ts';
import { IPPROTO_TCP } from '../src/types.ts';

/**
 * Software GSO (gso.ts) against our own codecs as the oracle: every cut packet decodes as
 * IPv4/IPv6 and TCP with its checksums verified, the data tiles the super-segment's in
 * order, sequence numbers advance by the data before each piece, CWR only on the first,
 * FIN and PSH only on the last (RFC 9293 §3.1, RFC 3168 §6.1.2, Linux tcp_gso_segment),
 * and each piece is byte for byte what the encoders build for that segment alone.
 */

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const PSH = 0x08;
const URG = 0x20;
const CWR = 0x80;

interface Case {
  ip: { v: 4; p: Ipv4Packet } | { v: 6; p: Ipv6Packet };
  seg: TcpSegment;
  size: number;
}

/** A TCP segment (no SYN, no RST) with up to 40 pieces' worth of data of `size` bytes. */
const superSegment = fc
  .oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 500, max: 1460 }))
  .chain((size) =>
    fc.record({
      size: fc.constant(size),
      seg: arbitraryTcpSegment(0).map((s) => ({ ...s, flags: s.flags & ~(SYN | RST) })),
      data: fc.uint8Array({ maxLength: Math.min(8000, size * 40), size: 'medium' }),
    }),
  )
  .map(({ size, seg, data }) => ({ size, seg: { ...seg, payload: data } }));

const ipHeader = fc.oneof(
  arbitraryIpv4Packet(0).map((p) => ({
    v: 4 as const,
    p: { ...p, protocol: IPPROTO_TCP, moreFragments: false, fragmentOffset: 0 },
  })),
  arbitraryIpv6Packet(0)
    .filter((p) => p.extensionHeaders.every((h) => h.kind !== 'fragment'))
    .map((p) => ({ v: 6 as const, p: { ...p, nextHeader: IPPROTO_TCP } })),
);

const arbitraryCase: fc.Arbitrary<Case> = fc
  .tuple(ipHeader, superSegment)
  .map(([ip, { size, seg }]) => ({ ip, seg, size }))
  // A super-segment is one IP datagram: IPv4 total length / IPv6 payload length ≤ 65535.
  .filter((c) => encodeCase(c).packet.length <= (c.ip.v === 4 ? 0xffff : 0xffff + 40));

function encodeIp(ip: Case['ip'], payload: Uint8Array): Uint8Array {
  return ip.v === 4 ? encodeIpv4({ ...ip.p, payload }) : encodeIpv6({ ...ip.p, payload });
}

function encodeCase(
  c: Case,
  seg: TcpSegment = c.seg,
  ip: Case['ip'] = c.ip,
): { packet: Uint8Array; gso: GsoSpec; l4: number } {
  const tcp = encodeSegment(seg, { src: ip.p.src, dst: ip.p.dst });
  const packet = encodeIp(ip, tcp);
  const hdrLen = packet.length - seg.payload.length;
  return {
    packet,
    gso: { type: ip.v === 4 ? 'tcpv4' : 'tcpv6', size: c.size, hdrLen },
    l4: packet.length - tcp.length,
  };
}

/** The pieces as the RFC rules say they must be, built with the codecs alone. */
function expected(c: Case): Uint8Array[] {
  const data = c.seg.payload;
  const n = Math.max(1, Math.ceil(data.length / c.size));
  const out: Uint8Array[] = [];
  for (let k = 0; k < n; k++) {
    let flags = c.seg.flags;
    if (k > 0) flags &= ~CWR;
    if (k < n - 1) flags &= ~(FIN | PSH);
    let urgentPointer = c.seg.urgentPointer;
    if (flags & URG) {
      urgentPointer -= k * c.size;
      if (urgentPointer <= 0) {
        flags &= ~URG;
        urgentPointer = 0;
      }
    }
    const seg = {
      ...c.seg,
      seq: (c.seg.seq + k * c.size) >>> 0,
      flags,
      urgentPointer,
      payload: data.subarray(k * c.size, (k + 1) * c.size),
    };
    const ip: Case['ip'] =
      c.ip.v === 4 ? { v: 4, p: { ...c.ip.p, identification: (c.ip.p.identification + k) & 0xffff } } : c.ip;
    out.push(encodeCase(c, seg, ip).packet);
  }
  return out;
}

function decodeTcp(v: 4 | 6, packet: Uint8Array): { ip: Ipv4Packet | Ipv6Packet; seg: TcpSegment } {
  const ip = v === 4 ? decodeIpv4(packet) : decodeIpv6(packet);
  return { ip, seg: decodeSegment(ip.payload, { src: ip.src, dst: ip.dst }) };
}

describe('software GSO: cutting a TCP super-segment', () => {
  fcTest.prop([arbitraryCase], { numRuns: 150 })(
    'pieces decode with verified checksums, tile the data and sequence space, carry flags as RFC 9293 / RFC 3168 and Linux say',
    (c) => {
      const { packet, gso, l4 } = encodeCase(c);
      const { packets, transportOffset } = gsoSegment(packet, gso);
      expect(transportOffset).toBe(l4);
      const n = packets.length;
      expect(n).toBe(Math.max(1, Math.ceil(c.seg.payload.length / c.size)));
      const chunks: Uint8Array[] = [];
      let seq = c.seg.seq;
      packets.forEach((pkt, k) => {
        // Every piece fits what the super-segment promised: headers + at most `size` bytes.
        expect(pkt.length).toBeLessThanOrEqual(gso.hdrLen + c.size);
        const { ip, seg } = decodeTcp(c.ip.v, pkt);
        expect(ip.src).toBe(c.ip.p.src);
        expect(ip.dst).toBe(c.ip.p.dst);
        if (c.ip.v === 4) {
          expect((ip as Ipv4Packet).identification).toBe((c.ip.p.identification + k) & 0xffff);
          expect((ip as Ipv4Packet).dontFragment).toBe(c.ip.p.dontFragment);
        } else {
          expect((ip as Ipv6Packet).extensionHeaders).toEqual(c.ip.p.extensionHeaders);
        }
        expect(seg.seq).toBe(seq);
        seq = (seq + seg.payload.length) >>> 0;
        if (k < n - 1) expect(seg.payload.length).toBe(c.size);
        const first = k === 0;
        const last = k === n - 1;
        expect(seg.flags & CWR).toBe(first ? c.seg.flags & CWR : 0);
        expect(seg.flags & (FIN | PSH)).toBe(last ? c.seg.flags & (FIN | PSH) : 0);
        // Every other control bit (ACK, ECE, reserved) as the super-segment had it.
        expect(seg.flags & ~(CWR | FIN | PSH | URG)).toBe(c.seg.flags & ~(CWR | FIN | PSH | URG));
        expect(seg.ack).toBe(c.seg.ack);
        expect(seg.window).toBe(c.seg.window);
        expect(seg.options).toEqual(c.seg.options);
        chunks.push(seg.payload);
      });
      expect(Buffer.concat(chunks)).toEqual(Buffer.from(c.seg.payload));
      expect(seq).toBe((c.seg.seq + c.seg.payload.length) >>> 0);
      // And each piece is exactly what the codecs build for that segment on its own.
      expect(packets.map((p) => Buffer.from(p))).toEqual(expected(c).map((p) => Buffer.from(p)));
    },
  );

  fcTest.prop([arbitraryCase], { numRuns: 60 })(
    "a partial checksum, completed as a link would, gives the full cut's bytes",
    (c) => {
      const { packet, gso } = encodeCase(c);
      const full = gsoSegment(packet, gso, 'full');
      const partial = gsoSegment(packet, gso, 'partial');
      for (const p of partial.packets) completeChecksum(p, partial.transportOffset, TCP_GSO_FIELD.checksum);
      expect(partial.packets.map((p) => Buffer.from(p))).toEqual(full.packets.map((p) => Buffer.from(p)));
    },
  );

  fcTest.prop([arbitraryCase])(
    "the super-segment's own TCP checksum field is ignored (TCP may leave it partial or garbage)",
    (c) => {
      const { packet, gso, l4 } = encodeCase(c);
      const before = gsoSegment(packet, gso).packets.map((p) => Buffer.from(p));
      const at = l4 + TCP_GSO_FIELD.checksum;
      packet[at] = (packet[at] ?? 0) ^ 0x5a;
      expect(gsoSegment(packet, gso).packets.map((p) => Buffer.from(p))).toEqual(before);
    },
  );

  fcTest.prop([
    fc.uint8Array({ maxLength: 200 }),
    fc.constantFrom<GsoSpec['type']>('tcpv4', 'tcpv6'),
    fc.integer({ min: -2, max: 70000 }),
    fc.integer({ min: 0, max: 120 }),
  ])('arbitrary bytes and metadata: pieces or a ParseError, nothing else', (bytes, type, size, hdrLen) => {
    try {
      const { packets } = gsoSegment(bytes, { type, size, hdrLen });
      expect(packets.length).toBeGreaterThan(0);
    } catch (e) {
      expect(e).toBeInstanceOf(ParseError);
    }
  });

  it('a 4-piece IPv4 super-segment: ids, sequence numbers, lengths and flags', () => {
    const data = new Uint8Array(3 * 1000 + 10).map((_, i) => i & 0xff);
    const c: Case = {
      ip: {
        v: 4,
        p: ipv4Packet({
          ecn: 2,
          identification: 0xfffe,
          protocol: IPPROTO_TCP,
          src: '198.18.0.1',
          dst: '198.18.0.2',
          payload: new Uint8Array(0),
        }),
      },
      seg: {
        srcPort: 40000,
        dstPort: 5001,
        seq: 0xfffffc00, // wraps within the super-segment
        ack: 77,
        flags: CWR | 0x10 | PSH | FIN,
        window: 512,
        urgentPointer: 0,
        options: { timestamps: { value: 1, echo: 2 } },
        payload: data,
      },
      size: 1000,
    };
    const { packet, gso } = encodeCase(c);
    expect(gso.hdrLen).toBe(20 + 32);
    const { packets } = gsoSegment(packet, gso);
    const got = packets.map((p) => {
      const { ip, seg } = decodeTcp(4, p);
      return { len: p.length, id: (ip as Ipv4Packet).identification, seq: seg.seq, flags: seg.flags };
    });
    expect(got).toEqual([
      { len: 1052, id: 0xfffe, seq: 0xfffffc00, flags: CWR | 0x10 },
      { len: 1052, id: 0xffff, seq: 0xfffffc00 + 1000, flags: 0x10 },
      { len: 1052, id: 0, seq: (0xfffffc00 + 2000) >>> 0, flags: 0x10 },
      { len: 62, id: 1, seq: (0xfffffc00 + 3000) >>> 0, flags: 0x10 | PSH | FIN },
    ]);
  });

  it('URG stays on the pieces up to the urgent point, its pointer counted from each', () => {
    const c: Case = {
      ip: {
        v: 6,
        p: {
          trafficClass: 0,
          flowLabel: 7,
          hopLimit: 64,
          src: 'fd00::1',
          dst: 'fd00::2',
          extensionHeaders: [],
          nextHeader: IPPROTO_TCP,
          payload: new Uint8Array(0),
        },
      },
      seg: {
        srcPort: 1,
        dstPort: 2,
        seq: 100,
        ack: 0,
        flags: 0x10 | URG,
        window: 1,
        urgentPointer: 1500, // RFC 9293 §3.8.5: urgent data ends before seq 1600
        options: {},
        payload: new Uint8Array(4000),
      },
      size: 1000,
    };
    const { packet, gso } = encodeCase(c);
    const segs = gsoSegment(packet, gso).packets.map((p) => decodeTcp(6, p).seg);
    expect(segs.map((s) => [s.seq, s.flags & URG, s.urgentPointer])).toEqual([
      [100, URG, 1500],
      [1100, URG, 500],
      [2100, 0, 0],
      [3100, 0, 0],
    ]);
  });

  it('refuses what is no super-segment: SYN, RST, a fragment, not TCP, a wrong header length', () => {
    const c: Case = {
      ip: {
        v: 4,
        p: ipv4Packet({
          protocol: IPPROTO_TCP,
          src: '198.18.0.1',
          dst: '198.18.0.2',
          payload: new Uint8Array(0),
        }),
      },
      seg: {
        srcPort: 1,
        dstPort: 2,
        seq: 1,
        ack: 0,
        flags: 0x10,
        window: 1,
        urgentPointer: 0,
        options: {},
        payload: new Uint8Array(3000),
      },
      size: 1000,
    };
    const field = (cc: Case, gsoOverride?: Partial<GsoSpec>): string => {
      const { packet, gso } = encodeCase(cc);
      try {
        gsoSegment(packet, { ...gso, ...gsoOverride });
      } catch (e) {
        if (e instanceof ParseError) return `${e.layer}.${e.field}`;
        throw e;
      }
      return 'accepted';
    };
    expect(field(c)).toBe('accepted');
    expect(field({ ...c, seg: { ...c.seg, flags: SYN | 0x10 } })).toBe('tcp.flags');
    expect(field({ ...c, seg: { ...c.seg, flags: RST } })).toBe('tcp.flags');
    const frag = { ...c, ip: { v: 4 as const, p: { ...(c.ip.p as Ipv4Packet), moreFragments: true } } };
    expect(field(frag)).toBe('ipv4.flags');
    const udp = { ...c, ip: { v: 4 as const, p: { ...(c.ip.p as Ipv4Packet), protocol: 17 } } };
    expect(field(udp)).toBe('ipv4.protocol');
    expect(field(c, { hdrLen: 44 })).toBe('gso.hdrLen');
    expect(field(c, { size: 0 })).toBe('gso.size');
    expect(field(c, { type: 'tcpv6' })).toBe('ipv6.version');
  });
});
