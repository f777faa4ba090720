import { createHash } from 'node:crypto';
import { Sim } from '@stepwire/sim';
import { Tcp, type TcpSocket } from '@stepwire/tcp';
import { describe, expect, it } from 'vitest';

/**
 * Cross-package: TCP sockets on two Hosts over a MemoryLink that loses 5% of packets and
 * reorders 5% (each direction), every layer real: the link impairments, IPv4, the segment
 * codec with checksums, the connection machine's loss recovery, the socket streams.
 */

function body(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

async function drive<T>(sim: Sim, p: Promise<T>, limitMs: number): Promise<T> {
  let settled = false;
  const watched = p.finally(() => {
    settled = true;
  });
  watched.catch(() => {});
  const deadline = sim.clock.now() + limitMs;
  while (!settled) {
    await new Promise((r) => setImmediate(r));
    if (settled) break;
    const at = sim.clock.nextTimerAt();
    if (at === undefined || at > deadline) throw new Error(`stalled at t=${sim.clock.now()}`);
    sim.clock.advanceTo(at);
  }
  return watched;
}

describe('TCP bulk transfer over an impaired simulated link', () => {
  it('10 MB with 5% loss and 5% reordering arrives intact (sha256)', async () => {
    const sim = new Sim({ seed: 42, impairments: { loss: 0.05, reorder: 0.05, reorderDelay: 3, delay: 2 } });
    const a = new Tcp(sim.a.host);
    const b = new Tcp(sim.b.host);
    const data = body(10 * 1024 * 1024, 7);
    const received = new Promise<{ hash: string; n: number }>((resolve, reject) => {
      b.createServer((s: TcpSocket) => {
        const h = createHash('sha256');
        let n = 0;
        s.on('data', (d: Buffer) => {
          h.update(d);
          n += d.length;
        });
        s.on('end', () => resolve({ hash: h.digest('hex'), n }));
        s.on('error', reject);
      }).listen(5001);
    });
    const c = a.connect({ host: sim.b.ipv4, port: 5001 });
    c.on('error', () => {});
    c.end(data);
    const got = await drive(sim, received, 3_600_000);
    expect(got.n).toBe(data.length);
    expect(got.hash).toBe(createHash('sha256').update(data).digest('hex'));
    const st = c.connection!.stats;
    // The impairments were real: segments were lost and recovered.
    expect(st.retransmits).toBeGreaterThan(100);
    expect(sim.links[0].counters.get('drop.loss')).toBeGreaterThan(100);
    expect(st.fastRetransmits).toBeGreaterThan(10);
  });
});
