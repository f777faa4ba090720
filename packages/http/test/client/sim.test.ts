import { createHash } from 'node:crypto';
import { Sim } from '@stepwire/sim';
import { TraceBus, type TraceEvent } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { Agent } from '../../src/client/agent.ts';
import { fetch } from '../../src/client/fetch.ts';
import { createHttpServer } from '../../src/h1/server.ts';
import { WebSocketServer } from '../../src/ws/server.ts';
import { connectWebSocket, type WebSocket } from '../../src/ws/websocket.ts';

/** Await a promise while driving the simulation's virtual clock (every due timer, then a turn of the event loop). */
async function drive<T>(sim: Sim, p: Promise<T>, limitMs = 120_000): Promise<T> {
  let settled = false;
  const watched = p.finally(() => {
    settled = true;
  });
  watched.catch(() => {});
  const deadline = sim.clock.now() + limitMs;
  await new Promise((r) => setImmediate(r));
  while (!settled) {
    const at = sim.clock.nextTimerAt();
    if (at === undefined || at > deadline) throw new Error(`simulation stalled at t=${sim.clock.now()}`);
    sim.clock.advanceTo(at);
    await new Promise((r) => setImmediate(r));
  }
  return watched;
}

/** Host A runs our client, host B our HTTP/1.1 server, both on our TCP over the simulated wire. */
function setup(seed: number, loss = 0) {
  const sim = new Sim({ seed, ...(loss ? { impairments: { loss } } : {}) });
  const server = createHttpServer(
    { clock: sim.clock, timeouts: { keepAliveTimeout: 60_000 } },
    (req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        const body = Buffer.concat(parts);
        res.setHeader('x-sha256', createHash('sha256').update(body).digest('hex'));
        res.end(req.url === '/big' ? Buffer.alloc(256 * 1024, 1) : `${req.method} ${req.url} ${body.length}`);
      });
    },
  );
  const tcpServer = sim.b.tcp.createServer();
  server.listen(tcpServer);
  tcpServer.listen(80, sim.b.ipv4);
  const bus = new TraceBus();
  const trace: TraceEvent[] = [];
  bus.on((e) => trace.push(e));
  const agent = new Agent({
    clock: sim.clock,
    maxSockets: 2,
    idleTimeout: 10_000,
    trace: bus,
    connect: (o) => sim.a.tcp.connect({ host: o.hostname, port: o.port }),
  });
  return { sim, server, tcpServer, agent, trace };
}

describe('our client and our server over our TCP on the simulated network', () => {
  it('fetch: keep-alive reuse, a chunked upload, pooled concurrency, idle close in virtual time', async () => {
    const { sim, agent, server, tcpServer, trace } = setup(7);
    const url = `http://${sim.b.ipv4}/`;
    const first = await drive(
      sim,
      fetch(`${url}hello`, { agent }).then((r) => r.text()),
    );
    expect(first).toBe('GET /hello 0');
    const upload = new Uint8Array(100_000).map((_, i) => i & 0xff);
    const stream = new ReadableStream({
      start(c) {
        for (let o = 0; o < upload.length; o += 10_000) c.enqueue(upload.subarray(o, o + 10_000));
        c.close();
      },
    });
    const up = await drive(
      sim,
      fetch(`${url}upload`, { method: 'POST', body: stream, duplex: 'half', agent }).then(async (r) => ({
        sha: r.headers.get('x-sha256'),
        text: await r.text(),
      })),
    );
    expect(up.text).toBe('POST /upload 100000');
    expect(up.sha).toBe(createHash('sha256').update(upload).digest('hex'));
    const many = await drive(
      sim,
      Promise.all(Array.from({ length: 6 }, (_, i) => fetch(`${url}n${i}`, { agent }).then((r) => r.text()))),
    );
    expect(many).toEqual(Array.from({ length: 6 }, (_, i) => `GET /n${i} 0`));
    const key = `http://${sim.b.ipv4}:80`;
    expect(agent.stats().origins[key]).toMatchObject({ created: 2, queuedTotal: 4 });
    expect(trace.some((e) => e.summary.includes('reuse connection'))).toBe(true);
    // Nothing happens for 10 virtual seconds: the idle connections close.
    const idleSince = sim.clock.now();
    await new Promise((r) => setImmediate(r));
    expect(agent.stats().origins[key]).toMatchObject({ idle: 2, active: 0 });
    sim.clock.advanceTo(idleSince + 9_999);
    expect(agent.stats().origins[key]?.idle).toBe(2);
    sim.clock.advanceTo(idleSince + 10_000);
    expect(agent.stats()).toMatchObject({ timersArmed: 0, origins: { [key]: { idle: 0, idleClosed: 2 } } });
    server.close();
    tcpServer.close();
  });

  it('a 256 KiB response through 2% loss arrives intact (same seed, same run)', async () => {
    const { sim, agent, server, tcpServer } = setup(11, 0.02);
    const body = await drive(
      sim,
      fetch(`http://${sim.b.ipv4}/big`, { agent }).then((r) => r.arrayBuffer()),
    );
    expect(Buffer.from(body).equals(Buffer.alloc(256 * 1024, 1))).toBe(true);
    agent.destroy();
    server.close();
    tcpServer.close();
  });

  it('WebSocket: our client to our server through its upgrade event, on our TCP', async () => {
    const { sim, server, tcpServer } = setup(3);
    const wss = new WebSocketServer({ server, perMessageDeflate: true, clock: sim.clock });
    wss.on('connection', (ws: WebSocket) => {
      ws.on('message', (d: Buffer, isBinary: boolean) => ws.send(isBinary ? d : `echo: ${d.toString()}`));
    });
    const ws = connectWebSocket({
      url: `ws://${sim.b.ipv4}/chat`,
      perMessageDeflate: true,
      clock: sim.clock,
      connect: (host, port) => sim.a.tcp.connect({ host, port }),
    });
    const got = await drive(
      sim,
      new Promise<string[]>((resolve, reject) => {
        const out: string[] = [];
        ws.on('error', reject);
        ws.on('open', () => {
          ws.send('hi');
          ws.send('x'.repeat(5000));
        });
        ws.on('message', (d: Buffer) => {
          out.push(d.toString().slice(0, 12));
          if (out.length === 2) {
            ws.close(1000, 'done');
          }
        });
        ws.on('close', (code: number) => {
          out.push(`close ${code}`);
          resolve(out);
        });
      }),
    );
    expect(got).toEqual(['echo: hi', 'echo: xxxxxx', 'close 1000']);
    expect(ws.extensions).toMatch(/^permessage-deflate/);
    server.close();
    tcpServer.close();
  });
});
