/**
 * TUN offloads (IFF_VNET_HDR, TUNSETOFFLOAD) against the kernel, in namespace sw-link-off-<pid>
 * made and removed here. Device swoff0 has offloads (kernel 198.18.0.1, us 198.18.0.2);
 * device swoff1 is plain (kernel 198.18.1.1, "beyond" 198.18.1.2), so the kernel can also
 * forward between them. TCP is played by hand here (the link package sits below tcp):
 * just enough of RFC 9293 to accept a connection and acknowledge what arrives.
 * Needs root; fails without it.
 */
import { ByteWriter, finishChecksum, internetChecksum, sum16 } from '@stepwire/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PacketInfo } from '../src/link.ts';
import { netnsDown } from '../src/netns.ts';
import type { TunLink } from '../src/tun.ts';
import { makeNs, requireRoot, type TestNs } from './tun-helpers.ts';

// The PID in the name: two runs of this file at once (two checkouts, a loop) must not
// remove each other's namespace.
const NS = `sw-link-off-${process.pid}`;
const OFF = 'swoff0';
const PLAIN = 'swoff1';

const v4 = (s: string) => new Uint8Array(s.split('.').map(Number));
const SYN = 0x02;
const ACK = 0x10;
const PSH = 0x08;
const FIN = 0x01;

/** RFC 9293 §3.1 pseudo-header sum (RFC 793's for IPv4): src, dst, zero, protocol 6, TCP length. */
function pseudoSum(src: Uint8Array, dst: Uint8Array, tcpLen: number): number {
  return sum16(new ByteWriter(12).bytes(src).bytes(dst).u8(0).u8(6).u16(tcpLen).finish());
}

interface Seg {
  src: Uint8Array;
  dst: Uint8Array;
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  window?: number;
  options?: Uint8Array;
  payload?: Uint8Array;
  /** Leave the checksum partial (the pseudo-header sum only), for the device to finish. */
  partial?: boolean;
}

/** An IPv4 packet (RFC 791, 20-byte header, DF) carrying a TCP segment (RFC 9293 §3.1). */
function ipTcp(s: Seg): Uint8Array {
  const opts = s.options ?? new Uint8Array(0);
  const payload = s.payload ?? new Uint8Array(0);
  const tcpLen = 20 + opts.length + payload.length;
  const w = new ByteWriter(20 + tcpLen);
  w.u8(0x45)
    .u8(0)
    .u16(20 + tcpLen)
    .u16(0)
    .u16(0x4000)
    .u8(64)
    .u8(6)
    .u16(0)
    .bytes(s.src)
    .bytes(s.dst);
  w.u16(s.sport)
    .u16(s.dport)
    .u32(s.seq >>> 0)
    .u32(s.ack >>> 0)
    .u8(((20 + opts.length) / 4) << 4)
    .u8(s.flags)
    .u16(s.window ?? 65535)
    .u16(0)
    .u16(0)
    .bytes(opts)
    .bytes(payload);
  const p = w.finish();
  const hc = internetChecksum(p.subarray(0, 20));
  p[10] = hc >> 8;
  p[11] = hc & 0xff;
  const ps = pseudoSum(s.src, s.dst, tcpLen);
  // Partial: the folded pseudo-header sum, not complemented, as Linux leaves it for
  // CHECKSUM_PARTIAL (the device sums from csum_start over it and complements).
  const c = s.partial ? ~finishChecksum(ps) & 0xffff : finishChecksum(sum16(p.subarray(20), ps));
  p[36] = c >> 8;
  p[37] = c & 0xff;
  return p;
}

interface TcpView {
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  hdrLen: number;
  payload: Uint8Array;
}

function parseTcp(p: Uint8Array): TcpView | undefined {
  if (p[0]! >> 4 !== 4 || p[9] !== 6) return undefined;
  const ihl = (p[0]! & 0xf) * 4;
  const dv = new DataView(p.buffer, p.byteOffset, p.length);
  const doff = (p[ihl + 12]! >> 4) * 4;
  const total = dv.getUint16(2);
  return {
    sport: dv.getUint16(ihl),
    dport: dv.getUint16(ihl + 2),
    seq: dv.getUint32(ihl + 4),
    ack: dv.getUint32(ihl + 8),
    flags: p[ihl + 13]!,
    hdrLen: ihl + doff,
    payload: p.subarray(ihl + doff, total),
  };
}

/** Whether the TCP checksum of an IPv4 packet verifies (RFC 1071: the sum over all is 0xffff). */
function tcpChecksumOk(p: Uint8Array): boolean {
  const ihl = (p[0]! & 0xf) * 4;
  const seg = p.subarray(ihl);
  return finishChecksum(sum16(seg, pseudoSum(p.subarray(12, 16), p.subarray(16, 20), seg.length))) === 0;
}

/** RFC 8200 §8.1 pseudo-header sum: src, dst, upper-layer length (32 bits), zeros, next header 6. */
function pseudoSum6(src: Uint8Array, dst: Uint8Array, tcpLen: number): number {
  return sum16(new ByteWriter(40).bytes(src).bytes(dst).u32(tcpLen).u32(6).finish());
}

const v6 = (groups: number[]) => {
  const w = new ByteWriter(16);
  for (const g of groups) w.u16(g);
  return w.finish();
};

/** An IPv6 packet (RFC 8200 §3, no extension headers) with a TCP segment, checksum partial. */
function ip6TcpPartial(
  src: Uint8Array,
  dst: Uint8Array,
  sport: number,
  dport: number,
  seq: number,
  payload: Uint8Array,
): Uint8Array {
  const tcpLen = 20 + payload.length;
  const w = new ByteWriter(40 + tcpLen);
  w.u32(0x60000000).u16(tcpLen).u8(6).u8(64).bytes(src).bytes(dst);
  w.u16(sport)
    .u16(dport)
    .u32(seq)
    .u32(1)
    .u8(5 << 4)
    .u8(ACK | PSH)
    .u16(65535)
    .u16(0)
    .u16(0)
    .bytes(payload);
  const p = w.finish();
  const c = ~finishChecksum(pseudoSum6(src, dst, tcpLen)) & 0xffff;
  p[56] = c >> 8;
  p[57] = c & 0xff;
  return p;
}

/** What partial-checksum completion gives: sum from start (over the pseudo-sum in the field), complemented. */
function completePartial(p: Uint8Array, start: number): number {
  return finishChecksum(sum16(p.subarray(start)));
}

interface Received {
  bytes: number;
  chunks: Uint8Array[];
  infos: (PacketInfo | undefined)[];
  /** IP packet lengths of the data packets. */
  sizes: number[];
  /** Data packets kept whole: the first, and every super-segment. */
  samples: Uint8Array[];
  fin: boolean;
}

/**
 * A one-connection TCP receiver on `link` at `ours`:`port`: answers the SYN (MSS 1460,
 * window scale 7), acknowledges every in-order segment at once, and its FIN.
 */
function tcpReceiver(link: TunLink, ours: string, port: number): Received {
  const me = v4(ours);
  const got: Received = { bytes: 0, chunks: [], infos: [], sizes: [], samples: [], fin: false };
  let rcvNxt = 0;
  const iss = 1000;
  let sndNxt = iss;
  link.onPacket((p, info) => {
    const t = parseTcp(p);
    if (!t || t.dport !== port) return;
    const peer = p.slice(12, 16);
    const reply = (flags: number, options?: Uint8Array) =>
      link.send(
        ipTcp({
          src: me,
          dst: peer,
          sport: port,
          dport: t.sport,
          seq: sndNxt,
          ack: rcvNxt,
          flags,
          window: 0xffff,
          ...(options ? { options } : {}),
        }),
      );
    if (t.flags & SYN) {
      rcvNxt = (t.seq + 1) >>> 0;
      // MSS 1460 (kind 2), NOP, window scale 7 (kind 3): a 8 MiB window.
      reply(SYN | ACK, new Uint8Array([2, 4, 0x05, 0xb4, 1, 3, 3, 7]));
      sndNxt = (iss + 1) >>> 0;
      return;
    }
    if (t.payload.length > 0 && t.seq === rcvNxt) {
      rcvNxt = (rcvNxt + t.payload.length) >>> 0;
      got.bytes += t.payload.length;
      got.chunks.push(t.payload.slice());
      got.infos.push(info);
      got.sizes.push(p.length);
      if (got.infos.length === 1 || info?.gso) got.samples.push(p);
    }
    if (t.flags & FIN && (t.seq + t.payload.length) >>> 0 === rcvNxt) {
      rcvNxt = (rcvNxt + 1) >>> 0;
      got.fin = true;
      reply(FIN | ACK);
      sndNxt = (sndNxt + 1) >>> 0;
      return;
    }
    reply(ACK);
  });
  return got;
}

/** argv: address, port, bytes. Sends a byte pattern (i % 251) in 256 KiB writes, then closes. */
const SENDER = `
import socket, sys
addr, port, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pat = bytes(i % 251 for i in range(251 * 1046))
s = socket.create_connection((addr, port), timeout=10)
sent = 0
while sent < total:
    n = min(262144, total - sent)
    off = sent % 251
    s.sendall(pat[off:off + n])
    sent += n
s.shutdown(socket.SHUT_WR)
s.settimeout(10)
while s.recv(65536):
    pass
print('done', flush=True)
`;

const pattern = (n: number, from = 0) => Uint8Array.from({ length: n }, (_, i) => (from + i) % 251);
/** Byte equality as one boolean (vitest's deep equality walks a 2 MiB array element by element, slowly). */
const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
const concat = (xs: Uint8Array[]) => {
  const out = new Uint8Array(xs.reduce((a, x) => a + x.length, 0));
  let at = 0;
  for (const x of xs) {
    out.set(x, at);
    at += x.length;
  }
  return out;
};

afterAll(() => {
  netnsDown(NS);
});

describe.each(['main', 'thread'] as const)(
  'TUN offloads against the kernel (writes on the %s thread)',
  (writer) => {
    let ns: TestNs | undefined;
    let off: TunLink;
    let plain: TunLink;

    beforeAll(async () => {
      requireRoot();
      const made = makeNs(NS, OFF, { offloads: true, writer });
      ns = made.ns;
      off = made.link;
      // The plain device carries 198.18.1.0/24, and the kernel forwards between the two.
      plain = ns.openDevice(PLAIN, '198.18.1.1/24', { writer });
      ns.ip(['-6', 'addr', 'add', 'fd00:5758::1/64', 'dev', PLAIN, 'nodad']);
      await ns.exec('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    });

    afterAll(async () => {
      await ns?.close();
    });

    it('reports what the kernel accepted: checksum and TSO up to 64 KB; a plain device reports nothing', () => {
      expect(off.offloads).toEqual({ checksum: true, tsoMax: 65535 });
      expect(plain.offloads).toBeUndefined();
    });

    it('a kernel sender over the offload device: 64 KB-class super-segments with partial checksums, every byte intact', async () => {
      const BYTES = 2 << 20;
      const got = tcpReceiver(off, '198.18.0.2', 5001);
      const out = await ns!.exec('/usr/bin/python3', ['-c', SENDER, '198.18.0.2', '5001', String(BYTES)]);
      expect(out).toContain('done');
      expect(got.bytes).toBe(BYTES);
      expect(got.fin).toBe(true);
      expect(sameBytes(concat(got.chunks), pattern(BYTES))).toBe(true);
      const gso = got.infos.filter((i) => i?.gso);
      expect(gso.length).toBeGreaterThan(0);
      expect(off.counters.get('rx.gso')).toBeGreaterThanOrEqual(gso.length);
      expect(Math.max(...got.sizes)).toBeGreaterThan(off.mtu);
      // Fewer packets than MSS-sized segments would take: the kernel handed us super-segments.
      expect(got.sizes.length).toBeLessThan(BYTES / 1460);
      for (const i of gso) {
        // MSS 1460 as we announced; 20 bytes of IPv4 and 20 of TCP (no timestamps: we offered none).
        expect(i!.gso).toEqual({ type: 'tcpv4', size: 1460, hdrLen: 40 });
        expect(i!.csum).toEqual({ kind: 'partial', start: 20, offset: 16 });
      }
      // A partial checksum completed the way the device would gives what a full computation
      // over the pseudo-header gives: the kernel left the pseudo-header sum in the field.
      for (const p of got.samples) {
        const info = got.infos[got.chunks.findIndex((c) => c.length === p.length - 40)];
        if (info?.csum?.kind !== 'partial') continue;
        const done = p.slice();
        const c = completePartial(done, 20);
        done[36] = c >> 8;
        done[37] = c & 0xff;
        expect(tcpChecksumOk(done)).toBe(true);
      }
    });

    it('our super-segment is cut by the kernel: forwarded out of the plain device as MSS-sized segments with good checksums', async () => {
      const MSS = 1000;
      const N = 20_000;
      const segs: Uint8Array[] = [];
      plain.onPacket((p) => {
        if (parseTcp(p)?.dport === 5002) segs.push(p);
      });
      const payload = pattern(N);
      const seq = 0x10000;
      const sup = ipTcp({
        src: v4('198.18.0.2'),
        dst: v4('198.18.1.2'),
        sport: 40000,
        dport: 5002,
        seq,
        ack: 1,
        flags: ACK | PSH,
        payload,
        partial: true,
      });
      expect(sup.length).toBeGreaterThan(off.mtu);
      off.send(sup, {
        csum: { kind: 'partial', start: 20, offset: 16 },
        gso: { type: 'tcpv4', size: MSS, hdrLen: 40 },
      });
      expect(off.counters.get('tx.gso')).toBe(1);
      for (let i = 0; i < 100 && segs.length < N / MSS; i++) await new Promise((r) => setTimeout(r, 20));
      expect(segs).toHaveLength(N / MSS);
      let next = seq;
      for (const p of segs) {
        expect(p.length).toBeLessThanOrEqual(20 + 20 + MSS);
        expect(p[8]).toBe(63); // forwarded: TTL 64 - 1
        expect(internetChecksum(p.subarray(0, 20))).toBe(0);
        expect(tcpChecksumOk(p)).toBe(true);
        const t = parseTcp(p)!;
        expect(t.seq).toBe(next);
        next += t.payload.length;
      }
      expect(sameBytes(concat(segs.map((p) => parseTcp(p)!.payload)), payload)).toBe(true);
    });

    it('IPv6: our TCPv6 super-segment is cut by the kernel into MSS-sized segments with good checksums', async () => {
      const MSS = 1200;
      const N = 12_000;
      const src = v6([0xfd00, 0x5757, 0, 0, 0, 0, 0, 2]);
      const dst = v6([0xfd00, 0x5758, 0, 0, 0, 0, 0, 2]);
      const segs: Uint8Array[] = [];
      plain.onPacket((p) => {
        if (p[0]! >> 4 === 6 && p[6] === 6) segs.push(p);
      });
      const payload = pattern(N, 7);
      off.send(ip6TcpPartial(src, dst, 40001, 5004, 0x20000, payload), {
        csum: { kind: 'partial', start: 40, offset: 16 },
        gso: { type: 'tcpv6', size: MSS, hdrLen: 60 },
      });
      for (let i = 0; i < 100 && segs.length < N / MSS; i++) await new Promise((r) => setTimeout(r, 20));
      expect(segs).toHaveLength(N / MSS);
      let next = 0x20000;
      const got: Uint8Array[] = [];
      for (const p of segs) {
        expect(p.length).toBe(40 + 20 + MSS);
        expect(p[7]).toBe(63); // forwarded: hop limit 64 - 1
        const seg = p.subarray(40);
        expect(
          finishChecksum(sum16(seg, pseudoSum6(p.subarray(8, 24), p.subarray(24, 40), seg.length))),
        ).toBe(0);
        const dv = new DataView(p.buffer, p.byteOffset);
        expect(dv.getUint32(44)).toBe(next);
        next += seg.length - 20;
        got.push(seg.subarray(20));
      }
      expect(sameBytes(concat(got), payload)).toBe(true);
    });

    it('offloads off: the same kernel sender over the plain device gives MTU-sized packets with full checksums', async () => {
      const BYTES = 256 << 10;
      const got = tcpReceiver(plain, '198.18.1.2', 5003);
      const out = await ns!.exec('/usr/bin/python3', ['-c', SENDER, '198.18.1.2', '5003', String(BYTES)]);
      expect(out).toContain('done');
      expect(sameBytes(concat(got.chunks), pattern(BYTES))).toBe(true);
      expect(got.infos.every((i) => i === undefined)).toBe(true);
      expect(Math.max(...got.sizes)).toBeLessThanOrEqual(plain.mtu);
      for (const p of got.samples) expect(tcpChecksumOk(p)).toBe(true);
    });

    it('a plain device refuses PacketInfo it cannot carry, and neither device sends oversize packets without gso', () => {
      const before = plain.counters.get('tx');
      const p = ipTcp({
        src: v4('198.18.1.2'),
        dst: v4('198.18.1.1'),
        sport: 1,
        dport: 9,
        seq: 0,
        ack: 0,
        flags: ACK,
      });
      plain.send(p, { csum: { kind: 'partial', start: 20, offset: 16 } });
      expect(plain.counters.get('drop.no-offload')).toBe(1);
      expect(plain.counters.get('tx')).toBe(before);
      off.send(new Uint8Array(off.mtu + 1));
      expect(off.counters.get('drop.mtu')).toBe(1);
      off.send(new Uint8Array(70_000), { gso: { type: 'tcpv4', size: 1000, hdrLen: 40 } });
      expect(off.counters.get('drop.mtu')).toBe(2);
    });
  },
);

describe('offload requests', () => {
  it('TSO without checksum offload is refused before any device is made', async () => {
    const { TunLink } = await import('../src/tun.ts');
    expect(() => TunLink.open({ name: 'swoffx0', offloads: { checksum: false, tso: true } })).toThrow(
      RangeError,
    );
  });
});
