import { execFile } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { createHttpServer, EventSource, lastEventIdOf, SseWriter } from '@stepwire/http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Server-sent events from our HTTP/1.1 server: read by curl (an independent client, raw
 * bytes) and by our EventSource (resume by Last-Event-ID), both over node:net on loopback.
 */
const run = promisify(execFile);
let server: ReturnType<typeof createHttpServer>;
let base = '';

beforeAll(async () => {
  server = createHttpServer((req, res) => {
    const from = Number(lastEventIdOf(req) || '0');
    const sse = new SseWriter(res, { heartbeat: 0, retry: 10 });
    sse.comment('welcome');
    for (let i = from + 1; i <= from + 3; i++)
      sse.send({ id: String(i), event: 'tick', data: `n=${i}\nsquare=${i * i}` });
    sse.end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => server.close());

describe('SSE from our server', () => {
  it('curl reads the exact text/event-stream bytes, chunked', async () => {
    const { stdout } = await run('curl', [
      '-sS',
      '-N',
      '--max-time',
      '10',
      '-D',
      '-',
      '-H',
      'Last-Event-ID: 4',
      `${base}/events`,
    ]);
    const [head = '', body] = stdout.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    expect(head).toMatch(/content-type: text\/event-stream; charset=utf-8/i);
    expect(head).toMatch(/transfer-encoding: chunked/i);
    expect(body).toBe(
      'retry: 10\n\n: welcome\n' +
        [5, 6, 7].map((i) => `event: tick\nid: ${i}\ndata: n=${i}\ndata: square=${i * i}\n\n`).join(''),
    );
  });

  it('our EventSource reconnects after each end and resumes from the last id', async () => {
    const es = new EventSource(`${base}/events`);
    const got: string[] = [];
    await new Promise<void>((resolve) => {
      es.addEventListener('tick', (e) => {
        const m = e as MessageEvent;
        got.push(`${m.lastEventId}:${m.data}`);
        if (got.length === 6) resolve();
      });
    });
    es.close();
    expect(got.map((g) => g.split(':')[0])).toEqual(['1', '2', '3', '4', '5', '6']);
    expect(got[3]).toBe('4:n=4\nsquare=16');
    expect(es.stats.connections).toBe(2);
  });
});
