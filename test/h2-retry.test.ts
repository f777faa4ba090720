/**
 * RFC 9113 §6.8 and §8.7: requests on streams above a GOAWAY's last stream id were not
 * processed and may be retried. The Agent sends them again on a new session — a GET, and a
 * POST whose body it kept — and the caller sees only the answers. Against our own server
 * shutting down gracefully on the simulated network (the requests cross its GOAWAY on the
 * wire), and against node:http2 announcing a GOAWAY below requests it has received.
 */
import http2 from 'node:http2';
import type net from 'node:net';
import { Sim } from '@stepwire/sim';
import { describe, expect, it } from 'vitest';
import { Agent } from '../packages/http/src/client/agent.ts';
import type { ClientResponse } from '../packages/http/src/client/connection.ts';
import { request } from '../packages/http/src/client/request.ts';
import { createServer, type Http2Stream } from '../packages/http/src/h2/internal.ts';

type Answer = { status: number; body: string };

function send(url: string, agent: Agent, method: 'GET' | 'POST', body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent, http2: 'prior-knowledge' }, (res: ClientResponse) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        b += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Our server's answer: the method, path and body it received, and which session carried it. */
function answer(stream: Http2Stream, headers: Record<string, unknown>, session: number): void {
  let body = '';
  stream.setEncoding('utf8');
  stream.on('data', (d: string) => {
    body += d;
  });
  stream.on('end', () => {
    stream.respond({ ':status': 200 });
    stream.end(`${headers[':method']} ${headers[':path']} ${body} #${session}`);
  });
}

describe('the Agent retries requests above GOAWAY last-stream-id', () => {
  it('our server shuts down gracefully while requests are on the wire: they go again on a new connection, bodies intact', async () => {
    // 10 ms each way: requests sent 5 ms after the first reach the server after its GOAWAY.
    const sim = new Sim({ seed: 3, impairments: { delay: 10 } });
    let sessions = 0;
    const numbers = new WeakMap<object, number>();
    const seen: string[] = [];
    const server = createServer({ clock: sim.clock }, (stream, headers) => {
      const n = numbers.get(stream.session) ?? 0;
      seen.push(`${headers[':path']} #${n}`);
      // The first request starts a graceful shutdown (GOAWAY, last stream id = 1), as a
      // server being drained for a deploy does, and is still answered.
      if (headers[':path'] === '/first') server.close();
      answer(stream, headers, n);
    });
    server.on('session', (s) => numbers.set(s, ++sessions));
    const tcpServer = sim.b.tcp.createServer();
    tcpServer.on('connection', (s) => server.handle(s));
    tcpServer.listen(80);
    const agent = new Agent({
      clock: sim.clock,
      trace: sim.trace,
      traceHost: 'A',
      http2: 'prior-knowledge',
      connect: () => sim.a.tcp.connect({ host: sim.b.ipv4, port: 80 }) as unknown as net.Socket,
    });
    try {
      const url = (p: string) => `http://${sim.b.ipv4}${p}`;
      const first = send(url('/first'), agent, 'GET');
      // The first request leaves as A's TCP connection is established; 5 ms later the next
      // two follow on the same session, and reach B 5 ms after B has sent its GOAWAY.
      const later = new Promise<Answer[]>((resolve, reject) => {
        const off = sim.trace.on((e) => {
          if (e.host !== 'A' || e.layer !== 'tcp' || e.state?.to !== 'ESTABLISHED') return;
          off();
          sim.clock.setTimer(sim.clock.now() + 5, () =>
            Promise.all([
              send(url('/get'), agent, 'GET'),
              send(url('/post'), agent, 'POST', 'the kept body'),
            ]).then(resolve, reject),
          );
        });
      });
      const [a, [b, c]] = await sim.run(Promise.all([first, later]));
      expect(a).toEqual({ status: 200, body: 'GET /first  #1' });
      expect(b).toEqual({ status: 200, body: 'GET /get  #2' });
      expect(c).toEqual({ status: 200, body: 'POST /post the kept body #2' });
      // The second and third requests reached the first session's server only as ignored
      // frames (above its GOAWAY): each was processed once, on the new session.
      expect(seen).toEqual(['/first #1', '/get #2', '/post #2']);
      expect(agent.stats().http2Retried).toBe(2);
      expect(agent.stats().http2SessionsCreated).toBe(2);
    } finally {
      agent.destroy();
      tcpServer.close();
      for (const s of server.sessions) s.destroy();
      sim.close();
    }
  });

  it('node:http2 sends GOAWAY with last-stream-id 1 while streams 3 and 5 are open: both are answered on a second connection', {
    timeout: 10_000,
  }, async () => {
    const r = await againstNode(new Agent({ http2: 'prior-knowledge' }));
    expect(r.answers).toEqual([
      { status: 200, body: 'GET /one  #1' },
      { status: 200, body: 'POST /two abc #2' },
      { status: 200, body: 'GET /three  #2' },
    ]);
    expect(r.served.sort()).toEqual(['/one #1', '/three #2', '/two #2']);
    expect(r.connections).toBe(2);
    expect(r.retried).toBe(2);
  });

  it('a body longer than maxReplayBytes is not kept: that request fails (REFUSED_STREAM), the bodiless one is retried', {
    timeout: 10_000,
  }, async () => {
    const r = await againstNode(new Agent({ http2: 'prior-knowledge', http2Session: { maxReplayBytes: 2 } }));
    expect(r.answers[0]).toEqual({ status: 200, body: 'GET /one  #1' });
    expect(r.answers[1]).toMatchObject({ error: expect.stringMatching(/REFUSED_STREAM|refused/i) });
    expect(r.answers[2]).toEqual({ status: 200, body: 'GET /three  #2' });
    expect(r.served.sort()).toEqual(['/one #1', '/three #2']);
    expect(r.retried).toBe(1);
  });
});

/**
 * A node:http2 server that, once a connection's first three requests are in, answers the
 * first and sends GOAWAY with last-stream-id 1; later connections answer everything.
 */
async function againstNode(agent: Agent) {
  const srv = http2.createServer();
  let connections = 0;
  const served: string[] = [];
  const open = new Set<http2.ServerHttp2Session>();
  srv.on('session', (s) => {
    open.add(s);
    connections++;
    s.on('error', () => {});
    (s as unknown as { n: number }).n = connections;
  });
  srv.on('stream', (stream, headers) => {
    const n = (stream.session as unknown as { n: number }).n;
    stream.on('error', () => {});
    if (n === 1 && (stream.id ?? 0) > 1) return; // never processed: above the GOAWAY's last id
    if (n === 1 && stream.id === 1) {
      // Once the client's three requests are here, refuse all but the first (RFC 9113 §6.8).
      const session = stream.session;
      setImmediate(() => session?.goaway(http2.constants.NGHTTP2_NO_ERROR, 1));
    }
    let body = '';
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => {
      body += d;
    });
    stream.on('end', () => {
      served.push(`${headers[':path']} #${n}`);
      stream.respond({ ':status': 200 });
      stream.end(`${headers[':method']} ${headers[':path']} ${body} #${n}`);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  try {
    const url = (p: string) => `http://127.0.0.1:${port}${p}`;
    const settle = (p: Promise<Answer>) => p.catch((e: Error) => ({ error: String(e.message) }));
    const answers = await Promise.all([
      settle(send(url('/one'), agent, 'GET')),
      settle(send(url('/two'), agent, 'POST', 'abc')),
      settle(send(url('/three'), agent, 'GET')),
    ]);
    return { answers, served, connections, retried: agent.stats().http2Retried };
  } finally {
    agent.destroy();
    for (const s of open) s.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  }
}
