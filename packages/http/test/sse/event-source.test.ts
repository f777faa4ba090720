import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { VirtualClock } from '@stepwire/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventSource, type FetchLike } from '../../src/sse/event-source.ts';
import { lastEventIdOf, SseWriter } from '../../src/sse/writer.ts';

/**
 * The EventSource client against a node:http server on loopback. /feed numbers its events;
 * the first connection is cut after 3 events, and a reconnect resumes after Last-Event-ID.
 */
let server: http.Server;
let base = '';
const seenLastEventIds: string[] = [];
let feedConnections = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/feed') {
      feedConnections++;
      const from = Number(lastEventIdOf(req) || '0');
      seenLastEventIds.push(lastEventIdOf(req));
      const sse = new SseWriter(res, { retry: 20, heartbeat: 0 });
      sse.comment('hello');
      const first = feedConnections === 1;
      for (let i = from + 1; i <= (first ? 3 : 6); i++) {
        sse.send({ id: String(i), event: i % 2 ? 'odd' : 'even', data: `line ${i}\nsecond line` });
        sse.comment(); // heartbeat between events
      }
      // The first connection is cut without an end (a dropped connection); later ones end cleanly.
      if (first) setImmediate(() => res.socket?.destroy());
      else sse.end();
      return;
    }
    if (url.pathname === '/not-sse') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('hi');
      return;
    }
    if (url.pathname === '/gone') {
      res.writeHead(204).end();
      return;
    }
    if (url.pathname === '/silent') {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write(': connected\n\n');
      return; // never another byte
    }
    res.writeHead(404).end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

describe('EventSource over node:http', () => {
  it('receives typed events with ids, reconnects after a cut and resumes by Last-Event-ID', async () => {
    const es = new EventSource(`${base}/feed`);
    const got: string[] = [];
    const opens: number[] = [];
    let errors = 0;
    es.onopen = () => opens.push(es.readyState);
    es.onerror = () => errors++;
    const onEvent = (e: Event) => {
      const m = e as MessageEvent;
      got.push(`${m.type}:${m.lastEventId}:${m.data}`);
    };
    es.addEventListener('odd', onEvent);
    es.addEventListener('even', onEvent);
    await new Promise<void>((resolve) => {
      es.addEventListener('even', (e) => {
        if ((e as MessageEvent).lastEventId === '6') resolve();
      });
    });
    es.close();
    expect(got).toEqual(
      [1, 2, 3, 4, 5, 6].map((i) => `${i % 2 ? 'odd' : 'even'}:${i}:line ${i}\nsecond line`),
    );
    expect(seenLastEventIds.slice(0, 2)).toEqual(['', '3']);
    expect(opens).toEqual([1, 1]);
    expect(errors).toBe(1);
    expect(es.reconnectionTime).toBe(20);
    expect(es.stats).toMatchObject({ connections: 2, reconnections: 1, events: 6 });
    // Heartbeat comments are counted, never dispatched as events: the 4 of the first stream
    // and the 3 of the second that precede event 6 (the one after it may not be read yet).
    expect(es.stats.comments).toBeGreaterThanOrEqual(7);
    expect(es.readyState).toBe(2);
    expect(es.stats.timersArmed).toBe(0);
  });

  it('a response that is not text/event-stream fails the connection for good (§9.2.3)', async () => {
    for (const path of ['/not-sse', '/gone', '/missing']) {
      const es = new EventSource(`${base}${path}`);
      await once(es, 'error');
      expect(es.readyState).toBe(2);
      expect(es.stats.timersArmed).toBe(0);
      expect(es.stats.connections).toBe(1);
    }
  });

  it('a stream silent past heartbeatTimeout is treated as lost and reconnected', async () => {
    const es = new EventSource(`${base}/silent`, { heartbeatTimeout: 100, reconnectionTime: 10 });
    await once(es, 'open');
    await once(es, 'error');
    expect(es.readyState).toBe(0);
    await once(es, 'open');
    es.close();
    expect(es.stats.reconnections).toBeGreaterThanOrEqual(1);
  });
});

describe('reconnection backoff (virtual time)', () => {
  it('doubles the wait after each failed attempt, capped, and resets after a success', async () => {
    const clock = new VirtualClock();
    const attempts: number[] = [];
    let succeed = false;
    const fetch: FetchLike = async () => {
      attempts.push(clock.now());
      if (!succeed) throw new TypeError('connection refused');
      return new Response(new ReadableStream({ start: (c) => c.close() }), {
        headers: { 'Content-Type': 'text/event-stream' },
      });
    };
    const es = new EventSource('http://sse.test/', {
      fetch,
      clock,
      reconnectionTime: 1000,
      maxReconnectionTime: 5000,
    });
    const settle = async () => {
      for (let i = 0; i < 20; i++) await Promise.resolve();
    };
    await settle();
    for (let t = 0; t < 20_000; t += 500) {
      clock.advanceTo(t);
      await settle();
    }
    // Attempts at 0, then after 1 s, 2 s, 4 s, then 5 s (the cap) each time.
    expect(attempts.slice(0, 6)).toEqual([0, 1000, 3000, 7000, 12000, 17000]);
    succeed = true;
    clock.advanceTo(22_000);
    await settle();
    // The stream opened and ended at once: the next wait is back to 1 s.
    expect(attempts.at(-1)).toBe(22_000);
    clock.advanceTo(23_000);
    await settle();
    expect(attempts.at(-1)).toBe(23_000);
    es.close();
    expect(es.stats.timersArmed).toBe(0);
  });
});
