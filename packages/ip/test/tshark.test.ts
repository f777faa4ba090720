import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualClock } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { Host } from '../src/host.ts';
import { decodeIpv4, encodeIpv4 } from '../src/ipv4.ts';
import { decodeIpv6 } from '../src/ipv6.ts';
import { pipe } from './pipe.ts';

/** A classic pcap file with LINKTYPE_RAW (101): each record is one bare IP packet. */
function pcap(records: { t: number; p: Uint8Array }[]): Uint8Array {
  let size = 24;
  for (const r of records) size += 16 + r.p.length;
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0xa1b2c3d4, true);
  v.setUint16(4, 2, true);
  v.setUint16(6, 4, true);
  v.setUint32(16, 65535, true);
  v.setUint32(20, 101, true);
  let at = 24;
  for (const r of records) {
    const us = Math.round(r.t * 1000);
    v.setUint32(at, Math.floor(us / 1e6), true);
    v.setUint32(at + 4, us % 1e6, true);
    v.setUint32(at + 8, r.p.length, true);
    v.setUint32(at + 12, r.p.length, true);
    out.set(r.p, at + 16);
    at += 16 + r.p.length;
  }
  return out;
}

const FIELDS = [
  'frame.number',
  'ip.checksum.status',
  'icmp.checksum.status',
  'icmpv6.checksum.status',
  'icmp.type',
  'icmp.code',
  'icmpv6.type',
  'icmpv6.code',
  'ip.reassembled.length',
  'ipv6.reassembled.length',
  '_ws.malformed',
  '_ws.expert.message',
];

describe('Wireshark (tshark) as an independent decoder of what the Host sends', () => {
  it('decodes pings, fragments and ICMP errors with good checksums and nothing malformed', () => {
    const clock = new VirtualClock();
    const [la, lb] = pipe(clock, 1500, 5);
    const records: { t: number; p: Uint8Array }[] = [];
    la.tap = lb.tap = (t, p) => records.push({ t, p: p.slice() });
    const a = new Host({ name: 'A', clock });
    const b = new Host({ name: 'B', clock });
    a.addInterface({ link: la, ipv4: '198.18.0.1/24', ipv6: 'fd00:5757::1/64' });
    b.addInterface({ link: lb, ipv4: '198.18.0.2/24', ipv6: 'fd00:5757::2/64' });
    a.registerProtocol(253, { receive: () => {} });
    a.ping('198.18.0.2', { id: 1, seq: 1 });
    a.ping('fd00:5757::2', { id: 1, seq: 2 });
    a.ping('198.18.0.2', { id: 1, seq: 3, size: 8000 });
    a.ping('fd00:5757::2', { id: 1, seq: 4, size: 8000 });
    clock.runUntilIdle();
    a.send({ dst: '198.18.0.2', protocol: 253, payload: new Uint8Array(16) });
    a.send({ dst: 'fd00:5757::2', protocol: 253, payload: new Uint8Array(16) });
    clock.runUntilIdle();
    // Lose the last fragment so that B's reassembly times out and it sends Time Exceeded.
    la.filter = (p) => {
      if (p[0]! >> 4 === 4) return decodeIpv4(p).moreFragments;
      const fh = decodeIpv6(p).extensionHeaders.at(-1);
      return fh?.kind === 'fragment' && fh.moreFragments;
    };
    a.send({ dst: '198.18.0.2', protocol: 253, payload: new Uint8Array(3000) });
    a.send({ dst: 'fd00:5757::2', protocol: 253, payload: new Uint8Array(3000) });
    clock.runUntilIdle();
    la.filter = () => true;
    // An IPv4 datagram with options, answered as an echo.
    const opt = encodeIpv4({
      ...decodeIpv4(records[0]!.p),
      options: [
        { type: 1, data: new Uint8Array(0) },
        { type: 7, data: new Uint8Array([4, 0, 0, 0, 0, 0, 0, 0, 0]) },
      ],
    });
    la.send(opt);
    clock.runUntilIdle();

    const dir = mkdtempSync(join(tmpdir(), 'stepwire-ip-'));
    try {
      const file = join(dir, 'ip.pcap');
      writeFileSync(file, pcap(records));
      const out = execFileSync(
        'tshark',
        [
          '-r',
          file,
          '-o',
          'ip.check_checksum:TRUE',
          '-T',
          'fields',
          '-E',
          'separator=|',
          ...FIELDS.flatMap((f) => ['-e', f]),
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const rows = out
        .trim()
        .split('\n')
        .map((line) => Object.fromEntries(line.split('|').map((v, i) => [FIELDS[i]!, v])));
      expect(rows).toHaveLength(records.length);
      for (const r of rows) {
        expect(r['_ws.malformed'], `frame ${r['frame.number']}`).toBe('');
        expect(r['_ws.expert.message'], `frame ${r['frame.number']}`).not.toMatch(/incorrect|bad|malformed/i);
        // Wireshark checksum status: 1 = good, 0 = bad. Every header is checked (quoted ones too).
        for (const f of ['ip.checksum.status', 'icmp.checksum.status', 'icmpv6.checksum.status']) {
          for (const s of r[f]!.split(',').filter(Boolean))
            expect(s, `${f} in frame ${r['frame.number']}`).toBe('1');
        }
      }
      // The checks above must have had something to check.
      expect(rows.filter((r) => r['ip.checksum.status']!.startsWith('1')).length).toBeGreaterThan(20);
      expect(rows.filter((r) => r['icmpv6.checksum.status']!.startsWith('1')).length).toBe(6);
      const icmp = rows.filter((r) => r['icmp.type']).map((r) => `${r['icmp.type']}/${r['icmp.code']}`);
      const icmp6 = rows
        .filter((r) => r['icmpv6.type'])
        .map((r) => `${r['icmpv6.type']}/${r['icmpv6.code']}`);
      // echo, reply, 8000-byte echo and reply, protocol unreachable, reassembly time exceeded, echo with options and reply
      expect(icmp.map((x) => x.split(',')[0]).sort()).toEqual([
        '0/0',
        '0/0',
        '0/0',
        '11/1',
        '3/2',
        '8/0',
        '8/0',
        '8/0',
      ]);
      expect(icmp6.map((x) => x.split(',')[0]).sort()).toEqual([
        '128/0',
        '128/0',
        '129/0',
        '129/0',
        '3/1',
        '4/1',
      ]);
      const reassembled = rows
        .flatMap((r) => [r['ip.reassembled.length'], r['ipv6.reassembled.length']])
        .filter(Boolean);
      // The capture taps before the loss, so the 3000-byte datagrams reassemble in Wireshark too.
      expect(reassembled).toEqual(['8008', '8008', '8008', '8008', '3000', '3000']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
