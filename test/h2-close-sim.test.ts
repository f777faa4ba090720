/**
 * Graceful close of h2 over our TCP on the simulated network (RFC 9113 §6.8): the server's
 * GOAWAY, the client's GOAWAY in reply, both FINs — and no RST of either kind: no
 * RST_STREAM for streams that finished, no TCP RST for the peer's closing GOAWAY (which
 * came when the server had already destroyed its socket after its own FIN).
 */
import { Sim } from '@stepwire/sim';
import { describe, expect, it } from 'vitest';
import { connect, createServer, type Http2Stream } from '../packages/http/src/h2/internal.ts';

describe('h2 graceful close over our TCP', () => {
  it.each([
    ['the server closes', 'server'],
    ['the client closes', 'client'],
  ])('%s: GOAWAYs and FINs only, no RST_STREAM, no TCP RST; both sessions close', async (_n, who) => {
    const sim = new Sim({ seed: 7 });
    const h2Out: string[] = [];
    sim.trace.on((e) => {
      if (e.layer === 'h2' && e.dir === 'out') h2Out.push(`${e.host} ${e.summary}`);
    });
    const server = createServer(
      { clock: sim.clock, trace: sim.trace, hostName: 'B' },
      (stream: Http2Stream) => {
        stream.respond({ ':status': 200 });
        stream.end('ok');
      },
    );
    const tcpServer = sim.b.tcp.createServer();
    tcpServer.on('connection', (s) => server.handle(s));
    tcpServer.listen(80);
    try {
      const session = connect('http://b.test', {
        clock: sim.clock,
        trace: sim.trace,
        hostName: 'A',
        createConnection: () => sim.a.tcp.connect({ host: sim.b.ipv4, port: 80 }),
      });
      const errors: unknown[] = [];
      session.on('error', (e) => errors.push(e));
      server.on('sessionError', (e) => errors.push(e));
      const get = (path: string) =>
        new Promise<string>((resolve, reject) => {
          const r = session.request({ ':path': path });
          let b = '';
          r.on('data', (d: Buffer) => {
            b += d;
          });
          r.on('end', () => resolve(b));
          r.on('error', reject);
        });
      expect(await sim.run(Promise.all(['/a', '/b', '/c'].map(get)))).toEqual(['ok', 'ok', 'ok']);
      const [serverSession] = [...server.sessions];
      expect(serverSession).toBeDefined();
      const closed = Promise.all(
        [session, serverSession].map((s) => new Promise<void>((r) => s?.once('close', () => r()))),
      );
      if (who === 'server') server.close();
      else session.close();
      await sim.run(closed);
      expect(h2Out.filter((l) => l.includes('RST_STREAM'))).toEqual([]);
      expect(h2Out.filter((l) => l.includes('GOAWAY')).length).toBe(2);
      const tcpRst = sim.lines.filter((l) => l.kind === 'packet' && / RST /.test(l.summary));
      expect(tcpRst.map((l) => (l.kind === 'packet' ? l.summary : ''))).toEqual([]);
      const fins = sim.lines.filter((l) => l.kind === 'packet' && /FIN/.test(l.summary));
      expect(fins.length).toBe(2);
      expect(errors).toEqual([]);
      expect(session.timers.armed).toBe(0);
    } finally {
      tcpServer.close();
      sim.close();
    }
  });
});
