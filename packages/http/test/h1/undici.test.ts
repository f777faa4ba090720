import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Agent, request as undiciRequest } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpServer, type HttpServer } from '../../src/h1/index.ts';

// undici 7 (Node's fetch engine, here the package with pipelining on) against our server.

let server: HttpServer;
let base = '';

beforeAll(async () => {
  server = createHttpServer((req, res) => {
    if (req.url === '/sha256') {
      const h = createHash('sha256');
      let n = 0;
      req.on('data', (d: Buffer) => {
        h.update(d);
        n += d.length;
      });
      req.on('end', () => res.end(`${n} ${h.digest('hex')}\n`));
    } else if (req.url === '/chunked') {
      res.write('one,');
      res.write('two,');
      res.end('three\n');
    } else res.end(`hello ${req.method} ${req.url}\n`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

describe('undici 7 against our HTTP/1.1 server', () => {
  it('requests, pipelined on one connection, with a streamed body', async () => {
    const agent = new Agent({ pipelining: 4, connections: 1 });
    try {
      const before = server.stats().accepted;
      const rs = await Promise.all(
        [1, 2, 3, 4, 5, 6].map(async (i) => {
          const r = await undiciRequest(`${base}/p${i}`, { dispatcher: agent });
          return [r.statusCode, await r.body.text()];
        }),
      );
      expect(rs).toEqual([1, 2, 3, 4, 5, 6].map((i) => [200, `hello GET /p${i}\n`]));
      const up = await undiciRequest(`${base}/sha256`, {
        method: 'POST',
        body: Buffer.alloc(100_000, 3),
        dispatcher: agent,
      });
      expect(await up.body.text()).toBe(
        `100000 ${createHash('sha256').update(Buffer.alloc(100_000, 3)).digest('hex')}\n`,
      );
      expect(server.stats().accepted - before).toBe(1);
    } finally {
      await agent.close();
    }
  });

  it("undici's fetch reads a chunked response", async () => {
    const r = await fetch(`${base}/chunked`);
    expect(await r.text()).toBe('one,two,three\n');
  });
});
