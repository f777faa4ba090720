import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fc, test as fcTest } from '@fast-check/vitest';
import { PcapWriter } from '@stepwire/link';
import { decodeSegment, encodeSegment, type TcpSegment } from '@stepwire/tcp';
import { arbitraryTcpSegment } from '@stepwire/tcp/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { type GroPacket, groCoalesce } from '../src/gro.ts';
import { gsoSegment } from '../src/gso.ts';
import { decodeIpv4, encodeIpv4, type Ipv4Packet } from '../src/ipv4.ts';
import { decodeIpv6, encodeIpv6, type Ipv6Packet } from '../src/ipv6.ts';
import { arbitraryIpv4Address, arbitraryIpv6Address } from '../src/testing.ts';
import { IPPROTO_TCP } from '../src/types.ts';

/**
 * Software GRO (gro.ts) with GSO as its inverse and our codecs as the oracle: the pieces
 * of a super-segment join back into exactly that super-segment; in any batch — flows
 * interleaved, pieces lost, duplicated or reordered — every flow's bytes come up in the
 * order they came, nothing is lost or repeated, joined packets decode with good
 * checksums, and runs obey Linux's tcp_gro_receive rules.
 */

const dir = mkdtempSync(join(tmpdir(), 'sw-gro-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const PSH = 0x08;
const ACK = 0x10;
const URG = 0x20;
const CWR = 0x80;

interface Flow {
  v: 4 | 6;
  src: string;
  dst: string;
  ttl: number;
  tos: number;
  seg: TcpSegment;
}

function ipOf(f: Flow, payload: Uint8Array, id = 0): Uint8Array {
  if (f.v === 4) {
    const p: Ipv4Packet = {
      dscp: f.tos >> 2,
      ecn: f.tos & 3,
      identification: id,
      reservedFlag: false,
      dontFragment: true,
      moreFragments: false,
      fragmentOffset: 0,
      ttl: f.ttl,
      protocol: IPPROTO_TCP,
      src: f.src,
      dst: f.dst,
      options: [],
      payload,
    };
    return encodeIpv4(p);
  }
  const p: Ipv6Packet = {
    trafficClass: f.tos,
    flowLabel: 0,
    hopLimit: f.ttl,
    src: f.src,
    dst: f.dst,
    extensionHeaders: [],
    nextHeader: IPPROTO_TCP,
    payload,
  };
  return encodeIpv6(p);
}

function superSegment(f: Flow, seg: TcpSegment = f.seg): Uint8Array {
  return ipOf(f, encodeSegment(seg, { src: f.src, dst: f.dst }), 7);
}

function cut(f: Flow, size: number, seg: TcpSegment = f.seg): Uint8Array[] {
  const packet = superSegment(f, seg);
  const hdrLen = packet.length - seg.payload.length;
  return gsoSegment(packet, { type: f.v === 4 ? 'tcpv4' : 'tcpv6', size, hdrLen }).packets;
}

function decode(b: Uint8Array): { ip: Ipv4Packet | Ipv6Packet; seg: TcpSegment } {
  const ip = b[0] === 0x45 ? decodeIpv4(b) : decodeIpv6(b);
  return { ip, seg: decodeSegment(ip.payload, { src: ip.src, dst: ip.dst }) };
}

const arbitraryFlow = (flags: fc.Arbitrary<number>, maxData: number): fc.Arbitrary<Flow> =>
  fc
    .record({
      v: fc.constantFrom<4 | 6>(4, 6),
      a4: fc.tuple(arbitraryIpv4Address, arbitraryIpv4Address),
      a6: fc.tuple(arbitraryIpv6Address, arbitraryIpv6Address),
      ttl: fc.integer({ min: 1, max: 255 }),
      tos: fc.integer({ min: 0, max: 255 }),
      seg: arbitraryTcpSegment(0),
      flags,
      data: fc.uint8Array({ minLength: 1, maxLength: maxData, size: 'medium' }),
    })
    .map((r) => {
      const [src, dst] = r.v === 4 ? r.a4 : r.a6;
      return { v: r.v, src, dst, ttl: r.ttl, tos: r.tos, seg: { ...r.seg, flags: r.flags, payload: r.data } };
    });

/** Flags a bulk super-segment may have: ACK, maybe PSH, FIN, ECE (not CWR, URG, SYN, RST). */
const bulkFlags = fc
  .tuple(fc.boolean(), fc.boolean(), fc.boolean())
  .map(([psh, fin, ece]) => ACK | (psh ? PSH : 0) | (fin ? FIN : 0) | (ece ? 0x40 : 0));

describe('software GRO: joining the pieces GSO cut', () => {
  fcTest.prop([arbitraryFlow(bulkFlags, 6000), fc.integer({ min: 1, max: 1460 })], { numRuns: 80 })(
    'the pieces of a super-segment join back into exactly it (headers, checksum, PSH/FIN of the last)',
    (f, size) => {
      const pieces = cut(f, size);
      const out = groCoalesce(pieces.map((packet) => ({ packet })));
      expect(out).toHaveLength(1);
      const [one] = out as [GroPacket];
      expect(Buffer.from(one.packet)).toEqual(Buffer.from(superSegment(f)));
      if (pieces.length > 1) {
        const hdrLen = one.packet.length - f.seg.payload.length;
        expect(one.info).toEqual({ csum: { kind: 'valid' }, gso: { type: `tcpv${f.v}`, size, hdrLen } });
      } else {
        expect(one.packet).toBe(pieces[0]);
      }
    },
  );

  fcTest.prop(
    [
      fc.array(arbitraryFlow(bulkFlags, 3000), { minLength: 1, maxLength: 3 }),
      fc.integer({ min: 100, max: 1460 }),
      fc.array(fc.tuple(fc.nat(), fc.constantFrom('keep', 'keep', 'keep', 'drop', 'dup', 'swap')), {
        maxLength: 60,
      }),
    ],
    { numRuns: 120 },
  )(
    'flows interleaved, pieces lost, duplicated, reordered: each flow keeps its bytes in order, nothing lost or repeated',
    (flows, size, edits) => {
      // Distinct ports per flow so that flows never share a key.
      const fs = flows.map((f, i) => ({ ...f, seg: { ...f.seg, srcPort: 1000 + i } }));
      const batch: Uint8Array[] = [];
      const queues = fs.map((f) => cut(f, size));
      let turn = 0;
      while (queues.some((q) => q.length > 0)) {
        const q = queues[turn++ % queues.length] as Uint8Array[];
        const p = q.shift();
        if (p !== undefined) batch.push(p);
      }
      for (const [at, what] of edits) {
        if (batch.length === 0) break;
        const i = at % batch.length;
        if (what === 'drop') batch.splice(i, 1);
        else if (what === 'dup') batch.splice(i, 0, batch[i] as Uint8Array);
        else if (what === 'swap' && i + 1 < batch.length) {
          const t = batch[i] as Uint8Array;
          batch[i] = batch[i + 1] as Uint8Array;
          batch[i + 1] = t;
        }
      }
      const out = groCoalesce(batch.map((packet) => ({ packet })));
      expect(out.length).toBeLessThanOrEqual(batch.length);
      const bytesOf = (packets: Uint8Array[]) => {
        const per = new Map<number, { seq: number; data: Buffer }[]>();
        for (const p of packets) {
          const { seg } = decode(p);
          const l = per.get(seg.srcPort) ?? [];
          l.push({ seq: seg.seq, data: Buffer.from(seg.payload) });
          per.set(seg.srcPort, l);
        }
        return per;
      };
      const before = bytesOf(batch);
      const after = bytesOf(out.map((o) => o.packet));
      for (const [port, list] of before) {
        const got = after.get(port) ?? [];
        expect(Buffer.concat(got.map((x) => x.data))).toEqual(Buffer.concat(list.map((x) => x.data)));
        // Every joined packet starts where one of the flow's pieces started.
        for (const g of got) expect(list.some((x) => x.seq === g.seq)).toBe(true);
      }
      for (const o of out) {
        expect(o.packet.length).toBeLessThanOrEqual(65535 + 40);
        if (o.info?.gso !== undefined) {
          // A run: more data than one piece, each piece no longer than the first.
          expect(decode(o.packet).seg.payload.length).toBeGreaterThan(o.info.gso.size);
          expect(o.info.gso.size).toBeLessThanOrEqual(size);
        }
      }
    },
  );

  it('tcp_gro_receive rules: CWR, URG, SYN and RST go alone; PSH, FIN and a short piece end a run; a gap starts a new one', () => {
    const f: Flow = {
      v: 4,
      src: '198.18.0.1',
      dst: '198.18.0.2',
      ttl: 64,
      tos: 0,
      seg: {
        srcPort: 1,
        dstPort: 2,
        seq: 1000,
        ack: 5,
        flags: ACK,
        window: 100,
        urgentPointer: 0,
        options: { timestamps: { value: 9, echo: 8 } },
        payload: new Uint8Array(0),
      },
    };
    const seg = (seq: number, len: number, flags = ACK, extra: Partial<TcpSegment> = {}): Uint8Array =>
      superSegment(f, { ...f.seg, seq, flags, payload: new Uint8Array(len).fill(seq & 0xff), ...extra });
    const shape = (packets: Uint8Array[]) =>
      groCoalesce(packets.map((packet) => ({ packet }))).map((o) => {
        const s = decode(o.packet).seg;
        return `${s.seq}+${s.payload.length}`;
      });
    // A run of three, ended by PSH; then a new run.
    expect(
      shape([seg(0, 100), seg(100, 100), seg(200, 100, ACK | PSH), seg(300, 100), seg(400, 100)]),
    ).toEqual(['0+300', '300+200']);
    // CWR goes alone (RFC 3168 §6.1.2), the rest join.
    expect(shape([seg(0, 100, ACK | CWR), seg(100, 100), seg(200, 100)])).toEqual(['0+100', '100+200']);
    // URG, SYN, RST never join.
    expect(shape([seg(0, 100), seg(100, 100, ACK | URG, { urgentPointer: 5 }), seg(200, 100)])).toEqual([
      '0+100',
      '100+100',
      '200+100',
    ]);
    expect(shape([seg(0, 100), seg(100, 100, RST), seg(200, 100)])).toEqual(['0+100', '100+100', '200+100']);
    expect(shape([seg(0, 100), seg(100, 100, SYN | ACK)])).toEqual(['0+100', '100+100']);
    // A short piece ends the run; a longer piece than the first never joins.
    expect(shape([seg(0, 100), seg(100, 50), seg(150, 50)])).toEqual(['0+150', '150+50']);
    expect(shape([seg(0, 100), seg(100, 120)])).toEqual(['0+100', '100+120']);
    // A gap or a repeat starts a new run.
    expect(shape([seg(0, 100), seg(200, 100), seg(300, 100), seg(300, 100)])).toEqual([
      '0+100',
      '200+200',
      '300+100',
    ]);
    // Any difference in ACK, window or options (a new timestamp) keeps pieces apart.
    expect(shape([seg(0, 100), seg(100, 100, ACK, { ack: 6 })])).toEqual(['0+100', '100+100']);
    expect(shape([seg(0, 100), seg(100, 100, ACK, { window: 101 })])).toEqual(['0+100', '100+100']);
    expect(
      shape([seg(0, 100), seg(100, 100, ACK, { options: { timestamps: { value: 10, echo: 8 } } })]),
    ).toEqual(['0+100', '100+100']);
    // A pure ACK ends the run and goes up as itself, between.
    expect(shape([seg(0, 100), seg(100, 0), seg(100, 100), seg(200, 100)])).toEqual([
      '0+100',
      '100+0',
      '100+200',
    ]);
  });

  it('a piece whose checksum fails is never joined and comes up as it came; nothing overtakes it', () => {
    const f: Flow = {
      v: 6,
      src: 'fd00::1',
      dst: 'fd00::2',
      ttl: 64,
      tos: 0,
      seg: {
        srcPort: 1,
        dstPort: 2,
        seq: 0,
        ack: 5,
        flags: ACK,
        window: 100,
        urgentPointer: 0,
        options: {},
        payload: new Uint8Array(4000).map((_, i) => i),
      },
    };
    const pieces = cut(f, 1000);
    const bad = (pieces[1] as Uint8Array).slice();
    bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 1;
    const batch = [pieces[0], bad, pieces[2], pieces[3]].map((packet) => ({ packet: packet as Uint8Array }));
    const out = groCoalesce(batch);
    expect(out.map((o) => o.packet)).toEqual([pieces[0], bad, expect.anything()]);
    expect(out[2]?.info?.gso?.size).toBe(1000);
    expect(decode(out[2]?.packet as Uint8Array).seg.seq).toBe(2000);
  });

  it('a link that vouched for the checksums (PacketInfo.csum) is believed: the run is marked valid', () => {
    const f: Flow = {
      v: 4,
      src: '198.18.0.1',
      dst: '198.18.0.2',
      ttl: 64,
      tos: 0,
      seg: {
        srcPort: 1,
        dstPort: 2,
        seq: 0,
        ack: 5,
        flags: ACK,
        window: 100,
        urgentPointer: 0,
        options: {},
        payload: new Uint8Array(3000),
      },
    };
    const out = groCoalesce(cut(f, 1000).map((packet) => ({ packet, info: { csum: { kind: 'valid' } } })));
    expect(out).toHaveLength(1);
    expect(out[0]?.info?.csum).toEqual({ kind: 'valid' });
  });

  it('tshark verifies the joined packets: IP and TCP checksums good, lengths as the headers say', () => {
    const writer = PcapWriter.inMemory();
    let t = 0;
    const sizes = [1448, 1001, 7, 536];
    let joined = 0;
    for (const v of [4, 6] as const) {
      for (const size of sizes) {
        const f: Flow = {
          v,
          src: v === 4 ? '198.18.0.1' : 'fd00::1',
          dst: v === 4 ? '198.18.0.2' : 'fd00::2',
          ttl: 64,
          tos: 2,
          seg: {
            srcPort: 40000 + size,
            dstPort: 5001,
            seq: 0xfffff000, // the run crosses the sequence wrap
            ack: 12345,
            flags: ACK | PSH,
            window: 2048,
            urgentPointer: 0,
            options: { timestamps: { value: 77, echo: 66 } },
            payload: new Uint8Array(Math.min(20_000, size * 30) + 3).map((_, i) => (i * 31 + size) & 0xff),
          },
        };
        const pieces = cut(f, size);
        // One piece lost, so there are two runs, the second starting at an odd offset when size is odd.
        const batch = pieces.filter((_, i) => i !== 2).map((packet) => ({ packet }));
        for (const o of groCoalesce(batch)) {
          if (o.info?.gso !== undefined) joined++;
          writer.write(o.packet, t++);
        }
      }
    }
    expect(joined).toBeGreaterThanOrEqual(8);
    const file = join(dir, 'gro.pcap');
    writeFileSync(file, writer.bytes());
    const out = execFileSync(
      'tshark',
      [
        '-r',
        file,
        '-n',
        '-o',
        'ip.check_checksum:TRUE',
        '-o',
        'tcp.check_checksum:TRUE',
        '-T',
        'fields',
        '-E',
        'separator=,',
        '-e',
        'ip.checksum.status',
        '-e',
        'tcp.checksum.status',
        '-e',
        '_ws.malformed',
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const rows = out.split('\n').filter((l) => l.length > 0);
    expect(rows.length).toBe(t);
    // 1 is Good; IPv6 has no header checksum (empty).
    expect(rows.filter((r) => r !== '1,1,' && r !== ',1,')).toEqual([]);
  });
});
