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
import type { Scenario } from './scenario.ts';
import { appTrace, httpAgent, httpServer, note, readAll } from './support.ts';

export const httpKeepAlive: Scenario = {
  name: 'http-keepalive',
  title: 'HTTP/1.1 persistent connection: two requests, one TCP connection (RFC 9112 §9.3)',
  watch: [
    "One TCP handshake: A's pool opens a connection for the first request and keeps it when the response ends.",
    "The second request goes out on the same connection ('reuse connection #N'): no second SYN.",
    'Two request/response pairs, then A closes the idle connection after 2 s (its idle timeout).',
  ],
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
  name: 'http-pipelining',
  title: 'HTTP/1.1 pipelining: three requests sent at once, answered strictly in order (RFC 9112 §9.3.2)',
  watch: [
    'A writes three GETs back to back on one connection, before any response: one segment carries all three.',
    'B answers /slow after 300 ms and takes /b and /c only once it is out: they wait behind it (head-of-line blocking).',
    'The responses come back in request order: slow, b, c.',
  ],
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
  name: 'http-long-polling',
  title: 'Long polling: the server holds the request until there is news, or until its timeout (RFC 6202 §2)',
  watch: [
    "A's GET /poll reaches B at once; B holds it: no response, only TCP's ACK, while nothing happens.",
    'B publishes at t=1.5 s and the response leaves in that same instant.',
    'The next poll finds nothing: B answers 204 when its 3 s hold ends, and A polls again.',
  ],
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
  name: 'http-sse',
  title:
    'Server-Sent Events: events pushed on one response, a cut, a resume with Last-Event-ID (WHATWG HTML §9.2; a chunked response, RFC 9112 §7.1)',
  watch: [
    "One GET, one 200 text/event-stream response: events 1, 2, 3 go out on it, each id'd, 500 ms apart.",
    "B's connection is cut (RST) after event 3; A waits its retry time (1 s) and connects again.",
    'The new request carries Last-Event-ID: 3, and B resumes at event 4: nothing lost, nothing twice.',
  ],
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
  name: 'websocket',
  title: 'WebSocket: the Upgrade, masked frames, ping/pong and the closing handshake (RFC 6455)',
  watch: [
    "A's GET asks to Upgrade: websocket; B answers 101 Switching Protocols and the connection speaks frames.",
    "Every frame from A is masked (a fresh key each); B's frames are not (RFC 6455 §5.1).",
    'A pings, B pongs; then Close 1000 from A, Close back from B, and B closes TCP first (§7.1.1).',
  ],
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
  name: 'http2-multiplexing',
  title:
    'HTTP/2 multiplexing: three requests in flight on one connection, answered as each is ready (RFC 9113 §5)',
  watch: [
    'One TCP connection: the preface and SETTINGS each way, then HEADERS on streams 1, 3 and 5 at once.',
    'B answers /b and /c (streams 3, 5) first, their DATA frames interleaved; the slow /a (stream 1) ends last.',
    'Unlike http-pipelining, a slow response holds no other back (a lost TCP segment still would); each stream walks idle → open → half-closed → closed on its own.',
  ],
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
