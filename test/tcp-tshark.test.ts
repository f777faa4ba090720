/**
 * Wireshark's dissector as the judge of what our TCP puts on the wire in a simulated
 * session: handshakes with their options, Fast Open (a cookie request, a cookie, data in a
 * SYN), a SYN cookie, half-close, a RST for a closed port. tshark must find no malformed
 * segment and no bad checksum, and must read the fields we meant to send.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ipDelivery } from '@stepwire/ip/testing';
import { Sim } from '@stepwire/sim';
import { encodeSegment, SYN, Tcp, type TcpSocket } from '@stepwire/tcp';
import { afterAll, describe, expect, it } from 'vitest';
import { tsharkFields, tsharkProblems } from './support/tshark.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'sw-tcp-tshark-'));
const PCAP = path.join(dir, 'tcp.pcap');
const ECN_PCAP = path.join(dir, 'tcp-ecn-urg.pcap');

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function drive<T>(sim: Sim, p: Promise<T>): Promise<T> {
  let done = false;
  const w = p.finally(() => {
    done = true;
  });
  w.catch(() => {});
  while (!done) {
    await new Promise((r) => setImmediate(r));
    if (done) break;
    const at = sim.clock.nextTimerAt();
    if (at === undefined) throw new Error(`stalled at t=${sim.clock.now()}`);
    sim.clock.advanceTo(at);
  }
  return w;
}

function exchange(sim: Sim, port: number, text: string, fastOpen = false): Promise<string> {
  const c = sim.a.tcp.connect({ host: sim.b.ipv4, port, fastOpen });
  const parts: Buffer[] = [];
  c.on('data', (d: Buffer) => parts.push(d));
  const done = new Promise<string>((resolve, reject) => {
    c.on('end', () => resolve(Buffer.concat(parts).toString()));
    c.on('error', reject);
  });
  c.end(text);
  return done;
}

describe('our TCP through tshark', () => {
  it('a session of handshakes, Fast Open, a SYN cookie, half-closes and a RST dissects cleanly', async () => {
    const sim = new Sim({ seed: 3, pcapPath: PCAP });
    const echo = (s: TcpSocket) => s.pipe(s);
    sim.b.tcp.createServer({ fastOpen: true }, echo).listen(80, sim.b.ipv4);
    expect(await drive(sim, exchange(sim, 80, 'plain'))).toBe('plain');
    expect(await drive(sim, exchange(sim, 80, 'ask for a cookie', true))).toBe('ask for a cookie');
    expect(await drive(sim, exchange(sim, 80, 'data in the SYN', true))).toBe('data in the SYN');
    // A listener of backlog 1 whose SYN queue holds a half-open connection from nowhere.
    sim.b.tcp.createServer(echo).listen(81, sim.b.ipv4, 1);
    const spoof = encodeSegment(
      {
        srcPort: 999,
        dstPort: 81,
        seq: 1,
        ack: 0,
        flags: SYN,
        window: 1000,
        urgentPointer: 0,
        options: { mss: 1460 },
        payload: new Uint8Array(0),
      },
      { src: '198.18.0.77', dst: sim.b.ipv4 },
    );
    sim.b.tcp.receive(
      ipDelivery({
        version: 4,
        src: '198.18.0.77',
        dst: sim.b.ipv4,
        protocol: 6,
        ttl: 64,
        payload: spoof,
        original: spoof,
      }),
    );
    expect(await drive(sim, exchange(sim, 81, 'through a cookie'))).toBe('through a cookie');
    await expect(drive(sim, exchange(sim, 82, 'nobody'))).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    sim.clock.advance(70_000);
    sim.close();

    const problems = tsharkProblems(PCAP).filter((p) => !/Connection reset \(RST\)/.test(p));
    expect(problems).toEqual([]);

    const syns = tsharkFields(
      PCAP,
      ['tcp.srcport', 'tcp.options.mss_val', 'tcp.options.wscale.shift', 'tcp.options.sack_perm', 'tcp.len'],
      { filter: 'tcp.flags.syn == 1 && tcp.flags.ack == 0' },
    );
    expect(syns.length).toBe(5);
    for (const s of syns) {
      expect(s['tcp.options.mss_val']).toBe('1460');
      expect(s['tcp.options.wscale.shift']).toBe('3');
      expect(s['tcp.options.sack_perm']).not.toBe('');
    }
    // The third connection's SYN carried its 15 bytes (RFC 7413 §3).
    expect(syns.map((s) => s['tcp.len'])).toEqual(['0', '0', '15', '0', '0']);
    // The TFO option (kind 34): an empty request (length 2), the server's cookie (2 + 8) in its
    // SYN-ACK, then the cookie in the next SYN; a valid cookie needs no new one.
    const tfo = tsharkFields(PCAP, ['tcp.flags.ack', 'tcp.option_len'], { filter: 'tcp.option_kind == 34' });
    expect(tfo.map((t) => t['tcp.flags.ack'])).toEqual(['0', '1', '0']);
    expect(tfo.map((t) => t['tcp.option_len']!.split(',').pop())).toEqual(['2', '10', '10']);
    // The SYN cookie's SYN-ACK offers what the client's SYN did, window scale and SACK kept
    // in the low six bits of its TSval as Linux does (RFC 4987 §3.6): the client's shift, 0x10 for SACK.
    const cookieSynAck = tsharkFields(
      PCAP,
      [
        'tcp.options.wscale.shift',
        'tcp.options.mss_val',
        'tcp.options.sack_perm',
        'tcp.options.timestamp.tsval',
      ],
      { filter: 'ip.dst == 198.18.0.1 && tcp.srcport == 81 && tcp.flags.syn == 1 && tcp.flags.ack == 1' },
    );
    expect(cookieSynAck.map((r) => [r['tcp.options.wscale.shift'], r['tcp.options.mss_val']])).toEqual([
      ['3', '1460'],
    ]);
    expect(cookieSynAck[0]!['tcp.options.sack_perm']).not.toBe('');
    expect(Number(cookieSynAck[0]!['tcp.options.timestamp.tsval']) & 0x3f).toBe(0x10 | 3);
    // The refused SYN drew one RST from B.
    const rst = tsharkFields(PCAP, ['tcp.srcport'], { filter: 'tcp.flags.reset == 1' });
    expect(rst).toEqual([{ 'tcp.srcport': '82' }]);
  });

  it('ECN negotiation and ECT(0) data (RFC 3168 §6.1.1) and urgent data (RFC 9293 §3.8.5) read as we meant them', async () => {
    const sim = new Sim({ seed: 4, pcapPath: ECN_PCAP });
    // Stacks that ask for ECN (the Sim's own accept it but never ask).
    const a = new Tcp(sim.a.host, { connection: { ecn: true } });
    const b = new Tcp(sim.b.host, { connection: { ecn: true } });
    b.createServer((sock) => sock.pipe(sock)).listen(80, sim.b.ipv4);
    const c = a.connect({ host: sim.b.ipv4, port: 80 });
    const parts: Buffer[] = [];
    c.on('data', (d: Buffer) => parts.push(d));
    const done = new Promise<string>((resolve, reject) => {
      c.on('end', () => resolve(Buffer.concat(parts).toString()));
      c.on('error', reject);
    });
    c.write('hello');
    c.writeUrgent('!');
    c.end('world');
    expect(await drive(sim, done)).toBe('hello!world');
    sim.clock.advance(70_000);
    sim.close();

    expect(tsharkProblems(ECN_PCAP)).toEqual([]);
    // One dissection; tshark prints booleans as 1/0 or True/False depending on its version.
    const bit = (v: string | undefined) => (v === '1' || v === 'True' ? 1 : 0);
    const rows = tsharkFields(ECN_PCAP, [
      'tcp.flags.syn',
      'tcp.flags.ack',
      'tcp.flags.fin',
      'tcp.flags.reset',
      'tcp.flags.ece',
      'tcp.flags.cwr',
      'tcp.flags.urg',
      'tcp.urgent_pointer',
      'ip.dsfield.ecn',
      'tcp.len',
    ]).map((r) => ({
      syn: bit(r['tcp.flags.syn']),
      ack: bit(r['tcp.flags.ack']),
      other: bit(r['tcp.flags.fin']) | bit(r['tcp.flags.reset']),
      ece: bit(r['tcp.flags.ece']),
      cwr: bit(r['tcp.flags.cwr']),
      urg: bit(r['tcp.flags.urg']),
      up: r['tcp.urgent_pointer'],
      ecn: r['ip.dsfield.ecn'],
      len: Number(r['tcp.len']),
    }));
    const ecnOf = (xs: typeof rows) => xs.map((r) => `${r.ece} ${r.cwr} ${r.ecn}`);
    // The ECN-setup SYN (ECE and CWR), the ECN-setup SYN-ACK (ECE only), both Not-ECT.
    expect(ecnOf(rows.filter((r) => r.syn && !r.ack))).toEqual(['1 1 0']);
    expect(ecnOf(rows.filter((r) => r.syn && r.ack))).toEqual(['1 0 0']);
    // Every segment with data is ECT(0) (2); every pure ACK is Not-ECT (0).
    const data = rows.filter((r) => r.len > 0);
    expect(data.length).toBeGreaterThan(0);
    expect(new Set(data.map((r) => r.ecn))).toEqual(new Set(['2']));
    const acks = rows.filter((r) => r.len === 0 && !r.syn && !r.other);
    expect(acks.length).toBeGreaterThan(0);
    expect(new Set(acks.map((r) => r.ecn))).toEqual(new Set(['0']));
    // The urgent byte: URG set and the pointer just past '!' (1 from a segment that starts
    // at it, 6 from one that starts at 'hello'); the echo's copy carries none.
    const urg = rows.filter((r) => r.urg);
    expect(urg.length).toBeGreaterThan(0);
    for (const u of urg) expect(['1', '6']).toContain(u.up);
  });
});
