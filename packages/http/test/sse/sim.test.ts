import { Sim } from '@stepwire/sim';
import { describe, expect, it } from 'vitest';
import { Agent } from '../../src/client/agent.ts';
import { fetch } from '../../src/client/fetch.ts';
import { createHttpServer } from '../../src/h1/server.ts';
import { EventSource, type FetchLike } from '../../src/sse/event-source.ts';
import { lastEventIdOf, SseWriter } from '../../src/sse/writer.ts';

/** Drive the virtual clock until `done()` (every due timer, then a turn of the event loop). */
async function runUntil(sim: Sim, done: () => boolean, limitMs = 120_000): Promise<void> {
  const deadline = sim.clock.now() + limitMs;
  await new Promise((r) => setImmediate(r));
  while (!done()) {
    const at = sim.clock.nextTimerAt();
    if (at === undefined || at > deadline) throw new Error(`stalled at t=${sim.clock.now()}`);
    sim.clock.advanceTo(at);
    await new Promise((r) => setImmediate(r));
  }
}

describe('SSE between two simulated hosts, in virtual time', () => {
  it('a stream that goes silent is dropped after heartbeatTimeout and resumed by Last-Event-ID', async () => {
    const sim = new Sim({ seed: 5 });
    const connections: { at: number; lastEventId: string }[] = [];
    // Host B: an event a second; the first connection goes silent after event 3 (a stuck
    // upstream: the TCP connection stays up, nothing more comes).
    const server = createHttpServer(
      { clock: sim.clock, timeouts: { keepAliveTimeout: 0, requestTimeout: 0 } },
      (req, res) => {
        const from = Number(lastEventIdOf(req) || '0');
        connections.push({ at: sim.clock.now(), lastEventId: lastEventIdOf(req) });
        const first = connections.length === 1;
        const sse = new SseWriter(res, { clock: sim.clock, heartbeat: first ? 0 : 2_000 });
        let n = from;
        const tick = () => {
          n++;
          sse.send({ id: String(n), data: `event ${n}` });
          if (first && n === 3) return;
          if (n < from + 5) sim.clock.setTimer(sim.clock.now() + 1000, tick);
        };
        sim.clock.setTimer(sim.clock.now() + 1000, tick);
      },
    );
    const tcpServer = sim.b.tcp.createServer();
    server.listen(tcpServer);
    tcpServer.listen(80, sim.b.ipv4);
    // Host A: our EventSource over our fetch over our TCP.
    const agent = new Agent({
      clock: sim.clock,
      connect: (o) => sim.a.tcp.connect({ host: o.hostname, port: o.port }),
    });
    const viaSim: FetchLike = (url, init) => fetch(url, { ...init, agent });
    const es = new EventSource(`http://${sim.b.ipv4}/feed`, {
      fetch: viaSim,
      clock: sim.clock,
      heartbeatTimeout: 5_000,
      reconnectionTime: 500,
    });
    const got: { t: number; id: string; data: string }[] = [];
    es.onmessage = (e) => got.push({ t: sim.clock.now(), id: e.lastEventId, data: e.data as string });
    let errors = 0;
    es.onerror = () => errors++;
    await runUntil(sim, () => got.length >= 8);
    es.close();
    expect(got.map((g) => g.data)).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map((i) => `event ${i}`));
    expect(connections.map((c) => c.lastEventId)).toEqual(['', '3']);
    expect(errors).toBe(1);
    // Event 3 at ~3 s; silence for 5 s drops the stream, the reconnect comes 0.5 s later,
    // and event 4 one second after that: all on the virtual clock.
    const third = got[2]?.t ?? 0;
    const reconnect = connections[1]?.at ?? 0;
    expect(reconnect - third).toBeGreaterThanOrEqual(5_500);
    expect(reconnect - third).toBeLessThan(5_600);
    expect(es.stats.timersArmed).toBe(0);
    agent.destroy();
    server.close();
    tcpServer.close();
  });
});
