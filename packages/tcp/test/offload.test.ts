import { Host } from '@stepwire/ip';
import { MemoryLink, type MemoryLinkOptions } from '@stepwire/link';
import { VirtualClock } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { Tcp } from '../src/tcp.ts';

/**
 * TCP over a MemoryLink that offers offloads, as a veth pair with checksum offload and
 * TSO: partial checksums cross whole and are taken as such, super-segments up to tsoMax
 * arrive as one GRO packet, and the bytes come out as they went in. The stack runs its
 * full send and receive paths (codecs, IP, the link) on a virtual clock.
 */
function pattern(off: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = ((off + i) * 2654435761) >>> 24;
  return out;
}

/** Index of the first byte that differs from the pattern (or the length, if short/long); -1 when all match. */
function firstDifference(got: Uint8Array, total: number): number {
  if (got.length !== total) return Math.min(got.length, total);
  const want = pattern(0, total);
  for (let i = 0; i < total; i++) if (got[i] !== want[i]) return i;
  return -1;
}

function transfer(
  offloads: MemoryLinkOptions['offloads'],
  total: number,
  v6 = false,
  impairments?: MemoryLinkOptions['impairments'],
) {
  const clock = new VirtualClock();
  const [la, lb] = MemoryLink.pair({
    clock,
    mtu: 1500,
    name: 'off',
    seed: 7,
    ...(offloads ? { offloads } : {}),
    ...(impairments ? { impairments } : {}),
  });
  const ha = new Host({ name: 'A', clock });
  const hb = new Host({ name: 'B', clock });
  if (v6) {
    ha.addInterface({ link: la, ipv6: 'fd00::1/64' });
    hb.addInterface({ link: lb, ipv6: 'fd00::2/64' });
  } else {
    ha.addInterface({ link: la, ipv4: '198.18.0.1/24' });
    hb.addInterface({ link: lb, ipv4: '198.18.0.2/24' });
  }
  const a = new Tcp(ha);
  const b = new Tcp(hb);
  const got: Uint8Array[] = [];
  let ended = false;
  b.createServer((s) => {
    s.on('data', (d: Buffer) => got.push(new Uint8Array(d)));
    s.on('end', () => {
      ended = true;
      s.end();
    });
  }).listen(5001, v6 ? 'fd00::2' : '198.18.0.2');
  const c = a.connect({ host: v6 ? 'fd00::2' : '198.18.0.2', port: 5001 });
  const CHUNK = 64 * 1024;
  let sent = 0;
  const more = () => {
    while (sent < total) {
      const n = Math.min(CHUNK, total - sent);
      const ok = c.write(pattern(sent, n));
      sent += n;
      if (!ok) {
        c.once('drain', more);
        return;
      }
    }
    c.end();
  };
  more();
  // Stream callbacks run on process.nextTick; pump the clock between them.
  return (async () => {
    for (let i = 0; i < 200_000 && !ended; i++) {
      const at = clock.nextTimerAt();
      if (at !== undefined) clock.advanceTo(at);
      await new Promise<void>((r) => setImmediate(r));
    }
    const all = new Uint8Array(got.reduce((n, g) => n + g.length, 0));
    let at = 0;
    for (const g of got) {
      all.set(g, at);
      at += g.length;
    }
    return { ended, all, la, lb, ha, hb };
  })();
}

const TOTAL = 3 * 1024 * 1024;

describe('TCP with link offloads (MemoryLink as veth with checksum offload and TSO)', () => {
  it('checksum offload: partial checksums cross, are counted and not verified, bytes intact', async () => {
    const r = await transfer({ checksum: true }, TOTAL);
    expect(r.ended).toBe(true);
    expect(firstDifference(r.all, TOTAL)).toBe(-1);
    expect(r.la.counters.get('tx.csum-partial')).toBeGreaterThan(TOTAL / 1460);
    expect(r.hb.counters.get('tcp.rx.csum-partial')).toBeGreaterThan(TOTAL / 1460);
    // No super-segments without TSO, and nothing over the MTU.
    expect(r.la.counters.get('tx.gso')).toBe(0);
    expect(r.hb.counters.get('tcp.drop.checksum')).toBe(0);
  });

  for (const v6 of [false, true]) {
    it(`TSO over IPv${v6 ? 6 : 4}: super-segments up to tsoMax arrive whole (GRO) and the bytes are intact`, async () => {
      const r = await transfer({ checksum: true, tsoMax: 65535 }, TOTAL, v6);
      expect(r.ended).toBe(true);
      expect(firstDifference(r.all, TOTAL)).toBe(-1);
      const supers = r.la.counters.get('tx.gso');
      expect(supers).toBeGreaterThan(0);
      expect(r.lb.counters.get('rx.gro')).toBe(supers);
      expect(r.ha.counters.get('tcp.tx.tso')).toBe(supers);
      expect(r.hb.counters.get('ip.rx.gro')).toBe(supers);
      // Far fewer data packets than MSS-sized segments would take.
      expect(r.la.counters.get('tx')).toBeLessThan(TOTAL / 1460 / 2);
      expect(r.hb.counters.get('tcp.drop.checksum')).toBe(0);
    });
  }

  it('TSO over a lossy, reordering link: lost super-segments are recovered and the bytes are intact', async () => {
    const r = await transfer({ checksum: true, tsoMax: 65535 }, 2 * 1024 * 1024, false, {
      loss: 0.01,
      reorder: 0.02,
      delay: 5,
    });
    expect(r.ended).toBe(true);
    expect(firstDifference(r.all, 2 * 1024 * 1024)).toBe(-1);
    expect(r.la.counters.get('tx.gso')).toBeGreaterThan(0);
    expect(r.la.counters.get('drop.loss')).toBeGreaterThan(0);
  });

  it('without offloads nothing is partial or super, and no packet exceeds the MTU', async () => {
    const r = await transfer(undefined, 512 * 1024);
    expect(firstDifference(r.all, 512 * 1024)).toBe(-1);
    expect(r.la.counters.get('tx.gso')).toBe(0);
    expect(r.la.counters.get('tx.csum-partial')).toBe(0);
    expect(r.la.counters.get('drop.mtu')).toBe(0);
    expect(r.ha.counters.get('ip.tx.csum-partial')).toBe(0);
  });
});
