import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fc } from '@fast-check/vitest';
import { encodeIpv4, encodeIpv6 } from '@stepwire/ip';
import { toHex } from '@stepwire/wire';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeUdp, type PseudoHeader, type UdpDatagram } from '../src/datagram.ts';
import { arbitraryPseudoHeader, arbitraryUdpDatagramOf } from '../src/testing.ts';

/**
 * Wireshark as an independent oracle: our datagrams, wrapped in IP headers and written to a
 * LINKTYPE_RAW pcap, must dissect with the ports, length and payload we meant and with a
 * checksum Wireshark itself verifies ("Good"). tshark is a required peer of the test suite.
 */

const dir = mkdtempSync(join(tmpdir(), 'stepwire-udp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function ipPacket(udp: Uint8Array, p: PseudoHeader<string>): Uint8Array {
  if (p.src.includes(':')) {
    return encodeIpv6({
      trafficClass: 0,
      flowLabel: 0,
      hopLimit: 64,
      src: p.src,
      dst: p.dst,
      extensionHeaders: [],
      nextHeader: 17,
      payload: udp,
    });
  }
  return encodeIpv4({
    dscp: 0,
    ecn: 0,
    identification: 1,
    reservedFlag: false,
    dontFragment: false,
    moreFragments: false,
    fragmentOffset: 0,
    ttl: 64,
    protocol: 17,
    src: p.src,
    dst: p.dst,
    options: [],
    payload: udp,
  });
}

/** A classic little-endian pcap (LINKTYPE_RAW = 101), written by hand to keep the oracle independent. */
function pcap(packets: Uint8Array[]): Uint8Array {
  const parts: Buffer[] = [];
  const g = Buffer.alloc(24);
  g.writeUInt32LE(0xa1b2c3d4, 0);
  g.writeUInt16LE(2, 4);
  g.writeUInt16LE(4, 6);
  g.writeUInt32LE(65535, 16);
  g.writeUInt32LE(101, 20);
  parts.push(g);
  packets.forEach((p, i) => {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(i, 0);
    h.writeUInt32LE(p.length, 8);
    h.writeUInt32LE(p.length, 12);
    parts.push(h, Buffer.from(p));
  });
  return Buffer.concat(parts);
}

function tshark(packets: Uint8Array[]): string[][] {
  const file = join(dir, `u${Math.random().toString(36).slice(2)}.pcap`);
  writeFileSync(file, pcap(packets));
  const out = execFileSync(
    'tshark',
    [
      '-r',
      file,
      '-o',
      'udp.check_checksum:TRUE',
      '-T',
      'fields',
      '-E',
      'separator=|',
      '-e',
      'udp.srcport',
      '-e',
      'udp.dstport',
      '-e',
      'udp.length',
      '-e',
      'udp.checksum.status',
      '-e',
      'udp.payload',
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 30_000 },
  );
  return out
    .trimEnd()
    .split('\n')
    .map((l) => l.split('|'));
}

describe('UDP codec against tshark', () => {
  it('tshark dissects 60 arbitrary datagrams of both families with a Good checksum', () => {
    const cases = fc.sample(fc.tuple(arbitraryUdpDatagramOf(300), arbitraryPseudoHeader), {
      numRuns: 60,
      seed: 768,
    });
    const rows = tshark(cases.map(([d, p]) => ipPacket(encodeUdp(d, p), p)));
    expect(rows).toHaveLength(cases.length);
    rows.forEach((row, i) => {
      const [d] = cases[i]! as [UdpDatagram, PseudoHeader<string>];
      // Status 1 = PROTO_CHECKSUM_E_GOOD in Wireshark's proto.h.
      expect(row).toEqual([
        String(d.srcPort),
        String(d.dstPort),
        String(d.payload.length + 8),
        '1',
        toHex(d.payload),
      ]);
    });
  });

  it('tshark agrees on a bad checksum, and on zero meaning "none" (IPv4) or illegal (IPv6)', () => {
    const d: UdpDatagram = { srcPort: 40000, dstPort: 40001, payload: new Uint8Array([1, 2, 3]) };
    const v4: PseudoHeader<string> = { src: '198.18.0.1', dst: '198.18.0.2' };
    const v6: PseudoHeader<string> = { src: 'fd00:5757::1', dst: 'fd00:5757::2' };
    const bad = encodeUdp(d, v4);
    bad[7] = bad[7]! ^ 1;
    const zero4 = encodeUdp(d, v4);
    zero4.fill(0, 6, 8);
    const zero6 = encodeUdp(d, v6);
    zero6.fill(0, 6, 8);
    const rows = tshark([ipPacket(bad, v4), ipPacket(zero4, v4), ipPacket(zero6, v6)]);
    // proto.h: 0 BAD, 1 GOOD, 2 UNVERIFIED, 3 NOT_PRESENT, 4 ILLEGAL.
    expect(rows.map((r) => r[3])).toEqual(['0', '3', '4']);
  });
});
