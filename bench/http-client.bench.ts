/**
 * HTTP clients and WebSocket clients against the best peers in the same run, on node:net over
 * the kernel's loopback:
 *
 * - keep-alive requests per second, 10 in flight, against one node:http server: our fetch()
 *   against undici's fetch (undici 7, the package Node's global fetch comes from), and our
 *   request() against node:http's client (an Agent with keepAlive, the same socket limit);
 * - WebSocket echo round trips per second, one 1 KiB binary message in flight, against our
 *   WebSocket server: our client against undici's WebSocket client.
 *
 * Each pair runs alternately, best of three rounds, so a noisy neighbour hurts both alike.
 *
 *   pnpm bench --filter "http client"
 */
import { once } from 'node:events';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Agent, createHttpServer, fetch as ourFetch, request as ourRequest, ws } from '@stepwire/http';
import { type Benchmark, type BenchResult, result } from './lib.ts';

// undici is a dependency of packages/http (its interop tests), not of the workspace root.
const require = createRequire(join(fileURLToPath(import.meta.url), '../../packages/http/package.json'));
interface UndiciWebSocket {
  binaryType: string;
  onopen: (() => void) | null;
  onmessage: (() => void) | null;
  onclose: (() => void) | null;
  send(data: Uint8Array): void;
  close(): void;
}
const undici = require('undici') as {
  fetch: (url: string, init?: { dispatcher?: unknown }) => Promise<Response>;
  Agent: new (o: { connections: number; keepAliveTimeout: number }) => { close(): Promise<void> };
  WebSocket: new (url: string) => UndiciWebSocket;
};

const REQUESTS = 5000;
const IN_FLIGHT = 10;
const ROUNDS = 3;
const BODY = 'hello world';

/** N requests, IN_FLIGHT at a time, after a warm-up; requests per second. Every body is checked. */
async function requestRate(get: () => Promise<string>): Promise<number> {
  for (let i = 0; i < 200; i++) if ((await get()) !== BODY) throw new Error('wrong body');
  let left = REQUESTS;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (left-- > 0) if ((await get()) !== BODY) throw new Error('wrong body');
    }),
  );
  return REQUESTS / ((performance.now() - t0) / 1000);
}

function collect(res: Readable, resolve: (s: string) => void, reject: (e: Error) => void): void {
  let s = '';
  res.on('data', (d: Buffer) => (s += d));
  res.on('end', () => resolve(s));
  res.on('error', reject);
}

async function clients(): Promise<BenchResult[]> {
  const server = http.createServer((_req, res) => res.end(BODY));
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const best = { ourFetch: 0, undiciFetch: 0, ourRequest: 0, nodeRequest: 0 };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      // Fresh pools each round, each holding IN_FLIGHT keep-alive connections.
      const agent = new Agent({ maxSockets: IN_FLIGHT });
      const dispatcher = new undici.Agent({ connections: IN_FLIGHT, keepAliveTimeout: 60_000 });
      const nodeAgent = new http.Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
      try {
        best.ourFetch = Math.max(
          best.ourFetch,
          await requestRate(async () => (await ourFetch(url, { agent })).text()),
        );
        best.undiciFetch = Math.max(
          best.undiciFetch,
          await requestRate(async () => (await undici.fetch(url, { dispatcher })).text()),
        );
        best.ourRequest = Math.max(
          best.ourRequest,
          await requestRate(
            () =>
              new Promise<string>((resolve, reject) => {
                ourRequest(url, { agent }, (res) => collect(res, resolve, reject))
                  .on('error', reject)
                  .end();
              }),
          ),
        );
        best.nodeRequest = Math.max(
          best.nodeRequest,
          await requestRate(
            () =>
              new Promise<string>((resolve, reject) => {
                http
                  .get(url, { agent: nodeAgent }, (res) => collect(res, resolve, reject))
                  .on('error', reject);
              }),
          ),
        );
      } finally {
        agent.destroy();
        nodeAgent.destroy();
        await dispatcher.close();
      }
    }
  } finally {
    server.closeAllConnections();
    server.close();
  }
  return [
    result(
      `http client fetch req/s keep-alive ×${IN_FLIGHT}`,
      best.ourFetch,
      'req/s',
      'undici fetch',
      best.undiciFetch,
    ),
    result(
      `http client request req/s keep-alive ×${IN_FLIGHT}`,
      best.ourRequest,
      'req/s',
      'node:http request',
      best.nodeRequest,
    ),
  ];
}

const ECHOES = 10_000;
const SIZE = 1024;

/** Round trips per second of one client: send, wait for the echo, send again. */
async function echoRate(
  open: (onMessage: () => void) => Promise<{ send(): void; close(): void }>,
): Promise<number> {
  let got = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => (done = r));
  const c = await open(() => {
    if (++got === ECHOES) done();
    else c.send();
  });
  const t0 = performance.now();
  c.send();
  await finished;
  const rate = ECHOES / ((performance.now() - t0) / 1000);
  c.close();
  return rate;
}

async function websocketClients(): Promise<BenchResult[]> {
  const server = createHttpServer((_req, res) => res.writeHead(426).end());
  const wss = new ws.WebSocketServer({ server });
  wss.on('connection', (sock: ws.WebSocket) =>
    sock.on('message', (d: Buffer, binary: boolean) => sock.send(d, { binary })),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const payload = new Uint8Array(SIZE).fill(0x41);
  const ours = () =>
    echoRate(async (onMessage) => {
      const c = ws.connectWebSocket(url);
      await once(c, 'open');
      c.on('message', onMessage);
      return { send: () => c.send(payload), close: () => c.close() };
    });
  const theirs = () =>
    echoRate(async (onMessage) => {
      const c = new undici.WebSocket(url);
      c.binaryType = 'arraybuffer';
      await new Promise<void>((r) => {
        c.onopen = () => r();
      });
      c.onmessage = onMessage;
      return { send: () => c.send(payload), close: () => c.close() };
    });
  let a = 0;
  let b = 0;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      a = Math.max(a, await ours());
      b = Math.max(b, await theirs());
    }
  } finally {
    server.closeAllConnections();
    server.close();
  }
  return [result(`http client websocket echo/s ${SIZE} B`, a, 'msg/s', 'undici WebSocket', b)];
}

export const httpClientBenchmarks: Benchmark[] = [
  { name: 'http client fetch and request', run: clients },
  { name: 'http client websocket', run: websocketClients },
];
