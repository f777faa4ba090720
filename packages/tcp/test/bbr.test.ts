/**
 * The model-based controller (congestion/bbr.ts, after BBR v1 without pacing) against
 * NewReno on a simulated path: a 20 Mbit/s bottleneck with 10 ms each way, with and without
 * 2% random loss. Loss is not congestion to BBR, so it keeps the bottleneck busy where
 * NewReno's halving per loss (RFC 5681) starves it; on a clean path both fill it.
 */
import { Host } from '@stepwire/ip';
import { type Impairments, impair, MemoryLink } from '@stepwire/link';
import { VirtualClock } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { Bbr } from '../src/congestion/bbr.ts';
import type { TcpConnection } from '../src/connection.ts';
import { Tcp } from '../src/tcp.ts';

const RATE = 20_000_000;

async function transfer(congestion: 'bbr' | 'newreno', path: Impairments, size: number, seed = 5) {
  const clock = new VirtualClock();
  const [la, lb] = MemoryLink.pair({ clock });
  const ha = new Host({ name: 'A', clock });
  ha.addInterface({
    link: impair(la, { rateBps: RATE, delay: 10, queueLimit: 200, ...path, seed }, clock),
    ipv4: '198.18.0.1/24',
  });
  const hb = new Host({ name: 'B', clock });
  hb.addInterface({ link: impair(lb, { delay: 10, seed: seed + 1 }, clock), ipv4: '198.18.0.2/24' });
  const a = new Tcp(ha, { connection: { congestion, minRto: 200 } });
  const b = new Tcp(hb, { connection: { receiveBuffer: 4 << 20 } });
  let got = 0;
  let doneAt = 0;
  const srv = b.createServer((sock) => {
    sock.on('data', (d: Buffer) => {
      got += d.length;
      if (got === size) doneAt = clock.now();
    });
  });
  srv.listen(80);
  const sock = a.connect({ host: '198.18.0.2', port: 80 });
  let conn: TcpConnection | undefined;
  let start = 0;
  sock.on('connect', () => {
    conn = sock.connection;
    start = clock.now();
    sock.end(new Uint8Array(size));
  });
  const turn = () => new Promise((r) => setImmediate(r));
  await turn();
  for (let i = 0; i < 500_000 && got < size; i++) {
    const at = clock.nextTimerAt();
    if (at === undefined) break;
    clock.advanceTo(at);
    await turn();
  }
  sock.destroy();
  srv.close();
  if (!conn) throw new Error('never connected');
  return { got, bps: (size * 8 * 1000) / (doneAt - start), stats: conn.stats };
}

describe('BBR-style congestion control', () => {
  it('with 2% random loss it keeps the bottleneck far busier than NewReno', async () => {
    const size = 2_000_000;
    const lossy = { loss: 0.02 };
    const bbr = await transfer('bbr', lossy, size);
    const reno = await transfer('newreno', lossy, size);
    expect(bbr.got).toBe(size);
    expect(reno.got).toBe(size);
    console.log(
      `bbr ${(bbr.bps / 1e6).toFixed(1)} Mbit/s vs newreno ${(reno.bps / 1e6).toFixed(1)} Mbit/s on a 20 Mbit/s, 20 ms RTT path with 2% loss`,
    );
    expect(bbr.bps).toBeGreaterThan(0.6 * RATE);
    expect(bbr.bps).toBeGreaterThan(2 * reno.bps);
  });

  it('on a clean path it fills the bottleneck without overrunning its queue', async () => {
    const size = 3_000_000;
    const r = await transfer('bbr', {}, size);
    expect(r.got).toBe(size);
    expect(r.bps).toBeGreaterThan(0.85 * RATE);
    // Startup overshoots once (as BBR's does); the model then holds about two BDPs
    // (2 x 20 Mbit/s x 20 ms = 100 kB), well inside the 200-packet queue.
    expect(r.stats.timeouts).toBe(0);
    expect(r.stats.cwnd).toBeLessThan(250_000);
  });

  it('the model: cwnd follows 2 x bandwidth x min RTT once startup ends; a loss keeps the window', () => {
    const mss = 1000;
    const c = new Bbr(mss);
    // 1 MB/s delivered (1000 bytes per ms) over a 10 ms path, ACKs every 2 ms.
    let now = 0;
    for (let i = 0; i < 400; i++) {
      now += 2;
      c.onDelivered(2000, now, 10, 10);
      c.onAck(2000, now, 10);
    }
    expect(c.bandwidth).toBeCloseTo(1000, -1);
    // 2 x 1000 B/ms x 10 ms
    expect(c.cwnd).toBeCloseTo(20_000, -3);
    c.onCongestionEvent(now, 20_000);
    expect(c.ssthresh).toBeGreaterThanOrEqual(20_000);
    c.onRecoveryExit(now, 20_000);
    expect(c.cwnd).toBeGreaterThanOrEqual(19_000);
    c.onRto(now, 20_000);
    expect(c.cwnd).toBe(mss);
  });
});
