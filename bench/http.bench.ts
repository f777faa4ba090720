import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Duplex } from 'node:stream';
import { createHttpServer, Http1Connection } from '@stepwire/http';
import { type Benchmark, type BenchResult, rate, result } from './lib.ts';

/**
 * HTTP/1.1: requests per second of our server against node:http, both on node:net over the
 * kernel's loopback, under the same load generator (wrk, 2 s, 1 thread, 32 connections), with
 * keep-alive and with a new connection per request; and the parser's throughput on pipelined
 * small requests against llhttp (node:http's parser) fed the same bytes.
 */

const BODY = 'hello from stepwire\n';

function wrk(url: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile('wrk', ['-t1', '-c32', '-d2s', ...args, url], { timeout: 20_000 }, (err, stdout) => {
      if (err) return reject(err);
      const m = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
      if (!m) return reject(new Error(`no rate in wrk output: ${stdout}`));
      if (/Non-2xx|Socket errors: connect [1-9]|read [1-9]/.test(stdout))
        return reject(new Error(`wrk saw errors: ${stdout}`));
      resolve(Number(m[1]));
    });
  });
}

async function serve(kind: 'ours' | 'node'): Promise<{ url: string; close: () => Promise<void> }> {
  const handler = (
    _req: unknown,
    res: { setHeader(n: string, v: string): unknown; end(b: string): unknown },
  ) => {
    res.setHeader('content-type', 'text/plain');
    res.end(BODY);
  };
  if (kind === 'ours') {
    const s = createHttpServer(handler as never);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return {
      url: `http://127.0.0.1:${(s.address() as AddressInfo).port}/`,
      close: () =>
        new Promise((r) => {
          s.closeAllConnections();
          s.close(() => r());
        }),
    };
  }
  const s = http.createServer(handler as never);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}/`,
    close: () =>
      new Promise((r) => {
        s.closeAllConnections();
        s.close(() => r());
      }),
  };
}

async function requestsPerSecond(keepAlive: boolean): Promise<BenchResult> {
  const args = keepAlive ? [] : ['-H', 'Connection: close'];
  const rates: Record<'ours' | 'node', number> = { ours: 0, node: 0 };
  // alternate, best of two each, so a noisy neighbour hurts both alike
  for (let round = 0; round < 2; round++) {
    for (const kind of ['ours', 'node'] as const) {
      const s = await serve(kind);
      try {
        rates[kind] = Math.max(rates[kind], await wrk(s.url, args));
      } finally {
        await s.close();
      }
    }
  }
  return result(
    `http/1.1 server req/s ${keepAlive ? 'keep-alive' : 'close'}`,
    rates.ours,
    'req/s',
    'node:http (wrk)',
    rates.node,
  );
}

/** A socket in memory: what a server writes goes to `onOut`, `push` is what the client sends. */
class MemorySocket extends Duplex {
  onOut: (b: Buffer) => void = () => {};
  remoteAddress = '127.0.0.1';
  override _read(): void {}
  override _write(c: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.onOut(c);
    cb();
  }
}

const ONE_REQUEST = Buffer.from(
  'GET /index.html HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n',
);

/** Keep-alive requests one after another on one in-memory connection: the servers' own cost, no kernel. */
async function inMemory(server: { emit(e: string, s: unknown): unknown }, n: number): Promise<number> {
  const sock = new MemorySocket();
  server.emit('connection', sock);
  let done = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    sock.onOut = (b) => {
      // every response ends with the body's last byte, '\n'
      if (b[b.length - 1] !== 0x0a) return;
      if (++done === n) resolve();
      else setImmediate(pushRequest, sock);
    };
    sock.push(ONE_REQUEST);
  });
  const rate = n / ((performance.now() - t0) / 1000);
  sock.destroy();
  return rate;
}

function pushRequest(sock: MemorySocket): void {
  sock.push(ONE_REQUEST);
}

async function inMemoryRequestsPerSecond(): Promise<BenchResult> {
  const handler = (
    _req: unknown,
    res: { setHeader(n: string, v: string): unknown; end(b: string): unknown },
  ) => {
    res.setHeader('content-type', 'text/plain');
    res.end(BODY);
  };
  const ours = createHttpServer(handler as never);
  const node = http.createServer(handler as never);
  let a = 0;
  let b = 0;
  // warm both up, then best of three alternating rounds
  await inMemory(ours, 5000);
  await inMemory(node, 5000);
  for (let i = 0; i < 3; i++) {
    a = Math.max(a, await inMemory(ours, 20_000));
    b = Math.max(b, await inMemory(node, 20_000));
  }
  return result('http/1.1 server req/s in memory', a, 'req/s', 'node:http (same Duplex)', b);
}

function pipelined(n: number): Buffer {
  const one =
    'GET /index.html?q=1 HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: stepwire-bench/1\r\nAccept: */*\r\nAccept-Encoding: gzip\r\n\r\n';
  return Buffer.from(one.repeat(n), 'latin1');
}

function hasRequest(events: readonly { type: string }[]): boolean {
  for (const e of events) if (e.type === 'request') return true;
  return false;
}

function parserThroughput(): BenchResult {
  const N = 1000;
  const bytes = pipelined(N);
  const response = { version: { major: 1, minor: 1 }, status: 204, reason: 'No Content', fields: [] };
  // Ours: feed all of it; answer each request so the next pipelined one is parsed.
  const ours = rate(() => {
    const c = new Http1Connection({ role: 'server' });
    let ev = c.receive(bytes);
    let seen = 0;
    while (hasRequest(ev)) {
      seen++;
      c.send({ type: 'response', head: response });
      c.send({ type: 'end' });
      ev = c.pump();
    }
    if (seen !== N) throw new Error(`parsed ${seen} of ${N}`);
  }, 1500);
  // llhttp through node's internal binding, the parser node:http runs.
  const binding = (process as unknown as { binding(n: string): { HTTPParser: LlhttpCtor } }).binding(
    'http_parser',
  );
  const P = binding.HTTPParser;
  const theirs = rate(() => {
    const p = new P();
    let seen = 0;
    p.initialize(P.REQUEST, {});
    p[P.kOnHeadersComplete] = () => {
      seen++;
      return 0;
    };
    p[P.kOnMessageComplete] = () => {};
    p[P.kOnBody] = () => {};
    p[P.kOnHeaders] = () => {};
    p.execute(bytes);
    if (seen !== N) throw new Error(`llhttp parsed ${seen} of ${N}`);
  }, 1500);
  const mb = bytes.length / 1e6;
  return result(
    'http/1.1 parser pipelined small requests',
    ours * mb,
    'MB/s',
    'llhttp (node:http)',
    theirs * mb,
  );
}

interface LlhttpCtor {
  new (): LlhttpParser;
  REQUEST: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
}
interface LlhttpParser {
  initialize(type: number, resource: object): void;
  execute(b: Buffer): unknown;
  [k: number]: unknown;
}

export const httpBenchmarks: Benchmark[] = [
  {
    name: 'http/1.1 parser',
    run: async () => [parserThroughput()],
  },
  {
    name: 'http/1.1 server req/s in memory',
    run: async () => [await inMemoryRequestsPerSecond()],
  },
  {
    name: 'http/1.1 server req/s',
    requires: () => (onPath('wrk') ? undefined : 'wrk is not installed'),
    run: async () => [await requestsPerSecond(true), await requestsPerSecond(false)],
  },
];

function onPath(bin: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => {
    try {
      accessSync(`${dir}/${bin}`, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
