/**
 * Publish/subscribe: a broker fans topics out to SSE and WebSocket subscribers, at least once.
 *
 * A broker with topics fans each message out to its subscribers — one on
 * Server-Sent Events, one on a WebSocket — and delivers at least once: a message stays
 * pending until its subscriber acknowledges it, and is sent again after 1 s without one.
 *
 * Four hosts: `broker`, `publisher` (POST /topics/:topic), `dashboard` (SSE stream of
 * `orders`, acknowledging with POST /ack) and `worker` (WebSocket subscribed to `orders` and
 * `prices`, acknowledging with an `{ack}` message). Two things go wrong on purpose: the
 * dashboard's acknowledgement of orders-1 is lost, so orders-1 comes again and is recognised
 * as a duplicate (at-least-once means subscribers deduplicate by id); the worker crashes on
 * its first copy of orders-2 before acknowledging, and the redelivery is what it processes.
 *
 *   pnpm example http-pubsub
 *   pnpm example http-pubsub --tun    # root: real packets, the kernel routing (lib/stage.ts)
 */
import { EventSource, type FetchLike, fetch, SseWriter, ws } from '@stepwire/http';
import type { Timer } from '@stepwire/wire';
import { isMain, readBody, stage } from './lib/stage.ts';

export const REDELIVER_MS = 1000;
const MAX_ATTEMPTS = 5;
export const PUBLISH: [number, string, string][] = [
  [100, 'orders', 'order 1: 2 × espresso'],
  [200, 'prices', 'espresso 2.40'],
  [300, 'orders', 'order 2: 1 × tea'],
  [400, 'prices', 'tea 2.10'],
];

interface Message {
  id: string;
  topic: string;
  data: string;
}
/** A subscriber as the broker sees it: how to push to it, what it has not acknowledged. */
interface Subscriber {
  name: string;
  topics: Set<string>;
  push(m: Message, attempt: number): void;
  pending: Map<string, Timer>;
}

export async function run(o: { seed?: number; print?: boolean; tun?: boolean } = {}) {
  const subscribers = new Map<string, Subscriber>();
  const deliveries: { subscriber: string; id: string; attempt: number; at: number }[] = [];
  const counts = new Map<string, number>();
  const deliver = (sub: Subscriber, m: Message, attempt: number) => {
    deliveries.push({ subscriber: sub.name, id: m.id, attempt, at: s.now() });
    s.log('broker', `${m.id} → ${sub.name}${attempt > 1 ? ` (attempt ${attempt})` : ''}`);
    sub.push(m, attempt);
    if (attempt < MAX_ATTEMPTS)
      sub.pending.set(
        m.id,
        s.after(REDELIVER_MS, () => deliver(sub, m, attempt + 1)),
      );
  };
  const ack = (name: string, id: string) => {
    const sub = subscribers.get(name);
    sub?.pending.get(id)?.cancel();
    if (sub?.pending.delete(id)) s.log('broker', `${name} acknowledged ${id}`);
  };
  const s = stage(
    async (req, res) => {
      const url = new URL(req.url ?? '/', 'http://broker');
      const topic = /^\/topics\/(\w+)$/.exec(url.pathname)?.[1];
      if (req.method === 'POST' && topic) {
        const n = (counts.get(topic) ?? 0) + 1;
        counts.set(topic, n);
        const m = { id: `${topic}-${n}`, topic, data: (await readBody(req)).toString() };
        const to = [...subscribers.values()].filter((x) => x.topics.has(topic));
        res
          .writeHead(201, { 'content-type': 'application/json' })
          .end(JSON.stringify({ id: m.id, subscribers: to.length }));
        for (const sub of to) deliver(sub, m, 1);
      } else if (req.method === 'GET' && url.pathname === '/events') {
        const name = url.searchParams.get('subscriber') ?? 'anonymous';
        const sse = new SseWriter(res, { clock: s.net.clock, heartbeat: 0 });
        subscribers.set(name, {
          name,
          topics: new Set(url.searchParams.getAll('topic')),
          pending: new Map(),
          push: (m, attempt) =>
            sse.send({ id: m.id, event: m.topic, data: JSON.stringify({ ...m, attempt }) }),
        });
        s.log('broker', `${name} subscribed over SSE`);
      } else if (req.method === 'POST' && url.pathname === '/ack') {
        const { subscriber, id } = JSON.parse((await readBody(req)).toString()) as Record<string, string>;
        ack(subscriber ?? '', id ?? '');
        res.writeHead(204).end();
      } else res.writeHead(404).end();
    },
    {
      seed: o.seed ?? 1,
      print: o.print ?? false,
      tun: o.tun ?? false,
      clients: ['publisher', 'dashboard', 'worker'],
    },
  );
  try {
    const wss = new ws.WebSocketServer({ server: s.http, path: '/ws', clock: s.net.clock });
    wss.on('connection', (peer: ws.WebSocket) => {
      let name = '';
      peer.on('message', (data: Buffer) => {
        const msg = JSON.parse(data.toString()) as { subscriber?: string; topics?: string[]; ack?: string };
        if (msg.subscriber && msg.topics) {
          name = msg.subscriber;
          subscribers.set(msg.subscriber, {
            name: msg.subscriber,
            topics: new Set(msg.topics),
            pending: new Map(),
            push: (m, attempt) => peer.send(JSON.stringify({ ...m, attempt })),
          });
          s.log('broker', `${msg.subscriber} subscribed over WebSocket`);
        } else if (msg.ack) {
          ack(name, msg.ack);
        }
      });
    });
    const [publisher, dashboard, worker] = s.clients;
    if (!publisher || !dashboard || !worker) throw new Error('hosts missing');

    // Subscribers keep the ids they processed: a second copy is acknowledged, not processed again.
    const processed: Record<string, string[]> = { dashboard: [], worker: [] };
    const duplicates: Record<string, string[]> = { dashboard: [], worker: [] };
    const receive = (who: 'dashboard' | 'worker', m: Message) => {
      if (processed[who]?.includes(m.id)) {
        duplicates[who]?.push(m.id);
        s.log(who, `${m.id} again: a duplicate, acknowledged and skipped`);
        return;
      }
      processed[who]?.push(m.id);
      s.log(who, `processed ${m.id}: ${m.data}`);
    };

    // The dashboard: EventSource over our fetch, acknowledgements by POST.
    const dashAgent = s.agent(dashboard);
    const viaDashboard: FetchLike = (url, init) => fetch(url, { ...init, agent: dashAgent });
    let lostAcks = 0;
    const es = new EventSource(s.url('/events?subscriber=dashboard&topic=orders'), {
      fetch: viaDashboard,
      clock: s.net.clock,
    });
    es.addEventListener('orders', (e) => {
      const m = JSON.parse((e as Event & { data: string }).data) as Message;
      receive('dashboard', m);
      if (m.id === 'orders-1' && lostAcks++ === 0) {
        s.log('dashboard', `acknowledgement of ${m.id} lost on the way`);
        return;
      }
      // Fire and forget: a lost ack is what redelivery is for (and at close, the pool may
      // drop one still in flight).
      fetch(s.url('/ack'), {
        method: 'POST',
        body: JSON.stringify({ subscriber: 'dashboard', id: m.id }),
        agent: dashAgent,
      }).catch(() => {});
    });

    // The worker: a WebSocket, acknowledgements as messages.
    const sock = ws.connectWebSocket(`ws://${s.server.ipv4}/ws`, {
      socket: worker.tcp.connect({ host: s.server.ipv4, port: 80 }),
      clock: s.net.clock,
    });
    let crashed = false;
    sock.on('open', () => sock.send(JSON.stringify({ subscriber: 'worker', topics: ['orders', 'prices'] })));
    sock.on('message', (data: Buffer) => {
      const m = JSON.parse(data.toString()) as Message;
      if (m.id === 'orders-2' && !crashed) {
        crashed = true;
        s.log('worker', `crashed handling ${m.id}, no acknowledgement`);
        return;
      }
      receive('worker', m);
      sock.send(JSON.stringify({ ack: m.id }));
    });
    await s.net.run(() => subscribers.size === 2);

    // The publisher.
    const pubAgent = s.agent(publisher);
    const taken = PUBLISH.map(
      ([at, topic, data]) =>
        new Promise<void>((resolve, reject) => {
          s.at(at, () => {
            s.log('publisher', `→ ${topic}: ${data}`);
            fetch(s.url(`/topics/${topic}`), { method: 'POST', body: data, agent: pubAgent }).then(
              () => resolve(),
              reject,
            );
          });
        }),
    );
    const pendingCount = () => [...subscribers.values()].reduce((n, x) => n + x.pending.size, 0);
    // Done when every publish was taken (the broker pushes before it answers) and every
    // delivery acknowledged, redeliveries included.
    await s.net.run(Promise.all(taken));
    await s.net.run(() => pendingCount() === 0);
    const redeliveries = deliveries.filter((d) => d.attempt > 1);
    if (o.print)
      console.log(
        `${deliveries.length} deliveries, ${redeliveries.length} redelivered; dashboard processed ${processed.dashboard?.join(', ')}; worker processed ${processed.worker?.join(', ')}`,
      );
    es.close();
    sock.close(1000);
    return { deliveries, redeliveries, processed, duplicates, pending: pendingCount(), timeline: s.timeline };
  } finally {
    await s.close();
  }
}

if (isMain(import.meta.url)) await run({ print: true, tun: process.argv.includes('--tun') });
