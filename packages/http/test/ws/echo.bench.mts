/**
 * WebSocket echo round trips per second, one message in flight, against our server: our
 * client vs undici's. A script, not a test: `pnpm exec tsx packages/http/test/ws/echo.bench.mts`.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocket as UndiciWebSocket } from 'undici';
import { createHttpServer, ws as W } from '../../src/index.ts';

const { connectWebSocket, WebSocketServer } = W;

const N = Number(process.env.N ?? 20000);
const SIZE = Number(process.env.SIZE ?? 1024);
const server = createHttpServer((_q, r) => r.end());
const wss = new WebSocketServer({ server });
wss.on('connection', (ws) => ws.on('message', (d: Buffer, b: boolean) => ws.send(d, { binary: b })));
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`;
const payload = new Uint8Array(SIZE).fill(65);

async function ours(): Promise<number> {
  const ws = connectWebSocket(url);
  await once(ws, 'open');
  const t0 = performance.now();
  let got = 0;
  await new Promise<void>((resolve) => {
    ws.on('message', () => {
      if (++got === N) resolve();
      else ws.send(payload);
    });
    ws.send(payload);
  });
  const ms = performance.now() - t0;
  ws.close();
  return (N / ms) * 1000;
}
async function undici(): Promise<number> {
  const ws = new UndiciWebSocket(url);
  await new Promise((r) => (ws.onopen = r));
  const t0 = performance.now();
  let got = 0;
  await new Promise<void>((resolve) => {
    ws.onmessage = () => {
      if (++got === N) resolve();
      else ws.send(payload);
    };
    ws.send(payload);
  });
  const ms = performance.now() - t0;
  ws.close();
  return (N / ms) * 1000;
}
await ours();
await undici();
const a = await ours();
const b = await undici();
console.log(
  `ws echo round trips/s (${SIZE} B, one at a time): stepwire-client ${a.toFixed(0)} undici-client ${b.toFixed(0)} ratio ${(a / b).toFixed(2)}`,
);
server.close();
process.exit(0);
