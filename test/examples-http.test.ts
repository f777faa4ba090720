/**
 * The HTTP pattern examples (examples/http-*.ts), part 1: each example's run() is imported
 * and what it returns — times on the virtual clock, statuses, who got what — is checked
 * against the behaviour the example's header promises. Links delay 5 ms each way, so a
 * round trip between two hosts is 10 ms.
 */
import { describe, expect, it } from 'vitest';
import { run as asyncJob } from '../examples/http-async-job.ts';
import { HOLD_MS, PUBLISH_AT as LONG_AT, run as longPolling } from '../examples/http-long-polling.ts';
import { run as requestResponse } from '../examples/http-request-response.ts';
import { PUBLISH_AT as SHORT_AT, run as shortPolling } from '../examples/http-short-polling.ts';
import { EVENTS_AT, run as ssePush } from '../examples/http-sse-push.ts';
import { run as chat, SCRIPT } from '../examples/http-websocket-chat.ts';

const RTT = 10;

describe('examples: HTTP patterns (1)', () => {
  it('every pattern example is deterministic by seed: the same seed, the same timeline to the millisecond', async () => {
    const runs = [requestResponse, asyncJob, shortPolling, longPolling, ssePush, chat];
    for (const run of runs) {
      const a = await run({ seed: 5 });
      const b = await run({ seed: 5 });
      expect(a.timeline.length).toBeGreaterThan(3);
      expect(b.timeline).toEqual(a.timeline);
    }
  });

  it('request-response: each answer one round trip after its request, on one kept-alive connection', async () => {
    const r = await requestResponse();
    expect(r.exchanges.map((x) => [x.request, x.status, x.body])).toEqual([
      ['GET /users/42', 200, 'Ada'],
      ['POST /echo', 200, 'hello, server'],
      ['GET /users/1', 404, 'no such user'],
    ]);
    // The first pays for the TCP handshake; the others reuse the connection.
    expect(r.exchanges.map((x) => x.answeredAt - x.sentAt)).toEqual([2 * RTT, RTT, RTT]);
    expect(r.connections).toBe(1);
    expect(r.reused).toBe(2);
  });

  it('async job: 202 with a status URL in one round trip, polled until done, while sync holds the request 3 s', async () => {
    const r = await asyncJob();
    expect(r.sync.body).toBe('thumbnail.png');
    expect(r.sync.ms).toBeGreaterThanOrEqual(3000);
    expect(r.async.status).toBe(202);
    expect(r.async.location).toBe('/jobs/1');
    expect(r.async.acceptMs).toBeLessThanOrEqual(2 * RTT);
    expect(r.async.result).toBe('thumbnail.png');
    // Retry-After: 1 → polls at ~1 s, 2 s, 3 s; the job (3 s) is done by the third.
    expect(r.async.polls).toBe(3);
    expect(r.async.ms).toBeGreaterThanOrEqual(3000);
    const polls = r.timeline.filter((m) => m.who === 'client' && m.text.startsWith('← 200 {'));
    expect(polls.map((m) => JSON.parse(m.text.slice(6)).state)).toEqual(['running', 'running', 'done']);
  });

  it('short polling: most polls come back empty, and a message waits for the next poll', async () => {
    const r = await shortPolling();
    expect(r.received.map((m) => m.id)).toEqual([1, 2, 3]);
    expect(r.received.map((m) => m.publishedAt)).toEqual(SHORT_AT);
    expect(r.polls).toBe(6);
    expect(r.empty).toBe(3);
    // Each message is seen at the end of the first poll that starts after it was published.
    const pollEnds = r.timeline.filter((m) => m.text.startsWith('poll ')).map((m) => m.t);
    for (const m of r.received) {
      const end = pollEnds.find((t) => t - RTT >= m.publishedAt);
      expect(m.receivedAt).toBe(end);
      expect(m.receivedAt - m.publishedAt).toBeGreaterThan(RTT);
    }
    expect(Math.max(...r.received.map((m) => m.receivedAt - m.publishedAt))).toBeGreaterThan(500);
  });

  it('long polling: the held response leaves the server at the instant of the publish, or 204 at the timeout', async () => {
    const r = await longPolling();
    const ok = r.answers.filter((a) => a.status === 200);
    expect(ok.map((a) => a.at)).toEqual(LONG_AT);
    const timeouts = r.answers.filter((a) => a.status === 204);
    expect(timeouts).toHaveLength(1);
    expect(timeouts[0]?.heldMs).toBe(HOLD_MS);
    // One-way delay only: no polling interval in the latency.
    expect(r.received.map((m) => m.receivedAt - m.publishedAt)).toEqual([5, 5, 5]);
    expect(r.polls).toBe(4);
  });

  it('SSE push: each event one link delay after it is sent; after the stream ends, Last-Event-ID resumes it with nothing lost or doubled', async () => {
    const r = await ssePush();
    expect(r.received.map((e) => e.id)).toEqual(['1', '2', '3', '4', '5', '6']);
    for (const e of r.received) expect(e.receivedAt - e.sentAt).toBe(5);
    expect(r.connections.map((c) => c.lastEventId)).toEqual(['', '3']);
    // The reconnection waits the server's retry: 500 (plus the new connection's round trips).
    const third = r.received[2]?.receivedAt ?? 0;
    expect(r.connections[1]?.at ?? 0).toBeGreaterThanOrEqual(third + 500);
    expect(r.received[3]?.sentAt).toBe((r.connections[1]?.at ?? 0) + (EVENTS_AT[0] ?? 0));
  });

  it('WebSocket chat: every member gets every message, in the server’s order, one link delay after the relay', async () => {
    const r = await chat();
    const expected = SCRIPT.map(([, from, text], i) => ({ seq: i + 1, from, text }));
    for (const name of ['alice', 'bob', 'carol']) {
      const lines = r.seen[name] ?? [];
      expect(lines.map(({ seq, from, text }) => ({ seq, from, text }))).toEqual(expected);
      for (const l of lines) expect(l.at).toBe((r.relayedAt[l.seq - 1] ?? -1) + 5);
    }
    // Pushed, not polled: each relay is one link delay after its sender spoke.
    expect(r.relayedAt).toEqual(SCRIPT.map(([at]) => at + 5));
  });
});
