/**
 * Independent oracle for the foundation: Wireshark's dissectors (tshark) read a pcap of a
 * simulated session — IPv4 and IPv6 ping, UDP echo, a 4000-byte datagram fragmented at MTU
 * 1280 in both families — and must find nothing malformed, no bad checksum, and the same
 * field values the stack meant to send.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeIpv4, decodeIpv6 } from '@stepwire/ip';
import { decodePcap } from '@stepwire/link';
import { Sim } from '@stepwire/sim';
import { udpEcho } from '@stepwire/udp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tsharkFields, tsharkProblems } from './support/tshark.ts';

const dir = mkdtempSync(join(tmpdir(), 'sw-tshark-'));
const pcapPath = join(dir, 'foundation.pcap');
const pings: { family: 4 | 6; id: number; seq: number }[] = [];
const ports: number[] = [];

beforeAll(async () => {
  const sim = new Sim({ seed: 7, mtu: 1280, pcapPath });
  const { a, b } = sim;
  for (const dst of [b.ipv4, b.ipv6]) {
    const r = await sim.run(a.host.ping(dst, { size: 56 }));
    pings.push({ family: dst.includes(':') ? 6 : 4, id: r.id, seq: r.seq });
  }
  const echo = udpEcho(b.udp, 7);
  for (const [type, dst] of [
    ['udp4', b.ipv4],
    ['udp6', b.ipv6],
  ] as const) {
    const s = a.udp.createSocket(type);
    s.bind(0);
    for (const size of [16, 4000]) {
      const payload = Buffer.alloc(size, 0x5a);
      const reply = await sim.run(
        new Promise<Buffer>((resolve) => {
          s.once('message', resolve);
          s.send(payload, 7, dst);
        }),
      );
      expect(reply.equals(payload)).toBe(true);
    }
    ports.push(s.address().port);
    s.close();
  }
  echo.close();
  sim.close();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('tshark reads the foundation session', () => {
  it('reports no malformed packet and no bad checksum', () => {
    expect(tsharkProblems(pcapPath)).toEqual([]);
  });

  it('agrees with our encoder on every IPv4 frame: addresses, id, offsets, lengths, checksum', () => {
    const ours = decodePcap(readFileSync(pcapPath)).records.map((r) => r.data);
    const rows = tsharkFields(pcapPath, [
      'frame.number',
      'ip.src',
      'ip.dst',
      'ip.id',
      'ip.frag_offset',
      'ip.len',
      'ip.checksum.status',
    ]);
    const v4 = rows.filter((r) => r['ip.src'] !== '');
    expect(v4.length).toBeGreaterThan(10);
    for (const row of v4) {
      const p = decodeIpv4(ours[Number(row['frame.number']) - 1]!);
      expect(row['ip.src']).toBe(p.src);
      expect(row['ip.dst']).toBe(p.dst);
      expect(Number(row['ip.id'])).toBe(p.identification);
      // tshark shows the offset in 8-octet units, as on the wire.
      expect(Number(row['ip.frag_offset'])).toBe(p.fragmentOffset);
      expect(Number(row['ip.len'])).toBe(20 + p.payload.length);
      expect(row['ip.checksum.status']).toBe('1'); // 1 = Good
    }
  });

  it('agrees on IPv6 frames, fragment headers included', () => {
    const ours = decodePcap(readFileSync(pcapPath)).records.map((r) => r.data);
    const rows = tsharkFields(pcapPath, [
      'frame.number',
      'ipv6.src',
      'ipv6.dst',
      'ipv6.plen',
      'ipv6.fraghdr.offset',
      'ipv6.fraghdr.ident',
    ]);
    const v6 = rows.filter((r) => r['ipv6.src'] !== '');
    expect(v6.length).toBeGreaterThan(10);
    for (const row of v6) {
      const p = decodeIpv6(ours[Number(row['frame.number']) - 1]!);
      expect(row['ipv6.src']).toBe(p.src);
      expect(row['ipv6.dst']).toBe(p.dst);
      const fh = p.extensionHeaders.find((h) => h.kind === 'fragment');
      if (fh?.kind === 'fragment') {
        // tshark shows the offset in 8-octet units, as on the wire.
        expect(Number(row['ipv6.fraghdr.offset'])).toBe(fh.fragmentOffset);
        expect(Number(row['ipv6.fraghdr.ident'])).toBe(fh.identification);
      } else {
        expect(row['ipv6.fraghdr.ident']).toBe('');
      }
    }
  });

  it('reassembles both 4000-byte datagrams, each way, to the lengths we sent', () => {
    const v4 = tsharkFields(pcapPath, ['ip.reassembled.length'], { filter: 'ip.reassembled.length' });
    const v6 = tsharkFields(pcapPath, ['ipv6.reassembled.length'], { filter: 'ipv6.reassembled.length' });
    // UDP header + 4000 bytes of payload; there and back.
    expect(v4.map((r) => r['ip.reassembled.length'])).toEqual(['4008', '4008']);
    expect(v6.map((r) => r['ipv6.reassembled.length'])).toEqual(['4008', '4008']);
  });

  it('sees the UDP ports and lengths the sockets used', () => {
    const rows = tsharkFields(pcapPath, ['udp.srcport', 'udp.dstport', 'udp.length', 'udp.checksum.status'], {
      filter: 'udp',
    });
    expect(rows).toHaveLength(8);
    const fromClient = rows.filter((r) => r['udp.dstport'] === '7');
    expect(fromClient.map((r) => Number(r['udp.srcport']))).toEqual([ports[0], ports[0], ports[1], ports[1]]);
    expect(fromClient.map((r) => r['udp.length'])).toEqual(['24', '4008', '24', '4008']);
    for (const r of rows) expect(r['udp.checksum.status']).toBe('1');
  });

  it('sees the ping identifiers and sequence numbers', () => {
    const v4 = tsharkFields(pcapPath, ['icmp.type', 'icmp.ident', 'icmp.seq'], { filter: 'icmp' });
    expect(v4.map((r) => [r['icmp.type'], Number(r['icmp.ident']), Number(r['icmp.seq'])])).toEqual([
      ['8', pings[0]!.id, pings[0]!.seq],
      ['0', pings[0]!.id, pings[0]!.seq],
    ]);
    const v6 = tsharkFields(
      pcapPath,
      ['icmpv6.type', 'icmpv6.echo.identifier', 'icmpv6.echo.sequence_number'],
      {
        filter: 'icmpv6.type == 128 || icmpv6.type == 129',
      },
    );
    expect(v6.map((r) => [r['icmpv6.type'], Number(r['icmpv6.echo.identifier'])])).toEqual([
      ['128', pings[1]!.id],
      ['129', pings[1]!.id],
    ]);
  });
});
