import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { TraceBus, type TraceEvent } from '@stepwire/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpServer, type HttpServer } from '../../src/h1/server.ts';
import { WebSocketServer } from '../../src/ws/server.ts';
import { connectWebSocket, type WebSocket } from '../../src/ws/websocket.ts';

/** Interop with python3-websockets (Debian), an independent implementation of RFC 6455 and RFC 7692. */
const PYTHON = '/usr/bin/python3';
const peer = (name: string) => fileURLToPath(new URL(`./peers/${name}`, import.meta.url));

function runPython(
  args: string[],
): Promise<{ lines: Record<string, unknown>[]; code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(PYTHON, args);
    let out = '';
    let err = '';
    p.stdout.on('data', (b) => (out += b));
    p.stderr.on('data', (b) => (err += b));
    const timer = setTimeout(() => p.kill('SIGKILL'), 20_000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({
        lines: out
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as Record<string, unknown>),
        code,
        stderr: err,
      });
    });
  });
}

describe.each(['deflate', 'none'])(
  'python3-websockets client → our server (compression %s)',
  (compression) => {
    let server: http.Server;
    let wss: WebSocketServer;
    const serverSide: { closes: [number, string][]; pings: number; extensions: string[] } = {
      closes: [],
      pings: 0,
      extensions: [],
    };

    beforeAll(async () => {
      server = http.createServer((_req, res) => res.end('not a websocket'));
      wss = new WebSocketServer({
        server,
        perMessageDeflate: true,
        handleProtocols: (protocols) => (protocols.has('superchat') ? 'superchat' : false),
      });
      wss.on('connection', (ws: WebSocket) => {
        serverSide.extensions.push(ws.extensions);
        ws.on('message', (data: Buffer, isBinary: boolean) =>
          ws.send(isBinary ? data : data.toString('utf8')),
        );
        ws.on('ping', () => serverSide.pings++);
        ws.on('close', (code: number, reason: Buffer) => serverSide.closes.push([code, reason.toString()]));
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
    });
    afterAll(() => {
      server.closeAllConnections();
      server.close();
    });

    it('echoes text, binary, fragmented and large messages, answers ping, and closes with the client code', async () => {
      const { port } = server.address() as AddressInfo;
      const r = await runPython([peer('client.py'), `ws://127.0.0.1:${port}/echo`, compression]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.lines).toEqual([
        {
          event: 'open',
          subprotocol: 'superchat',
          extensions: compression === 'deflate' ? ['PerMessageDeflate'] : [],
        },
        { event: 'echo-text', data: 'hello from python' },
        { event: 'echo-binary', ok: true, length: 1024 },
        { event: 'echo-fragmented', ok: true, length: 9 + 3000 * 4 },
        { event: 'pong' },
        { event: 'echo-large', ok: true },
        { event: 'closed', code: 4000, reason: 'python done' },
      ]);
      await new Promise((res) => setImmediate(res));
      expect(serverSide.closes.at(-1)).toEqual([4000, 'python done']);
      expect(serverSide.pings).toBeGreaterThan(0);
      expect(serverSide.extensions.at(-1)).toMatch(compression === 'deflate' ? /^permessage-deflate/ : /^$/);
    });
  },
);

describe('python3-websockets client → our WebSocket on our HTTP/1.1 server (node:net)', () => {
  let server: HttpServer;
  const trace: TraceEvent[] = [];
  const closes: number[] = [];

  beforeAll(async () => {
    server = createHttpServer((_req, res) => res.end('not a websocket'));
    const bus = new TraceBus();
    bus.on((e) => trace.push(e));
    const wss = new WebSocketServer({
      server,
      perMessageDeflate: true,
      maxPayload: 1024 * 1024,
      trace: bus,
      traceHost: 'server',
      handleProtocols: (p) => (p.has('chat') ? 'chat' : false),
    });
    wss.on('connection', (ws: WebSocket) => {
      ws.on('message', (data: Buffer, isBinary: boolean) => ws.send(isBinary ? data : data.toString('utf8')));
      ws.on('close', (code: number) => closes.push(code));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
  });
  afterAll(() => server.close());

  it('the same exchange, with frames and the closing handshake in the trace', async () => {
    const { port } = server.address() as AddressInfo;
    const r = await runPython([peer('client.py'), `ws://127.0.0.1:${port}/echo`, 'deflate']);
    expect(r.stderr).toBe('');
    expect(r.lines.map((l) => l.event)).toEqual([
      'open',
      'echo-text',
      'echo-binary',
      'echo-fragmented',
      'pong',
      'echo-large',
      'closed',
    ]);
    expect(r.lines[0]).toMatchObject({ subprotocol: 'chat', extensions: ['PerMessageDeflate'] });
    expect(r.lines.at(-1)).toEqual({ event: 'closed', code: 4000, reason: 'python done' });
    await new Promise((res) => setImmediate(res));
    expect(closes).toEqual([4000]);
    const summaries = trace.map((e) => `${e.dir} ${e.summary}`);
    expect(summaries).toContain('in PING fin len=13 masked');
    expect(summaries).toContain('out PONG fin len=13');
    // The fragmented message: a first frame without FIN, then continuations.
    expect(summaries.some((s) => /^in TEXT( rsv1)? len=\d+ masked$/.test(s))).toBe(true);
    expect(summaries.some((s) => /^in CONT fin len=\d+ masked$/.test(s))).toBe(true);
    expect(summaries).toContain('in CLOSE fin len=13 masked');
    expect(summaries).toContain('out CLOSE fin len=13');
    expect(summaries).toContain('local closed 4000 python done');
  });

  it.each(['deflate', 'none'])(
    'a 2 MiB message past maxPayload (1 MiB) is refused with 1009 (compression %s)',
    async (c) => {
      const { port } = server.address() as AddressInfo;
      const r = await runPython([peer('client.py'), `ws://127.0.0.1:${port}/`, c, 'too-large']);
      expect(r.stderr).toBe('');
      expect(r.lines).toEqual([{ event: 'closed', code: 1009, reason: '' }]);
    },
  );
});

describe.each(['deflate', 'none'])(
  'our client → python3-websockets server (compression %s)',
  (compression) => {
    let py: ChildProcessWithoutNullStreams;
    let port = 0;

    beforeAll(async () => {
      py = spawn(PYTHON, [peer('server.py'), compression]);
      const [line] = (await once(py.stdout, 'data')) as [Buffer];
      port = (JSON.parse(line.toString()) as { port: number }).port;
    });
    afterAll(() => {
      py.stdin.end();
      if (py.exitCode === null) py.kill();
    });

    function open(): Promise<{ ws: WebSocket; messages: string[]; next: () => Promise<string> }> {
      const ws = connectWebSocket(`ws://127.0.0.1:${port}/`, {
        protocols: ['chat'],
        perMessageDeflate: true,
      });
      const messages: string[] = [];
      const waiters: ((s: string) => void)[] = [];
      ws.on('message', (d: Buffer, isBinary: boolean) => {
        const s = isBinary ? `binary:${d.length}` : d.toString('utf8');
        const w = waiters.shift();
        if (w) w(s);
        else messages.push(s);
      });
      const next = () =>
        new Promise<string>((res) => {
          const m = messages.shift();
          if (m !== undefined) res(m);
          else waiters.push(res);
        });
      return new Promise((resolve, reject) => {
        ws.once('open', () => resolve({ ws, messages, next }));
        ws.once('error', reject);
      });
    }

    it('negotiates the subprotocol and (when the server offers it) permessage-deflate', async () => {
      const { ws, next } = await open();
      expect(ws.protocol).toBe('chat');
      expect(ws.extensions).toMatch(compression === 'deflate' ? /^permessage-deflate/ : /^$/);
      ws.send('extensions');
      expect(JSON.parse(await next())).toEqual(compression === 'deflate' ? ['PerMessageDeflate'] : []);
      ws.close(1000);
      const [code] = await once(ws, 'close');
      expect(code).toBe(1000);
    });

    it('echo of text, binary and large compressible messages; fragmented messages reassembled', async () => {
      const { ws, next } = await open();
      ws.send('héllo €');
      expect(await next()).toBe('héllo €');
      ws.send(new Uint8Array(70_000).fill(9));
      expect(await next()).toBe('binary:70000');
      const big = 'abc'.repeat(100_000);
      ws.send(big);
      expect(await next()).toBe(big);
      ws.send('fragments');
      expect(await next()).toBe('one two three é€');
      // Our own fragmented send: first and continuation frames (RFC 6455 §5.4).
      ws.send('par', { fin: false });
      ws.ping(Buffer.from('between fragments'));
      ws.send('tial', { fin: true });
      expect(await next()).toBe('partial');
      ws.close(1000, 'bye');
      await once(ws, 'close');
    });

    it('answers the server ping with a pong', async () => {
      const { ws, next } = await open();
      const pings: Buffer[] = [];
      ws.on('ping', (d: Buffer) => pings.push(d));
      ws.send('ping-me');
      expect(await next()).toBe('pong-received');
      expect(pings.map((p) => p.toString())).toEqual(['from python']);
      ws.close();
      await once(ws, 'close');
    });

    it('reports the server close code and reason', async () => {
      const { ws } = await open();
      ws.send('close-me');
      const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
      expect(code).toBe(4002);
      expect(reason.toString()).toBe('done');
      expect(ws.readyState).toBe(3);
    });

    it('a subprotocol the server does not speak: the server picks none and we open without one', async () => {
      const ws = connectWebSocket({ url: `ws://127.0.0.1:${port}/`, protocols: ['nope'] });
      const outcome = await new Promise<string>((res) => {
        ws.once('open', () => res(`open:${ws.protocol}`));
        ws.once('error', (e: Error) => res(`error:${e.message}`));
      });
      // websockets 10.4 answers without Sec-WebSocket-Protocol; RFC 6455 §4.1 lets the client go on.
      expect(outcome).toBe('open:');
      ws.terminate();
    });
  },
);
