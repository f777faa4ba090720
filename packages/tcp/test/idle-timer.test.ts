import { describe, expect, it } from 'vitest';
import type { TcpSocket } from '../src/index.ts';
import { once, tcpSim } from './net.ts';

// Issue 15: setTimeout(ms) armed a second idle timer without cancelling the first, and each
// orphaned timer re-armed itself while the connection lived. node:http calls setTimeout on
// every keep-alive request, so a busy server grew one timer chain per request.
describe('TcpSocket idle timer (net.Socket.setTimeout semantics)', () => {
  it('owns at most one armed timer however often setTimeout is called amid traffic', async () => {
    const { a, b, run, sim } = tcpSim();
    b.createServer((s: TcpSocket) => s.pipe(s)).listen(7);
    const c = a.connect({ host: sim.b.ipv4, port: 7 });
    await run(once(c, 'connect'));
    c.resume();
    await run(new Promise((r) => setImmediate(r)));
    sim.clock.advance(1_000);
    const idle = a.stats.timersArmed;
    const pendingIdle = sim.clock.pending;
    for (let i = 0; i < 2_000; i++) {
      c.setTimeout(5_000);
      c.write('x');
      if (i % 50 === 0) await run(new Promise((r) => setImmediate(r)));
    }
    await run(new Promise((r) => setImmediate(r)));
    sim.clock.advance(1_000);
    // The connection's own timer (delayed ACK / RTO) may or may not be armed; the idle timer is one more.
    expect(a.stats.timersArmed).toBeLessThanOrEqual(idle + 1);
    expect(a.stats.timersArmed).toBeGreaterThanOrEqual(1);
    // The same seen from the clock itself, whoever armed the timers.
    expect(sim.clock.pending).toBeLessThanOrEqual(pendingIdle + 1);
    c.setTimeout(0);
    expect(a.stats.timersArmed).toBeLessThanOrEqual(idle);
    c.destroy();
  });

  it("emits 'timeout' once per idle period, again only after new activity", async () => {
    const { a, b, run, sim } = tcpSim();
    b.createServer((s: TcpSocket) => s.resume()).listen(9);
    const c = a.connect({ host: sim.b.ipv4, port: 9 });
    await run(once(c, 'connect'));
    const fired: number[] = [];
    c.on('timeout', () => fired.push(sim.clock.now()));
    const t0 = sim.clock.now();
    for (let i = 0; i < 100; i++) c.setTimeout(3_000);
    sim.clock.advance(20_000);
    expect(fired).toEqual([t0 + 3_000]);
    c.write('wake');
    await run(new Promise((r) => setImmediate(r)));
    const t1 = sim.clock.now();
    sim.clock.advance(20_000);
    expect(fired).toEqual([t0 + 3_000, t1 + 3_000]);
    c.destroy();
    // Once the connection has finished closing (TIME-WAIT included), nothing is left armed.
    await run(new Promise((r) => setImmediate(r)));
    sim.clock.advance(600_000);
    expect(a.stats.connections).toBe(0);
    expect(a.stats.timersArmed).toBe(0);
    expect(b.stats.timersArmed).toBe(0);
  });
});
