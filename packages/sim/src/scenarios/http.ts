/** The HTTP scenarios: keep-alive, pipelining, long polling, SSE, WebSocket, HTTP/2 multiplexing. */
import {
  EventSource,
  fetch,
  h2,
  type IncomingMessage,
  lastEventIdOf,
  type ServerResponse,
  SseWriter,
  ws,
} from '@stepwire/http';
import { Prng } from '@stepwire/wire';
import { about } from './about.ts';
import type { Scenario } from './scenario.ts';
import { appTrace, httpAgent, httpServer, note, readAll } from './support.ts';

export const httpKeepAlive: Scenario = {
  ...about('http-keepalive'),
  link: { delay: 5 },
  async run({ net, result, step }) {
    const a = net.host('A');
    const b = net.host('B');
    const http = httpServer(net, b, 80, (req, res) => res.end(`hello from ${req.url}`));
    const agent = httpAgent(net, a, 2_000);
    for (const path of ['/first', '/second']) {
      step(`GET ${path}`);
      const res = await net.run(fetch(`http://${b.ipv4}${path}`, { agent }));
      const body = await net.run(res.text());
      result('A', res.status === 200 && body === `hello from ${path}`, `${res.status} '${body}'`);
    }
    step('idle: the pool closes the connection');
    await net.run(3_000);
    const pool = agent.stats().origins[`http://${b.ipv4}:80`];
    result(
      'A',
      pool?.created === 1 && pool.reused === 1,
      `connections opened ${pool?.created}, reused ${pool?.reused}`,
    );
    http.close();
  },
};

export const httpPipelining: Scenario = {
  ...about('http-pipelining'),
  link: { delay: 5 },
  async run({ net, result }) {
    const a = net.host('A');
    const b = net.host('B');
    const http = httpServer(net, b, 80, (req, res) => {
      if (req.url === '/slow') {
        note(net, 'B', 'app', 'GET /slow: working for 300 ms');
        net.clock.setTimer(net.clock.now() + 300, () => res.end('slow'));
      } else res.end(req.url?.slice(1));
    });
    const c = a.tcp.connect({ host: b.ipv4, port: 80 });
    const get = (path: string, close = false) =>
      `GET ${path} HTTP/1.1\r\nHost: ${b.ipv4}\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;
    c.on('connect', () => {
      note(net, 'A', 'http', '→ GET /slow, GET /b, GET /c (pipelined, one write)');
      c.write(get('/slow') + get('/b') + get('/c', true));
    });
    const all = (await net.run(readAll(c))).toString();
    const bodies = all
      .split('HTTP/1.1 ')
      .slice(1)
      .map((r) => r.slice(r.indexOf('\r\n\r\n') + 4));
    result('A', bodies.join(',') === 'slow,b,c', `responses in order: ${bodies.join(', ')}`);
    http.close();
  },
};

export const httpLongPolling: Scenario = {
  ...about('http-long-polling'),
  link: { delay: 5 },
  async run({ net, result, step }) {
    const a = net.host('A');
    const b = net.host('B');
    const waiting: ServerResponse[] = [];
    const http = httpServer(net, b, 80, (_req: IncomingMessage, res) => {
      waiting.push(res);
      const hold = net.clock.setTimer(net.clock.now() + 3_000, () => {
        const at = waiting.indexOf(res);
        if (at >= 0) waiting.splice(at, 1);
        res.writeHead(204).end();
      });
      // Answered by a publish (or gone): the hold ends with it.
      res.on('finish', () => hold.cancel());
      res.on('close', () => hold.cancel());
    });
    const publish = (text: string) => {
      note(net, 'B', 'app', `publish '${text}' to ${waiting.length} waiting poll(s)`);
      for (const res of waiting.splice(0)) res.end(text);
    };
    const agent = httpAgent(net, a);
    const poll = async () => {
      const res = await net.run(fetch(`http://${b.ipv4}/poll`, { agent }));
      return { status: res.status, body: await net.run(res.text()), at: net.clock.now() };
    };
    step('poll 1: held until B publishes at t=1.5 s');
    const start = net.clock.now();
    net.clock.setTimer(start + 1_500, () => publish('news'));
    const first = await poll();
    result(
      'A',
      first.status === 200 && first.body === 'news',
      `${first.status} '${first.body}' after ${first.at - start} ms`,
    );
    step('poll 2: nothing to say, 204 after the 3 s hold');
    const again = net.clock.now();
    const second = await poll();
    result('A', second.status === 204, `${second.status} after ${second.at - again} ms`);
    agent.destroy();
    http.close();
  },
};

export const httpSse: Scenario = {
  ...about('http-sse'),
  link: { delay: 5 },
  async run({ net, result, step }) {
    const a = net.host('A');
    const b = net.host('B');
    let connections = 0;
    const http = httpServer(net, b, 80, (req, res) => {
      connections++;
      const from = Number(lastEventIdOf(req) || '0');
      note(
        net,
        'B',
        'app',
        `stream ${connections}, Last-Event-ID '${lastEventIdOf(req)}': from event ${from + 1}`,
      );
      const sse = new SseWriter(res, { clock: net.clock, heartbeat: 0, retry: 1_000 });
      let n = from;
      const tick = () => {
        n++;
        note(net, 'B', 'sse', `→ id: ${n} event: tick data: event ${n}`);
        sse.send({ id: String(n), event: 'tick', data: `event ${n}` });
        if (connections === 1 && n === 3) {
          net.clock.setTimer(net.clock.now() + 100, () => {
            note(net, 'B', 'app', 'connection cut');
            (req.socket as { resetAndDestroy?: () => void }).resetAndDestroy?.();
          });
        } else if (n < 5) net.clock.setTimer(net.clock.now() + 500, tick);
      };
      net.clock.setTimer(net.clock.now() + 500, tick);
    });
    const agent = httpAgent(net, a);
    const es = new EventSource(`http://${b.ipv4}/events`, {
      clock: net.clock,
      fetch: (url, init) => fetch(url, { ...init, agent }),
    });
    const got: string[] = [];
    step('subscribe');
    await net.run(
      new Promise<void>((resolve) => {
        es.addEventListener('tick', (e) => {
          const m = e as MessageEvent;
          got.push(`${m.lastEventId}:${m.data}`);
          if (got.length === 5) resolve();
        });
        es.onerror = () => note(net, 'A', 'app', `stream lost; reconnect in ${es.reconnectionTime} ms`);
      }),
    );
    es.close();
    const ids = got.map((g) => g.split(':')[0]).join(',');
    result('A', ids === '1,2,3,4,5' && connections === 2, `events ${ids} over ${connections} connections`);
    agent.destroy();
    http.close();
  },
};

export const websocket: Scenario = {
  ...about('websocket'),
  link: { delay: 5 },
  async run({ net, result, step }) {
    const a = net.host('A');
    const b = net.host('B');
    const http = httpServer(net, b, 80, (_req, res) => res.writeHead(426).end());
    const trace = appTrace(net);
    // Before the WebSocketServer's own listener, which writes the 101 at once.
    http.server.on('upgrade', () =>
      note(net, 'B', 'http', '→ 101 Switching Protocols, Sec-WebSocket-Accept from the key'),
    );
    const wss = new ws.WebSocketServer({ server: http.server, clock: net.clock, trace, traceHost: 'B' });
    wss.on('connection', (sock: ws.WebSocket) => {
      sock.on('message', (d: Buffer) => sock.send(`echo: ${d}`));
    });
    // Keys from the seed, so the same seed masks the same way.
    const prng = new Prng((net.seed ^ 0x6455) >>> 0);
    note(net, 'A', 'http', '→ GET /chat HTTP/1.1 Upgrade: websocket, Sec-WebSocket-Key');
    const client = ws.connectWebSocket({
      url: `ws://${b.ipv4}/chat`,
      clock: net.clock,
      trace,
      traceHost: 'A',
      connect: (host, port) => a.tcp.connect({ host, port }),
      maskingKey: () => prng.bytes(4),
      randomBytes: (n) => prng.bytes(n),
    });
    const events: string[] = [];
    step('opening handshake, a message, a ping');
    await net.run(
      new Promise<void>((resolve, reject) => {
        client.on('error', reject);
        client.on('open', () => {
          note(net, 'A', 'websocket', `open: ${client.response?.status} accepted`);
          client.send('hello');
        });
        client.on('message', (d: Buffer) => {
          events.push(d.toString());
          client.ping('are you there');
        });
        client.on('pong', (d: Buffer) => {
          events.push(`pong '${d}'`);
          resolve();
        });
      }),
    );
    step('closing handshake');
    const closed = await net.run(
      new Promise<string>((resolve) => {
        client.on('close', (code: number, reason: Buffer | string) => resolve(`${code} ${reason}`));
        client.close(1000, 'bye');
      }),
    );
    events.push(`close ${closed}`);
    result(
      'A',
      events.join(' | ') === "echo: hello | pong 'are you there' | close 1000 bye",
      events.join(' | '),
    );
    http.close();
  },
};

export const http2Multiplexing: Scenario = {
  ...about('http2-multiplexing'),
  link: { delay: 5 },
  async run({ net, result, step }) {
    const a = net.host('A');
    const b = net.host('B');
    const trace = appTrace(net);
    const server = h2.createHttp2Server({ clock: net.clock, trace, hostName: 'B' }, (stream, headers) => {
      const path = String(headers[':path']);
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      const later = (ms: number, f: () => void) => net.clock.setTimer(net.clock.now() + ms, f);
      if (path === '/a') {
        note(net, 'B', 'app', 'GET /a: working for 300 ms');
        later(300, () => stream.end('a, at last'));
      } else {
        // Two pieces 50 ms apart: the two streams' DATA frames take turns on the wire.
        later(50, () => stream.write(`${path.slice(1)} part 1; `));
        later(100, () => stream.end(`${path.slice(1)} part 2`));
      }
    });
    const listener = b.tcp.createServer((s) => server.handle(s));
    listener.listen(80);
    const session = h2.connectHttp2(`http://${b.ipv4}`, {
      clock: net.clock,
      trace,
      hostName: 'A',
      createConnection: () => a.tcp.connect({ host: b.ipv4, port: 80 }),
    });
    const finished: string[] = [];
    const get = (path: string) =>
      new Promise<string>((resolve, reject) => {
        const stream = session.request({ ':path': path });
        let body = '';
        stream.on('data', (d: Buffer) => (body += d));
        stream.on('end', () => {
          finished.push(path);
          resolve(body);
        });
        stream.on('error', reject);
      });
    step('three requests at once on one connection');
    const bodies = await net.run(Promise.all(['/a', '/b', '/c'].map(get)));
    result(
      'A',
      finished.join(',') === '/b,/c,/a' && bodies[0] === 'a, at last',
      `finished in the order ${finished.join(', ')} on one connection`,
    );
    step('B shuts down gracefully: GOAWAY');
    const closed = new Promise<void>((resolve) => session.once('close', () => resolve()));
    server.close();
    listener.close();
    await net.run(closed);
  },
};
