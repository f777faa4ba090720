import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Impairments,
  type Link,
  type LinkOffloads,
  MemoryLink,
  type PacketHandler,
  type PacketInfo,
  PcapWriter,
  recordLink,
} from '@stepwire/link';
import { encodeSegment, Tcp, type TcpSocket } from '@stepwire/tcp';
import { Counters, TraceBus, type TraceEvent, VirtualClock } from '@stepwire/wire';
import { afterAll, describe, expect, it } from 'vitest';
import type { GroPacket } from '../src/gro.ts';
import { gsoSegment } from '../src/gso.ts';
import { Host } from '../src/host.ts';
import { encodeIpv4 } from '../src/ipv4.ts';
import { ipv4Packet } from '../src/testing.ts';
import { IPPROTO_TCP } from '../src/types.ts';

/**
 * Software GSO in the Host (IpTuning.softwareGso): over a MemoryLink without offloads, TCP
 * is told the link takes super-segments, IP cuts them (gso.ts) before the link, and the
 * receiver — which knows nothing of it — sees only packets of at most the MTU carrying
 * every byte in order, also with loss and reordering. tshark, reading the sender's
 * capture, is the independent judge of the cut packets' checksums and sequence numbers.
 */

const dir = mkdtempSync(join(tmpdir(), 'sw-gso-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MTU = 1500;

interface Run {
  v6: boolean;
  received: Buffer;
  sent: Buffer;
  a: Host;
  b: Host;
  /** Length of every packet that reached B's IP layer. */
  atB: number[];
  events: TraceEvent[];
  mtuDrops: number;
  lossDrops: number;
  pcap?: Uint8Array;
}

interface RunOptions {
  softwareGso: boolean;
  v6?: boolean;
  impairments?: Impairments;
  seed?: number;
  checksumOffload?: boolean;
  bytes?: number;
  trace?: boolean;
  pcap?: boolean;
  /** B joins each instant's segments (Host.softwareGro, receiveBatch). */
  gro?: boolean;
  /** With gro: the MemoryLink's own batches (its 'more' hint for a run of packets), not the Tap's. */
  linkBatches?: boolean;
}

/**
 * B's end of the wire, noting the length of every packet that reaches it. With `batch`,
 * the packets of one instant go up together (as a TUN reader's batch does), through
 * `batch` — the Host's receiveBatch — at the end of that instant.
 */
class Tap implements Link {
  batch: ((items: GroPacket[]) => void) | undefined;
  private queue: GroPacket[] = [];
  constructor(
    private readonly inner: Link,
    private readonly seen: number[],
    private readonly clock: VirtualClock,
  ) {}
  get name(): string {
    return this.inner.name;
  }
  get mtu(): number {
    return this.inner.mtu;
  }
  get offloads(): LinkOffloads | undefined {
    return this.inner.offloads;
  }
  get counters() {
    return this.inner.counters;
  }
  send(packet: Uint8Array, info?: PacketInfo): void {
    this.inner.send(packet, info);
  }
  onPacket(handler: PacketHandler): void {
    this.inner.onPacket((p, info, more) => {
      this.seen.push(p.length);
      const batch = this.batch;
      if (batch === undefined) {
        handler(p, info, more);
        return;
      }
      if (this.queue.length === 0) {
        this.clock.setTimer(this.clock.now(), () => {
          const items = this.queue;
          this.queue = [];
          this.batches++;
          batch(items);
        });
      }
      this.queue.push(info === undefined ? { packet: p } : { packet: p, info });
    });
  }
  close(): void {
    this.inner.close();
  }
  batches = 0;
}

/** A pattern no two nearby bytes share, so a misplaced or repeated piece shows. */
function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + (i >> 8) * 7 + (i >> 16)) & 0xff;
  return b;
}

async function bulk(o: RunOptions): Promise<Run> {
  const clock = new VirtualClock();
  const [la, lb] = MemoryLink.pair({
    clock,
    mtu: MTU,
    seed: o.seed ?? 1,
    ...(o.impairments ? { impairments: o.impairments } : {}),
    ...(o.checksumOffload ? { offloads: { checksum: true } } : {}),
  });
  const writer = o.pcap ? PcapWriter.inMemory() : undefined;
  const atB: number[] = [];
  // The sender's capture, like tcpdump on A's interface; B's records what reaches B.
  const ra = writer ? recordLink(la, writer, clock) : la;
  const rb = new Tap(lb, atB, clock);
  const trace = new TraceBus();
  const events: TraceEvent[] = [];
  if (o.trace) trace.on((e) => events.push(e));
  const a = new Host({ name: 'A', clock, trace, softwareGso: o.softwareGso });
  const b = new Host({ name: 'B', clock, trace, softwareGso: o.softwareGso, softwareGro: o.gro === true });
  a.addInterface({ link: ra, ipv4: '198.18.0.1/24', ipv6: 'fd00:5757::1/64' });
  const ib = b.addInterface({ link: rb, ipv4: '198.18.0.2/24', ipv6: 'fd00:5757::2/64' });
  if (o.gro && !o.linkBatches) rb.batch = (items) => b.receiveBatch(items, ib);
  const ta = new Tcp(a);
  const tb = new Tcp(b);
  const host = o.v6 ? 'fd00:5757::2' : '198.18.0.2';
  const parts: Buffer[] = [];
  let ended = false;
  tb.createServer((s: TcpSocket) => {
    s.on('data', (d: Buffer) => parts.push(Buffer.from(d)));
    s.on('end', () => {
      ended = true;
      s.end();
    });
  }).listen(5001, host);
  const sent = pattern(o.bytes ?? 600_000);
  const c = ta.connect({ host, port: 5001 });
  c.on('error', () => {});
  // Written in 64 KB pieces as an application would, the socket's backpressure obeyed.
  let at = 0;
  const more = () => {
    while (at < sent.length) {
      const piece = sent.subarray(at, at + 65536);
      at += piece.length;
      if (!c.write(piece)) {
        c.once('drain', more);
        return;
      }
    }
    c.end();
  };
  more();
  // Fire due timers, let stream callbacks run, repeat; bounded in steps and virtual time.
  for (let steps = 0; !ended; steps++) {
    if (steps > 200_000) throw new Error(`transfer stalled at t=${clock.now()}`);
    await new Promise((r) => setImmediate(r));
    if (ended) break;
    const next = clock.nextTimerAt();
    if (next === undefined || next > 600_000) throw new Error(`transfer stalled at t=${clock.now()}`);
    clock.advanceTo(next);
  }
  writer?.close();
  return {
    v6: o.v6 === true,
    received: Buffer.concat(parts),
    sent,
    a,
    b,
    atB,
    events,
    mtuDrops: la.counters.get('drop.mtu') + lb.counters.get('drop.mtu'),
    lossDrops: la.counters.get('drop.loss') + lb.counters.get('drop.loss'),
    ...(writer ? { pcap: writer.bytes() } : {}),
  };
}

/** A TCP segment 198.18.0.1:1 → 198.18.0.2:2 (ACK, seq 1) of `dataLength` bytes of `fill`, encoded. */
function ackSegmentV4(dataLength: number, fill: number): Uint8Array {
  return encodeSegment(
    {
      srcPort: 1,
      dstPort: 2,
      seq: 1,
      ack: 1,
      flags: 0x10,
      window: 1000,
      urgentPointer: 0,
      options: {},
      payload: new Uint8Array(dataLength).fill(fill),
    },
    { src: '198.18.0.1', dst: '198.18.0.2' },
  );
}

/** That segment as an IPv4 super-segment, cut by gsoSegment into pieces of `size` data bytes. */
function cutV4(dataLength: number, fill: number, size: number): Uint8Array[] {
  const tcp = ackSegmentV4(dataLength, fill);
  const packet = encodeIpv4(
    ipv4Packet({
      protocol: IPPROTO_TCP,
      src: '198.18.0.1',
      dst: '198.18.0.2',
      payload: tcp,
    }),
  );
  return gsoSegment(packet, { type: 'tcpv4', size, hdrLen: 40 }).packets;
}

function expectCut(r: Run): void {
  expect(r.received.length).toBe(r.sent.length);
  expect(r.received.equals(r.sent)).toBe(true);
  const supers = r.a.counters.get('ip.tx.gso-software');
  const pieces = r.a.counters.get('ip.tx.gso-segments');
  // TCP did send super-segments, each went as several packets, and none was refused.
  expect(supers).toBeGreaterThan(0);
  expect(pieces).toBeGreaterThan(supers);
  expect(r.a.counters.get('ip.drop.gso-malformed')).toBe(0);
  expect(r.mtuDrops).toBe(0);
  expect(r.atB.length).toBeGreaterThan(r.sent.length / MTU);
  expect(Math.max(...r.atB)).toBeLessThanOrEqual(MTU);
}

describe('Host with softwareGso over a link without TSO', () => {
  it('IPv4: every byte arrives, in packets of at most the MTU, cut from super-segments', async () => {
    const r = await bulk({ softwareGso: true });
    expectCut(r);
    expect(r.a.offloadsFor('198.18.0.2')).toEqual({ checksum: true, tsoMax: 65535 });
    // The link gets full-sized packets: most pieces carry a whole MSS.
    expect(r.atB.filter((n) => n === MTU).length).toBeGreaterThan(r.sent.length / MTU / 2);
  });

  it('IPv6: the same, Payload Length per piece', async () => {
    const r = await bulk({ softwareGso: true, v6: true });
    expectCut(r);
  });

  it('with 2% loss and 3% reordering both ways: every byte, in order, still ≤ MTU', async () => {
    for (const seed of [1, 2]) {
      const r = await bulk({
        softwareGso: true,
        seed,
        bytes: 400_000,
        impairments: { loss: 0.02, reorder: 0.03, reorderDelay: 5, delay: 2 },
      });
      expectCut(r);
      expect(r.lossDrops).toBeGreaterThan(0);
    }
  });

  it('a link with checksum offload but no TSO gets the pieces with partial checksums', async () => {
    const r = await bulk({ softwareGso: true, checksumOffload: true, v6: true });
    expectCut(r);
    expect(r.a.counters.get('ip.tx.csum-partial')).toBeGreaterThanOrEqual(
      r.a.counters.get('ip.tx.gso-segments'),
    );
  });

  it('counts and traces one line per cut super-segment', async () => {
    const r = await bulk({ softwareGso: true, trace: true, bytes: 200_000 });
    expectCut(r);
    const cuts = r.events.filter((e) => e.summary.startsWith('gso: '));
    expect(cuts.length).toBe(r.a.counters.get('ip.tx.gso-software'));
    const pieces = cuts.reduce((n, e) => n + Number(e.fields?.segments), 0);
    expect(pieces).toBe(r.a.counters.get('ip.tx.gso-segments'));
    expect(cuts[0]?.layer).toBe('ipv4');
    expect(cuts[0]?.summary).toMatch(
      /^gso: \d+-byte super-segment cut into \d+ packets of ≤ 1448 data bytes$/,
    );
  });

  it('IP alone: a super-segment is cut into MSS-sized datagrams; pieces too big for the path are refused with its MTU', () => {
    const run = (softwareGso: boolean, size: number, mtu = MTU) => {
      const clock = new VirtualClock();
      const [la, lb] = MemoryLink.pair({ clock, mtu });
      const a = new Host({ name: 'A', clock, softwareGso });
      const b = new Host({ name: 'B', clock });
      a.addInterface({ link: la, ipv4: '198.18.0.1/24' });
      b.addInterface({ link: lb, ipv4: '198.18.0.2/24' });
      const got: number[] = [];
      b.registerProtocol(IPPROTO_TCP, { receive: (d) => got.push(d.payload.length) });
      const tcp = ackSegmentV4(5000, 9);
      const r = a.send({
        dst: '198.18.0.2',
        protocol: IPPROTO_TCP,
        payload: tcp,
        dontFragment: true,
        gso: { size, transportHeaderLength: 20 },
      });
      clock.runUntilIdle();
      return { r, got, fragments: a.counters.get('ipv4.tx.fragments') };
    };
    expect(run(true, 1460)).toEqual({ r: { ok: true }, got: [1480, 1480, 1480, 640], fragments: 0 });
    // RFC 8201 / RFC 1191: each piece must fit the path; a GSO packet is never fragmented.
    expect(run(true, 1461)).toEqual({ r: { ok: false, error: 'too-big', mtu: 1500 }, got: [], fragments: 0 });
    expect(run(true, 1000, 1200)).toEqual({
      r: { ok: true },
      got: [1020, 1020, 1020, 1020, 1020],
      fragments: 0,
    });
    // Off: a link without TSO refuses a super-segment, as before.
    expect(run(false, 1460).r).toEqual({ ok: false, error: 'too-big' });
  });

  it('off by default: no super-segment toward a link without TSO, nothing cut', async () => {
    const r = await bulk({ softwareGso: false, bytes: 200_000 });
    expect(r.received.equals(r.sent)).toBe(true);
    expect(r.a.offloadsFor('198.18.0.2')).toBeUndefined();
    expect(r.a.counters.get('ip.tx.gso-software')).toBe(0);
    expect(r.a.counters.get('tcp.tx.tso')).toBe(0);
    expect(Math.max(...r.atB)).toBeLessThanOrEqual(MTU);
  });
});

describe('Host with softwareGro on a batching link', () => {
  it('joins the pieces back: every byte arrives, TCP at B sees runs, not packets', async () => {
    const r = await bulk({ softwareGso: true, gro: true, v6: true });
    expectCut(r);
    const runs = r.b.counters.get('ip.rx.gro-runs');
    const joined = r.b.counters.get('ip.rx.gro-joined');
    expect(runs).toBeGreaterThan(0);
    expect(joined).toBeGreaterThan(runs);
    // What IP decoded at B: the packets that reached it, less those folded into runs.
    expect(r.b.counters.get('ipv6.rx')).toBe(r.atB.length - joined + runs);
  });

  it("over the MemoryLink's own batches (its 'more' for a run of packets to one end), the same", async () => {
    const r = await bulk({ softwareGso: true, gro: true, linkBatches: true });
    expectCut(r);
    const runs = r.b.counters.get('ip.rx.gro-runs');
    const joined = r.b.counters.get('ip.rx.gro-joined');
    expect(runs).toBeGreaterThan(0);
    expect(joined).toBeGreaterThan(runs);
    expect(r.b.counters.get('ipv4.rx')).toBe(r.atB.length - joined + runs);
  });

  it('with loss and reordering: every byte, in order', async () => {
    for (const seed of [4, 5]) {
      const r = await bulk({
        softwareGso: true,
        gro: true,
        seed,
        bytes: 400_000,
        impairments: { loss: 0.02, reorder: 0.03, reorderDelay: 5, delay: 2 },
      });
      expectCut(r);
      expect(r.lossDrops).toBeGreaterThan(0);
      expect(r.b.counters.get('ip.rx.gro-runs')).toBeGreaterThan(0);
    }
  });

  it('traces one line per joined run', async () => {
    const r = await bulk({ softwareGso: true, gro: true, trace: true, bytes: 200_000 });
    expectCut(r);
    const runs = r.events.filter((e) => e.host === 'B' && e.summary.startsWith('gro: '));
    expect(runs.length).toBe(r.b.counters.get('ip.rx.gro-runs'));
    expect(runs.reduce((n, e) => n + Number(e.fields?.segments), 0)).toBe(
      r.b.counters.get('ip.rx.gro-joined'),
    );
    expect(runs[0]?.summary).toMatch(
      /^gro: \d+ segments of ≤ 1448 data bytes joined into a \d+-byte super-segment$/,
    );
  });

  it("a link that says 'more' has its batch joined: packets held until the batch ends (or 64)", () => {
    /** A link that hands over a batch as TunLink's reader does, saying whether more follow. */
    class BatchLink implements Link {
      readonly name = 'batch';
      readonly mtu = MTU;
      readonly counters = new Counters();
      private h: PacketHandler | undefined;
      send(): void {}
      onPacket(h: PacketHandler): void {
        this.h = h;
      }
      close(): void {}
      deliver(packets: Uint8Array[], saysMore = true): void {
        for (const [i, p] of packets.entries())
          this.h?.(p, undefined, saysMore ? i < packets.length - 1 : undefined);
      }
    }
    const pieces = (n: number) => cutV4(n * 100, 5, 100);
    const deliveries = (softwareGro: boolean, packets: Uint8Array[], saysMore = true) => {
      const clock = new VirtualClock();
      const link = new BatchLink();
      const b = new Host({ name: 'B', clock, softwareGro });
      b.addInterface({ link, ipv4: '198.18.0.2/24' });
      const got: number[] = [];
      b.registerProtocol(IPPROTO_TCP, { receive: (d) => got.push(d.payload.length - 20) });
      link.deliver(packets, saysMore);
      return got;
    };
    expect(deliveries(true, pieces(5))).toEqual([500]);
    expect(deliveries(true, pieces(5), false)).toEqual([100, 100, 100, 100, 100]);
    expect(deliveries(false, pieces(5))).toEqual([100, 100, 100, 100, 100]);
    // 70 in one batch: the first 64 go up when the 64th arrives, the rest when the batch ends.
    expect(deliveries(true, pieces(70))).toEqual([6400, 600]);
  });

  it('receiveBatch without softwareGro (the default) hands each packet up as it came', () => {
    const deliveries = (softwareGro?: boolean) => {
      const clock = new VirtualClock();
      const [, lb] = MemoryLink.pair({ clock, mtu: MTU });
      const b = new Host({ name: 'B', clock, ...(softwareGro === undefined ? {} : { softwareGro }) });
      const ib = b.addInterface({ link: lb, ipv4: '198.18.0.2/24' });
      const got: number[] = [];
      b.registerProtocol(IPPROTO_TCP, { receive: (d) => got.push(d.payload.length) });
      const packets = cutV4(4 * 1000, 3, 1000);
      b.receiveBatch(
        packets.map((p) => ({ packet: p })),
        ib,
      );
      return got;
    };
    expect(deliveries()).toEqual([1020, 1020, 1020, 1020]);
    expect(deliveries(false)).toEqual([1020, 1020, 1020, 1020]);
    expect(deliveries(true)).toEqual([4020]);
  });
});

describe('tshark on the sender capture of a software-GSO transfer', () => {
  const check = (name: string, r: Run, clean: boolean) => {
    const file = join(dir, `${name}.pcap`);
    if (r.pcap === undefined) throw new Error('no capture');
    writeFileSync(file, r.pcap);
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
        '-o',
        'tcp.analyze_sequence_numbers:TRUE',
        '-T',
        'fields',
        '-E',
        'separator=\t',
        '-E',
        'occurrence=a',
        '-E',
        'aggregator=,',
        '-e',
        'ip.len',
        '-e',
        'ipv6.plen',
        '-e',
        'ip.checksum.status',
        '-e',
        'tcp.checksum.status',
        '-e',
        'tcp.len',
        '-e',
        '_ws.expert.message',
        '-e',
        '_ws.malformed',
        '-e',
        '_ws.expert.severity',
        '-e',
        'ip.src',
        '-e',
        'ip.id',
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 },
    );
    const rows = out
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => l.split('\t'));
    const bad: string[] = [];
    for (const [i, row] of rows.entries()) {
      const [ipLen, plen, ipCk, tcpCk, , expert, malformed, severity] = row;
      const len = Number(ipLen || 0) || Number(plen || 0) + 40;
      if (len > MTU) bad.push(`#${i + 1} ${len} bytes`);
      if (ipCk !== undefined && ipCk !== '' && ipCk !== '1') bad.push(`#${i + 1} ip checksum status ${ipCk}`);
      // 1 is Good: tshark summed the segment over its pseudo-header itself.
      if (tcpCk !== '1') bad.push(`#${i + 1} tcp checksum status ${tcpCk}`);
      if (malformed) bad.push(`#${i + 1} malformed`);
      if (/bad checksum|previous segment not captured|acked unseen segment/i.test(expert ?? ''))
        bad.push(`#${i + 1} ${expert}`);
      // On a clean link nothing is a retransmission, out of order or a duplicate ACK, and
      // no expert remark is a warning (0x600000) or worse.
      const worst = Math.max(0, ...(severity ?? '').split(',').filter(Boolean).map(Number));
      if (clean && (worst >= 0x600000 || /retransmission|out-of-order|dup ack|duplicate/i.test(expert ?? '')))
        bad.push(`#${i + 1} ${expert}`);
    }
    expect(bad).toEqual([]);
    if (clean && !r.v6) {
      // RFC 791 §3.1 / inet_gso_segment: A's datagrams, pieces included, number on by one.
      const ids = rows.filter((row) => row[8] === '198.18.0.1').map((row) => Number(row[9]));
      const steps = ids.slice(1).map((id, i) => (id - (ids[i] as number) + 0x10000) & 0xffff);
      expect(ids.length).toBeGreaterThan(r.sent.length / MTU);
      expect(steps.every((d) => d === 1)).toBe(true);
    }
    const tcpBytes = rows.reduce((n, row) => n + Number(row[4] || 0), 0);
    expect(tcpBytes).toBeGreaterThanOrEqual(r.sent.length);
  };

  it('IPv4 clean link: every checksum good, no expert remark at all', async () => {
    const r = await bulk({ softwareGso: true, pcap: true, bytes: 300_000 });
    expectCut(r);
    check('v4-clean', r, true);
  });

  it('IPv6 with loss and reordering: checksums good, no segment tshark did not see before', async () => {
    const r = await bulk({
      softwareGso: true,
      v6: true,
      pcap: true,
      bytes: 300_000,
      seed: 3,
      impairments: { loss: 0.02, reorder: 0.03, reorderDelay: 5, delay: 2 },
    });
    expectCut(r);
    expect(r.lossDrops).toBeGreaterThan(0);
    check('v6-impaired', r, false);
  });
});
