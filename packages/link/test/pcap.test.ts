import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fc, test } from '@fast-check/vitest';
import { ByteWriter, fromHex, internetChecksum, ParseError, toHex, VirtualClock } from '@stepwire/wire';
import { decodesOrParseError } from '@stepwire/wire/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryLink } from '../src/memory.ts';
import { decodePcap, encodePcap, LINKTYPE_RAW, msToPcapTime, PcapWriter, recordLink } from '../src/pcap.ts';
import { arbitraryPcapFile } from '../src/testing.ts';

const v4 = (s: string): Uint8Array => new Uint8Array(s.split('.').map(Number));

/** An IPv4/UDP packet built field by field (RFC 791 header, RFC 768 checksum). */
function ipv4Udp(src: string, dst: string, sport: number, dport: number, payload: Uint8Array): Uint8Array {
  const udpLen = 8 + payload.length;
  const ip = new ByteWriter(20)
    .u8(0x45)
    .u8(0)
    .u16(20 + udpLen)
    .u16(0x1234)
    .u16(0x4000)
    .u8(64)
    .u8(17)
    .u16(0)
    .bytes(v4(src))
    .bytes(v4(dst));
  ip.patchU16(10, internetChecksum(ip.finish()));
  const udp = new ByteWriter(udpLen).u16(sport).u16(dport).u16(udpLen).u16(0).bytes(payload);
  const pseudo = new ByteWriter(12).bytes(v4(src)).bytes(v4(dst)).u8(0).u8(17).u16(udpLen).finish();
  udp.patchU16(6, internetChecksum(pseudo, udp.finish()) || 0xffff);
  return new ByteWriter().bytes(ip.finish()).bytes(udp.finish()).finish().slice();
}

/** An IPv6/UDP packet (RFC 8200 header, RFC 8200 §8.1 pseudo-header). */
function ipv6Udp(
  src: Uint8Array,
  dst: Uint8Array,
  sport: number,
  dport: number,
  payload: Uint8Array,
): Uint8Array {
  const udpLen = 8 + payload.length;
  const udp = new ByteWriter(udpLen).u16(sport).u16(dport).u16(udpLen).u16(0).bytes(payload);
  const pseudo = new ByteWriter(40).bytes(src).bytes(dst).u32(udpLen).u32(17).finish();
  udp.patchU16(6, internetChecksum(pseudo, udp.finish()) || 0xffff);
  return new ByteWriter()
    .u32(0x60000000)
    .u16(udpLen)
    .u8(17)
    .u8(64)
    .bytes(src)
    .bytes(dst)
    .bytes(udp.finish())
    .finish()
    .slice();
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sw-pcap-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('pcap writer and reader', () => {
  it('reads a header as tcpdump writes it on little-endian machines', () => {
    // 24-byte global header: magic, 2.4, zone 0, sigfigs 0, snaplen 65535, LINKTYPE_RAW,
    // then one record at 1.000002 s of 2 bytes (orig 60).
    const bytes = fromHex(
      'd4c3b2a1 0200 0400 00000000 00000000 ffff0000 65000000 01000000 02000000 02000000 3c000000 4500',
    );
    const f = decodePcap(bytes);
    expect(f).toEqual({
      byteOrder: 'le',
      precision: 'usec',
      versionMajor: 2,
      versionMinor: 4,
      thiszone: 0,
      sigfigs: 0,
      snaplen: 65535,
      linkType: LINKTYPE_RAW,
      records: [{ tsSec: 1, tsFrac: 2, origLen: 60, data: fromHex('4500') }],
    });
  });

  it('writes records with clock timestamps split into seconds and microseconds', () => {
    const w = PcapWriter.inMemory();
    const p1 = ipv4Udp('198.18.0.1', '198.18.0.2', 1000, 2000, new Uint8Array([1, 2, 3]));
    w.write(p1, 0);
    w.write(p1, 1.5);
    w.write(p1, 1234.5678);
    w.write(p1, 59_999.9999);
    expect(w.packets).toBe(4);
    const f = decodePcap(w.bytes());
    expect(f.linkType).toBe(101);
    expect(f.snaplen).toBe(65535);
    expect(f.byteOrder).toBe('le');
    expect(f.records.map((r) => [r.tsSec, r.tsFrac])).toEqual([
      [0, 0],
      [0, 1500],
      [1, 234568],
      [60, 0],
    ]);
    for (const r of f.records) {
      expect(toHex(r.data)).toBe(toHex(p1));
      expect(r.origLen).toBe(p1.length);
    }
    expect(msToPcapTime(-5)).toEqual({ tsSec: 0, tsUsec: 0 });
  });

  it('adds epochMs to clock times', () => {
    const w = PcapWriter.inMemory({ epochMs: 1_700_000_000_000 });
    w.write(new Uint8Array(20), 2.5);
    const [r] = decodePcap(w.bytes()).records;
    expect([r!.tsSec, r!.tsFrac]).toEqual([1_700_000_000, 2500]);
  });

  it('truncates to snaplen and keeps the original length', () => {
    const w = PcapWriter.inMemory({ snaplen: 100 });
    w.write(new Uint8Array(200).fill(7), 0);
    const [r] = decodePcap(w.bytes()).records;
    expect(r!.data.length).toBe(100);
    expect(r!.origLen).toBe(200);
  });

  it('a file writer produces the same bytes as an in-memory writer', () => {
    const file = path.join(tmp, 'same.pcap');
    const fw = PcapWriter.toFile(file);
    const mw = PcapWriter.inMemory();
    for (let i = 0; i < 5; i++) {
      const p = ipv4Udp('198.18.0.2', '198.18.0.1', 5000 + i, 53, new Uint8Array(i * 10));
      fw.write(p, i * 10.25);
      mw.write(p, i * 10.25);
    }
    fw.close();
    fw.write(new Uint8Array(10), 99); // ignored after close
    expect(toHex(new Uint8Array(fs.readFileSync(file)))).toBe(toHex(mw.bytes()));
    expect(toHex(fw.bytes())).toBe(toHex(mw.bytes()));
  });

  it('refuses unknown magic, other versions, oversize records, bad fractions, truncation', () => {
    const good = PcapWriter.inMemory();
    good.write(new Uint8Array(20), 1);
    const bytes = good.bytes();
    const bad = (mutate: (b: Uint8Array) => Uint8Array, field: string) => {
      const b = mutate(bytes.slice());
      expect(() => decodePcap(b)).toThrow(ParseError);
      try {
        decodePcap(b);
      } catch (e) {
        expect((e as ParseError).field).toBe(field);
      }
    };
    const set = (at: number, v: number, size: 1 | 4) => (b: Uint8Array) => {
      if (size === 1) b[at] = v;
      else new DataView(b.buffer).setUint32(at, v, true);
      return b;
    };
    bad(set(0, 0, 1), 'magic');
    bad(set(4, 3, 1), 'version_major');
    bad(set(24 + 4, 1_000_000, 4), 'ts_frac');
    bad(set(24 + 8, 262145, 4), 'incl_len');
    bad((b) => b.subarray(0, b.length - 1), 'packet data');
    bad((b) => b.subarray(0, 34), 'incl_len');
    bad((b) => b.subarray(0, 10), 'thiszone');
  });

  test.prop([arbitraryPcapFile], { numRuns: 300 })('round trip: decode(encode(f)) equals f', (f) => {
    expect(decodePcap(encodePcap(f))).toEqual(f);
  });

  test.prop([fc.uint8Array({ maxLength: 300 })], { numRuns: 1000 })(
    'arbitrary bytes decode or throw ParseError',
    (b) => {
      expect(decodesOrParseError(decodePcap, b)).toBe(true);
    },
  );

  test.prop([arbitraryPcapFile, fc.nat(), fc.nat({ max: 7 }), fc.nat()], { numRuns: 500 })(
    'a valid file with a flipped bit or cut short decodes or throws ParseError',
    (f, at, bit, cut) => {
      const b = encodePcap(f);
      if (b.length === 0) return;
      const flipped = b.slice();
      flipped[at % b.length]! ^= 1 << bit;
      expect(decodesOrParseError(decodePcap, flipped)).toBe(true);
      expect(decodesOrParseError(decodePcap, b.subarray(0, cut % (b.length + 1)))).toBe(true);
    },
  );
});

describe('recordLink', () => {
  it('records each packet a host sends and receives once per link, with clock time', () => {
    const clock = new VirtualClock(1000);
    const [aRaw, bRaw] = MemoryLink.pair({ clock, impairments: { delay: 2.5 } });
    const wa = PcapWriter.inMemory();
    const wb = PcapWriter.inMemory();
    const a = recordLink(aRaw, wa, clock);
    const b = recordLink(bRaw, wb, clock);
    const ping = ipv4Udp('198.18.0.1', '198.18.0.2', 7, 7, new Uint8Array([1]));
    const pong = ipv4Udp('198.18.0.2', '198.18.0.1', 7, 7, new Uint8Array([2]));
    b.onPacket(() => b.send(pong));
    const aGot: Uint8Array[] = [];
    a.onPacket((p) => aGot.push(p));
    a.send(ping);
    clock.runUntilIdle();
    expect(aGot).toHaveLength(1);
    const ra = decodePcap(wa.bytes()).records;
    const rb = decodePcap(wb.bytes()).records;
    expect(ra.map((r) => [toHex(r.data), r.tsSec, r.tsFrac])).toEqual([
      [toHex(ping), 1, 0],
      [toHex(pong), 1, 5000],
    ]);
    expect(rb.map((r) => [toHex(r.data), r.tsSec, r.tsFrac])).toEqual([
      [toHex(ping), 1, 2500],
      [toHex(pong), 1, 2500],
    ]);
    expect(a.counters).toBe(aRaw.counters);
    expect(a.mtu).toBe(1500);
  });
});

describe('tshark decodes our pcaps', () => {
  const TSHARK = '/usr/bin/tshark';

  it('IPv4/UDP and IPv6/UDP packets with good checksums and our timestamps', () => {
    expect(fs.existsSync(TSHARK), `${TSHARK} is required (apt-get install tshark)`).toBe(true);
    const file = path.join(tmp, 'udp.pcap');
    const w = PcapWriter.toFile(file);
    const six1 = fromHex('fd00575700000000 0000000000000001');
    const six2 = fromHex('fd00575700000000 0000000000000002');
    w.write(ipv4Udp('198.18.0.1', '198.18.0.2', 40000, 40001, new TextEncoder().encode('hello')), 1500.25);
    w.write(ipv4Udp('198.18.0.2', '198.18.0.1', 40001, 40000, new Uint8Array(0)), 2000);
    w.write(ipv6Udp(six1, six2, 47000, 47001, new TextEncoder().encode('over six')), 3001.001);
    w.close();
    const out = execFileSync(
      TSHARK,
      [
        '-r',
        file,
        '-o',
        'ip.check_checksum:TRUE',
        '-o',
        'udp.check_checksum:TRUE',
        // Our payloads are opaque: without this a heuristic dissector may claim them.
        '-d',
        'udp.port==40001,data',
        '-d',
        'udp.port==47001,data',
        '-T',
        'fields',
        '-E',
        'separator=|',
        '-e',
        'frame.time_epoch',
        '-e',
        'ip.src',
        '-e',
        'ip.dst',
        '-e',
        'ipv6.src',
        '-e',
        'ipv6.dst',
        '-e',
        'udp.srcport',
        '-e',
        'udp.dstport',
        '-e',
        'udp.length',
        '-e',
        'ip.checksum.status',
        '-e',
        'udp.checksum.status',
        '-e',
        '_ws.expert',
      ],
      { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const rows = out
      .trim()
      .split('\n')
      .map((l) => l.split('|'));
    expect(rows).toHaveLength(3);
    const [r1, r2, r3] = rows as [string[], string[], string[]];
    expect(Number(r1[0])).toBeCloseTo(1.50025, 6);
    expect(r1.slice(1, 8)).toEqual(['198.18.0.1', '198.18.0.2', '', '', '40000', '40001', '13']);
    expect(r1.slice(8, 10)).toEqual(['1', '1']); // 1 = Good
    expect(Number(r2[0])).toBeCloseTo(2, 6);
    expect(r2.slice(1, 10)).toEqual(['198.18.0.2', '198.18.0.1', '', '', '40001', '40000', '8', '1', '1']);
    expect(Number(r3[0])).toBeCloseTo(3.001001, 6);
    expect(r3.slice(1, 8)).toEqual(['', '', 'fd00:5757::1', 'fd00:5757::2', '47000', '47001', '16']);
    expect(r3[9]).toBe('1');
    for (const r of rows) expect(r[10], `expert info for ${r.join('|')}`).toBe('');
  });
});
