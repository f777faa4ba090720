import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpApp, patternChunk } from '../src/services/http-app.ts';

// The routes checked over the kernel's loopback with Node's fetch as the client, so the
// same app can be trusted behind our own TCP and TLS. The app is our HTTP/1.1 server.
const app = createHttpApp();
let base = '';
beforeAll(async () => {
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => app.close(() => r())));

describe('the HTTP routes of stepwire serve', () => {
  it('GET / is a short text page', async () => {
    const r = await fetch(`${base}/`);
    expect(r.status).toBe(200);
    expect(await r.text()).toMatch(/stepwire/);
  });

  it('GET /bytes/N streams N pattern bytes', async () => {
    for (const n of [0, 1, 250, 251, 252, 300_000]) {
      const body = new Uint8Array(await (await fetch(`${base}/bytes/${n}`)).arrayBuffer());
      expect(body.length).toBe(n);
      expect(Buffer.from(body).equals(patternChunk(0, n))).toBe(true);
    }
    expect((await fetch(`${base}/bytes/${2 ** 30 + 1}`)).status).toBe(400);
  });

  it('POST /echo returns the body and POST /sha256 its hash', async () => {
    const body = patternChunk(7, 200_000);
    const echoed = Buffer.from(await (await fetch(`${base}/echo`, { method: 'POST', body })).arrayBuffer());
    expect(echoed.equals(body)).toBe(true);
    const hex = (await (await fetch(`${base}/sha256`, { method: 'POST', body })).text()).trim();
    expect(hex).toBe(createHash('sha256').update(body).digest('hex'));
  });

  it('is our HTTP/1.1 server: its stats count what it answered, keep-alive included', async () => {
    const before = app.stats();
    for (let i = 0; i < 3; i++) expect((await fetch(`${base}/`)).status).toBe(200);
    const after = app.stats();
    expect(after.requests - before.requests).toBe(3);
    expect(after.responses - before.responses).toBe(3);
    expect(Object.keys(after.parseErrors)).toEqual([]);
  });

  it('HEAD /bytes/N gives the length and no body', async () => {
    const r = await fetch(`${base}/bytes/1000`, { method: 'HEAD' });
    expect(r.headers.get('content-length')).toBe('1000');
    expect((await r.arrayBuffer()).byteLength).toBe(0);
  });

  it('GET /sse streams numbered tick events, resuming after Last-Event-ID', async () => {
    const r = await fetch(`${base}/sse?every=10&count=3`, { headers: { 'last-event-id': '41' } });
    expect(r.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const text = await r.text();
    expect(text.match(/^event: tick$/gm)).toHaveLength(3);
    expect(text.match(/^id: \d+$/gm)).toEqual(['id: 42', 'id: 43', 'id: 44']);
    expect(text).toMatch(/^retry: 10$/m);
  });

  it('answers 404 and 405', async () => {
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/echo`)).status).toBe(405);
  });
});
