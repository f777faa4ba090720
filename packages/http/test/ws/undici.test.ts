import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocket as UndiciWebSocket } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpServer, type HttpServer } from '../../src/h1/server.ts';
import { WebSocketServer } from '../../src/ws/server.ts';
import type { WebSocket } from '../../src/ws/websocket.ts';

/** undici's WHATWG WebSocket client (an independent implementation) against our server on our HTTP/1.1 server. */
let server: HttpServer;
let url = '';

beforeAll(async () => {
  server = createHttpServer((_q, r) => r.end());
  const wss = new WebSocketServer({ server, perMessageDeflate: { threshold: 0 } });
  wss.on('connection', (ws: WebSocket) => {
    ws.on('message', (d: Buffer, isBinary: boolean) => {
      if (!isBinary && d.toString() === 'close please') ws.close(4100, 'as asked');
      else ws.send(isBinary ? d : d.toString());
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(() => server.close());

function open(protocols?: string[]): Promise<UndiciWebSocket> {
  const ws = new UndiciWebSocket(url, protocols);
  ws.binaryType = 'arraybuffer';
  return new Promise((resolve, reject) => {
    ws.onopen = () => resolve(ws);
    ws.onerror = (e) => reject(e);
  });
}

function next(ws: UndiciWebSocket): Promise<string | ArrayBuffer> {
  return new Promise((resolve) => {
    ws.onmessage = (e) => resolve(e.data as string | ArrayBuffer);
  });
}

describe('undici WebSocket → our server', () => {
  it('negotiates permessage-deflate and echoes text and binary (compressed both ways)', async () => {
    const ws = await open(['chat']);
    expect(ws.protocol).toBe('chat');
    expect(ws.extensions).toMatch(/permessage-deflate/);
    let p = next(ws);
    ws.send('grüße €');
    expect(await p).toBe('grüße €');
    const bin = new Uint8Array(100_000).map((_, i) => (i * 7) & 0xff);
    p = next(ws);
    ws.send(bin);
    expect(new Uint8Array((await p) as ArrayBuffer)).toEqual(bin);
    ws.close(1000, 'done');
    const ev = await new Promise<{ code: number; reason: string; wasClean: boolean }>((r) => {
      ws.onclose = (e) => r({ code: e.code, reason: e.reason, wasClean: e.wasClean });
    });
    expect(ev).toEqual({ code: 1000, reason: 'done', wasClean: true });
  });

  it('sees our close code and reason', async () => {
    const ws = await open();
    ws.send('close please');
    const ev = await new Promise<{ code: number; reason: string; wasClean: boolean }>((r) => {
      ws.onclose = (e) => r({ code: e.code, reason: e.reason, wasClean: e.wasClean });
    });
    expect(ev).toEqual({ code: 4100, reason: 'as asked', wasClean: true });
  });
});
