import { createHash } from 'node:crypto';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { createHttpServer } from '@stepwire/http';
import { Sim } from '@stepwire/sim';
import { connect, createServer as createTlsServer } from '@stepwire/tls';
import { describe, expect, it } from 'vitest';
import { ephemeralServeIdentity } from '../packages/cli/src/services/https.ts';

// Our HTTP/1.1 server on our TCP (and our TLS) between two simulated hosts: every byte from
// the link up is ours, and the server's timers run on the simulation's virtual clock.

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function exchange(
  connection: () => Duplex,
  opts: { path: string; method?: string; body?: Buffer; agent?: http.Agent },
): Promise<{ status: number; body: Buffer; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: 'stepwire.test',
        path: opts.path,
        method: opts.method ?? 'GET',
        ...(opts.agent ? { agent: opts.agent } : { createConnection: connection as never }),
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts), headers: res.headers }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

function collect(s: Duplex): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('end', () => resolve(Buffer.concat(parts).toString('latin1')));
    s.on('error', reject);
  });
}

/** Resolves once `cond` holds, checked between event-loop turns (for Sim.run to drive). */
function waitFor(cond: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const check = () => (cond() ? resolve() : setImmediate(check));
    check();
  });
}

const app = (
  req: http.IncomingMessage | import('@stepwire/http').IncomingMessage,
  res: import('@stepwire/http').ServerResponse,
) => {
  if (req.url === '/sha') {
    const h = createHash('sha256');
    req.on('data', (d: Buffer) => h.update(d));
    req.on('end', () => res.end(h.digest('hex')));
  } else res.end(`hello ${req.url}`);
};

describe('our HTTP/1.1 server on our TCP over the simulated network', () => {
  it.each([
    ['a clean wire', {}],
    ['a wire losing 2% and reordering 2%', { loss: 0.02, reorder: 0.02 }],
  ])('1 MB POST hashed, pipelined GETs answered in order, on %s', async (_n, impairments) => {
    const sim = new Sim({ seed: 31, impairments });
    const server = createHttpServer({ clock: sim.clock }, app);
    const tcpServer = sim.b.tcp.createServer({ allowHalfOpen: true });
    tcpServer.listen(80);
    server.listen(tcpServer);
    try {
      const body = Buffer.alloc(1 << 20, 0x5a);
      const r = await sim.run(
        exchange(() => sim.a.tcp.connect({ host: sim.b.ipv4, port: 80 }), {
          path: '/sha',
          method: 'POST',
          body,
        }),
      );
      expect(r.body.toString()).toBe(sha(body));
      const s = sim.a.tcp.connect({ host: sim.b.ipv4, port: 80 });
      const all = collect(s);
      s.write(
        'GET /1 HTTP/1.1\r\nHost: b\r\n\r\nGET /2 HTTP/1.1\r\nHost: b\r\n\r\nGET /3 HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n',
      );
      const out = await sim.run(all);
      const bodies = out
        .split('HTTP/1.1 200 OK')
        .slice(1)
        .map((r) => r.split('\r\n\r\n')[1]);
      expect(bodies).toEqual(['hello /1', 'hello /2', 'hello /3']);
      expect(server.stats().requests).toBe(4);
    } finally {
      server.closeAllConnections();
      tcpServer.close();
      sim.close();
    }
  });

  it('a client whose head never ends is cut at the headers timeout in virtual time, counted, 408', async () => {
    const sim = new Sim({ seed: 32 });
    const server = createHttpServer({ clock: sim.clock, timeouts: { headersTimeout: 10_000 } }, app);
    const tcpServer = sim.b.tcp.createServer({ allowHalfOpen: true });
    tcpServer.listen(80);
    server.listen(tcpServer);
    try {
      const s = sim.a.tcp.connect({ host: sim.b.ipv4, port: 80 });
      const all = collect(s);
      // a head that never ends
      s.write('GET / HTTP/1.1\r\nHost: b\r\n');
      const start = sim.clock.now();
      const out = await sim.run(all);

      expect(out).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
      expect(sim.clock.now() - start).toBeGreaterThanOrEqual(10_000);
      expect(server.stats().timeouts.headers).toBe(1);
      // once the client goes away nothing stays armed
      s.end();
      await sim.run(waitFor(() => server.stats().connections === 0));
      expect(server.stats().armedTimers).toBe(0);
    } finally {
      server.closeAllConnections();
      tcpServer.close();
      sim.close();
    }
  });

  it('listens on our TLS server: node:http over our TLS over our TCP', async () => {
    const sim = new Sim({ seed: 33 });
    const identity = ephemeralServeIdentity();
    const server = createHttpServer({ clock: sim.clock }, app);
    const secure = createTlsServer({
      cert: identity.certPem,
      key: identity.keyPem,
      ALPNProtocols: ['http/1.1'],
      now: () => sim.clock.now(),
    });
    const tcpServer = sim.b.tcp.createServer({});
    tcpServer.listen(443);
    secure.listen(tcpServer);
    server.listen(secure);
    try {
      const r = await sim.run(
        exchange(
          () =>
            connect({
              socket: sim.a.tcp.connect({ host: sim.b.ipv4, port: 443 }),
              servername: sim.b.ipv4,
              ca: identity.caPem,
              ALPNProtocols: ['http/1.1'],
            }) as unknown as Duplex,
          { path: '/over-tls' },
        ),
      );
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe('hello /over-tls');
      expect(server.stats().accepted).toBe(1);
    } finally {
      server.closeAllConnections();
      secure.close(true);
      tcpServer.close();
      sim.close();
    }
  });
});
