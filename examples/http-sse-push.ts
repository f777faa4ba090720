/**
 * Server-Sent Events push, and the resume with Last-Event-ID after the stream ends.
 *
 * One long response (`text/event-stream`) on which the server
 * sends each event the moment it happens; the client resumes with `Last-Event-ID` after a
 * break (HTML Living Standard §9.2).
 *
 * The server pushes a price at 1 s, 1.5 s and 4 s, then ends the stream (a deploy, say). Our
 * EventSource reconnects after the `retry:` the server asked for (500 ms) and sends
 * `Last-Event-ID: 3`; the server carries on from event 4 — nothing lost, nothing twice.
 * Each event reaches the client one link delay (5 ms) after it is sent.
 *
 *   pnpm example http-sse-push
 *   pnpm example http-sse-push --tun    # root: real packets, the kernel routing (lib/stage.ts)
 */
import { EventSource, type FetchLike, fetch, lastEventIdOf, SseWriter } from '@stepwire/http';
import { isMain, stage } from './lib/stage.ts';

/** When each event is sent, ms after its stream opened; the first stream ends after event 3. */
export const EVENTS_AT = [1000, 1500, 4000];

export async function run(o: { seed?: number; print?: boolean; tun?: boolean } = {}) {
  const sent = new Map<string, number>();
  const connections: { at: number; lastEventId: string }[] = [];
  const s = stage(
    (req, res) => {
      const last = lastEventIdOf(req);
      connections.push({ at: s.now(), lastEventId: last });
      s.log('server', `stream opened${last ? ` (Last-Event-ID: ${last})` : ''}`);
      const sse = new SseWriter(res, { clock: s.net.clock, retry: 500, heartbeat: 0 });
      const first = Number(last || '0');
      const resumed = connections.length > 1;
      for (const [i, at] of EVENTS_AT.entries())
        s.after(at, () => {
          const id = String(first + i + 1);
          sent.set(id, s.now());
          s.log('server', `event ${id} →`);
          sse.send({ id, event: 'price', data: JSON.stringify({ id, eur: 100 + Number(id) }) });
          if (!resumed && i === EVENTS_AT.length - 1) {
            s.log('server', 'stream ends');
            sse.end();
          }
        });
    },
    { seed: o.seed ?? 1, print: o.print ?? false, tun: o.tun ?? false },
  );
  try {
    const client = s.clients[0];
    if (!client) throw new Error('no client');
    const agent = s.agent(client);
    const viaSim: FetchLike = (url, init) => fetch(url, { ...init, agent });
    const es = new EventSource(s.url('/prices'), { fetch: viaSim, clock: s.net.clock });
    const received: { id: string; data: string; sentAt: number; receivedAt: number }[] = [];
    es.addEventListener('price', (e) => {
      const m = e as Event & { lastEventId: string; data: string };
      received.push({
        id: m.lastEventId,
        data: m.data,
        sentAt: sent.get(m.lastEventId) ?? -1,
        receivedAt: s.now(),
      });
      s.log('client', `← event ${m.lastEventId} ${m.data}`);
    });
    es.onerror = () => s.log('client', 'stream lost, reconnecting');
    await s.net.run(() => received.length >= 2 * EVENTS_AT.length);
    es.close();
    return { received, connections, timeline: s.timeline };
  } finally {
    await s.close();
  }
}

if (isMain(import.meta.url)) await run({ print: true, tun: process.argv.includes('--tun') });
