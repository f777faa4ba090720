/**
 * Requests per second, keep-alive, C concurrent: our request() and fetch() vs node:http's
 * client and undici's fetch (Node's global fetch), against one node:http server. A script,
 * not a test: `pnpm exec tsx packages/http/test/client/fetch.bench.mts` (N, C from env).
 */

import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, fetch as ourFetch, request as ourRequest } from '../../src/index.ts';

const N = Number(process.env.N ?? 5000);
const C = Number(process.env.C ?? 10);
const server = http.createServer((_req, res) => res.end('hello world'));
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

async function run(name: string, get: () => Promise<string>) {
  for (let i = 0; i < 200; i++) await get(); // warm-up
  const t0 = performance.now();
  let left = N;
  await Promise.all(
    Array.from({ length: C }, async () => {
      while (left-- > 0) await get();
    }),
  );
  const ms = performance.now() - t0;
  const rps = (N / ms) * 1000;
  console.log(`${name} ${rps.toFixed(0)} req/s`);
  return rps;
}
const agent = new Agent({ maxSockets: C });
const nodeAgent = new http.Agent({ keepAlive: true, maxSockets: C });
const ours = await run('stepwire-fetch', async () => (await ourFetch(url, { agent })).text());
const undici = await run('undici-fetch', async () => (await fetch(url)).text());
const nodeHttp = await run(
  'node-http-get',
  () =>
    new Promise((resolve, reject) => {
      http
        .get(url, { agent: nodeAgent }, (res) => {
          let s = '';
          res.on('data', (d) => (s += d));
          res.on('end', () => resolve(s));
        })
        .on('error', reject);
    }),
);
const agent2 = new Agent({ maxSockets: C });
const ourReq = await run(
  'stepwire-request',
  () =>
    new Promise((resolve, reject) => {
      const r = ourRequest(url, { agent: agent2 }, (res) => {
        let s = '';
        res.on('data', (d) => (s += d));
        res.on('end', () => resolve(s));
      });
      r.on('error', reject);
      r.end();
    }),
);
console.log(`ratio stepwire-request/node:http ${(ourReq / nodeHttp).toFixed(2)}`);
console.log(
  `ratio stepwire/undici ${(ours / undici).toFixed(2)} stepwire/node:http ${(ours / nodeHttp).toFixed(2)}`,
);
agent.destroy();
nodeAgent.destroy();
server.close();
process.exit(0);
