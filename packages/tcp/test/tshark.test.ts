import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeIpv4, encodeIpv6 } from '@stepwire/ip';
import { ipv4Packet } from '@stepwire/ip/testing';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeSegment, type PseudoHeader, type TcpSegment } from '../src/segment.ts';
import { arbitraryPseudoHeader, arbitraryTcpSegment } from '../src/testing.ts';
import { A, B, Pair } from './harness.ts';

/**
 * Wireshark as an independent oracle: our segments, in IP headers in a LINKTYPE_RAW pcap,
 * must dissect to the fields we meant with a checksum Wireshark verifies itself; and a
 * whole connection between two of our machines must pass Wireshark's TCP sequence
 * analysis without a warning. tshark is a required peer of the test suite.
 */

const dir = mkdtempSync(join(tmpdir(), 'stepwire-tcp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function ipPacket(tcp: Uint8Array, p: PseudoHeader<string>): Uint8Array {
  if (p.src.includes(':')) {
    return encodeIpv6({
      trafficClass: 0,
      flowLabel: 0,
      hopLimit: 64,
      src: p.src,
      dst: p.dst,
      extensionHeaders: [],
      nextHeader: 6,
      payload: tcp,
    });
  }
  return encodeIpv4(
    ipv4Packet({
      protocol: 6,
      src: p.src,
      dst: p.dst,
      payload: tcp,
    }),
  );
}

/** A classic little-endian pcap (LINKTYPE_RAW = 101), written by hand to keep the oracle independent. */
function pcap(packets: { t: number; data: Uint8Array }[]): Uint8Array {
  const parts: Buffer[] = [];
  const g = Buffer.alloc(24);
  g.writeUInt32LE(0xa1b2c3d4, 0);
  g.writeUInt16LE(2, 4);
  g.writeUInt16LE(4, 6);
  g.writeUInt32LE(65535, 16);
  g.writeUInt32LE(101, 20);
  parts.push(g);
  for (const p of packets) {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(Math.floor(p.t / 1000), 0);
    h.writeUInt32LE(Math.floor((p.t % 1000) * 1000), 4);
    h.writeUInt32LE(p.data.length, 8);
    h.writeUInt32LE(p.data.length, 12);
    parts.push(h, Buffer.from(p.data));
  }
  return Buffer.concat(parts);
}

function tshark(packets: { t: number; data: Uint8Array }[], fields: string[], filter?: string): string[][] {
  const file = join(dir, `t${Math.random().toString(36).slice(2)}.pcap`);
  writeFileSync(file, pcap(packets));
  const args = [
    '-r',
    file,
    '-n',
    '-o',
    'tcp.check_checksum:TRUE',
    '-o',
    'tcp.relative_sequence_numbers:FALSE',
  ];
  args.push('-T', 'fields', '-E', 'separator=|', '-E', 'occurrence=a', '-E', 'aggregator=,');
  if (filter) args.push('-Y', filter);
  for (const f of fields) args.push('-e', f);
  const out = execFileSync('tshark', args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    timeout: 60_000,
  });
  return out
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => l.split('|'));
}

describe('TCP codec against tshark', () => {
  it('tshark dissects 80 arbitrary segments of both families to our fields, checksum Good', () => {
    const cases = fc.sample(fc.tuple(arbitraryTcpSegment(200), arbitraryPseudoHeader), {
      numRuns: 80,
      seed: 6,
    });
    const rows = tshark(
      cases.map(([s, p]) => ({ t: 0, data: ipPacket(encodeSegment(s, p), p) })),
      [
        'tcp.srcport',
        'tcp.dstport',
        'tcp.seq_raw',
        'tcp.ack_raw',
        'tcp.flags',
        'tcp.window_size_value',
        'tcp.checksum.status',
        'tcp.urgent_pointer',
        'tcp.options.mss_val',
        'tcp.options.wscale.shift',
        'tcp.options.timestamp.tsval',
        'tcp.options.timestamp.tsecr',
        'tcp.len',
      ],
    );
    expect(rows).toHaveLength(cases.length);
    rows.forEach((row, i) => {
      const s = cases[i]![0] as TcpSegment;
      const o = s.options;
      // Status 1 = PROTO_CHECKSUM_E_GOOD in Wireshark's proto.h.
      expect(row).toEqual([
        String(s.srcPort),
        String(s.dstPort),
        String(s.seq),
        String(s.ack),
        `0x${s.flags.toString(16).padStart(4, '0')}`,
        String(s.window),
        '1',
        String(s.urgentPointer),
        o.mss === undefined ? '' : String(o.mss),
        o.windowScale === undefined ? '' : String(o.windowScale),
        o.timestamps ? String(o.timestamps.value) : '',
        o.timestamps ? String(o.timestamps.echo) : '',
        // tshark shows the bytes of a RST or urgent segment under other fields; the length is the same.
        String(s.payload.length),
      ]);
    });
  });
});

describe('a connection between two TcpConnections, as Wireshark sees it', () => {
  it("passes Wireshark's TCP sequence analysis without a warning (handshake, data both ways, close)", () => {
    const p = new Pair({ receiveBuffer: 65536 * 4 }, { receiveBuffer: 65536 * 4 }, 3, { delay: 10 });
    const packets: { t: number; data: Uint8Array }[] = [];
    p.dropFilter = (from, seg) => {
      const pseudo = from === 'a' ? { src: A.addr, dst: B.addr } : { src: B.addr, dst: A.addr };
      packets.push({ t: p.clock.now(), data: ipPacket(encodeSegment(seg, pseudo), pseudo) });
      return false;
    };
    p.open();
    p.run(100);
    p.send('a', new Uint8Array(300_000).fill(0x41));
    p.send('b', new Uint8Array(5000).fill(0x42));
    p.run(5000);
    p.close('a');
    p.run(100);
    p.close('b');
    p.run(200_000);
    expect(p.conns.a.state).toBe('CLOSED');
    expect(p.conns.b.state).toBe('CLOSED');
    expect(p.receivedBytes).toEqual({ a: 5000, b: 300_000 });
    const problems = tshark(
      packets,
      ['frame.number', '_ws.expert.message', '_ws.col.Info'],
      '_ws.expert.severity >= warning || _ws.malformed',
    );
    expect(problems).toEqual([]);
    // And it saw what we sent: window scaling, SACK permitted and timestamps on the SYN.
    const syn = tshark(
      packets,
      ['tcp.options.wscale.shift', 'tcp.options.sack_perm', 'tcp.options.timestamp.tsval'],
      'tcp.flags.syn == 1 && tcp.flags.ack == 0',
    );
    expect(syn).toHaveLength(1);
    expect(syn[0]![0]).toBe('3');
  });
});
