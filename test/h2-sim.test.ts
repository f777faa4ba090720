/**
 * HTTP/2 over our whole stack on the simulated network: our h2 client and server sessions
 * on our TCP between two simulated hosts, deadlines on the simulation's virtual clock.
 * Deterministic (seeded), including on a lossy, reordering wire.
 */
import { createHash } from 'node:crypto';
import { Sim } from '@stepwire/sim';
import { describe, expect, it } from 'vitest';
import { connect, createServer, type Http2Stream } from '../packages/http/src/h2/internal.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('h2 on our TCP over the simulated network', () => {
  it.each([
    ['a clean wire', {}],
    ['a wire losing 1% and reordering 1%', { loss: 0.01, reorder: 0.01 }],
  ])('20 multiplexed POSTs of 64 KiB each hashed by the server, on %s', async (_n, impairments) => {
    const sim = new Sim({ seed: 41, impairments });
    const server = createServer({ clock: sim.clock }, (stream: Http2Stream) => {
      const h = createHash('sha256');
      stream.on('data', (d: Buffer) => h.update(d));
      stream.on('end', () => {
        stream.respond({ ':status': 200 });
        stream.end(h.digest('hex'));
      });
    });
    const tcpServer = sim.b.tcp.createServer({ allowHalfOpen: true });
    tcpServer.on('connection', (s) => server.handle(s));
    tcpServer.listen(80);
    try {
      const session = connect('http://b.test', {
        clock: sim.clock,
        createConnection: () => sim.a.tcp.connect({ host: sim.b.ipv4, port: 80 }),
      });
      const bodies = Array.from({ length: 20 }, (_, i) => Buffer.alloc(64 * 1024, i + 1));
      const answers = Promise.all(
        bodies.map(
          (body) =>
            new Promise<string>((resolve, reject) => {
              const req = session.request({ ':method': 'POST', ':path': '/sha' });
              let out = '';
              req.on('data', (c: Buffer) => {
                out += c;
              });
              req.on('end', () => resolve(out));
              req.on('error', reject);
              req.end(body);
            }),
        ),
      );
      const got = await sim.run(answers);
      expect(got).toEqual(bodies.map(sha));
      // One TCP connection carried them all.
      expect(server.sessions.size).toBe(1);
      session.close();
      await sim.run(new Promise<void>((r) => session.once('close', () => r())));
      expect(session.timers.armed).toBe(0);
    } finally {
      tcpServer.close();
      sim.close();
    }
  });
});
