/**
 * Short polling: the client asks every second, and mostly hears nothing new.
 *
 * The client asks "anything new?" every second and the server answers at once,
 * usually with nothing.
 *
 * The server's feed gets messages at 1.5 s, 2.6 s and 5.2 s. Each poll is a full request and
 * response (`GET /messages?since=N`); most come back empty (204 No Content), and a message
 * waits on the server until the next poll comes by — up to one interval of latency, paid
 * for with requests that carry nothing. Compare http-long-polling and http-sse-push.
 *
 *   pnpm example http-short-polling
 *   pnpm example http-short-polling --tun    # root: real packets, the kernel routing (lib/stage.ts)
 */
import { poll, printLatencies, type Received } from './lib/feed.ts';
import { isMain, stage } from './lib/stage.ts';

export const PUBLISH_AT = [1500, 2600, 5200];

export async function run(
  o: { seed?: number; print?: boolean; tun?: boolean; interval?: number; until?: number } = {},
) {
  const interval = o.interval ?? 1000;
  const until = o.until ?? 6000;
  const feed: { id: number; text: string; at: number }[] = [];
  const s = stage(
    (req, res) => {
      const since = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('since') ?? '0');
      const fresh = feed.filter((m) => m.id > since);
      if (fresh.length === 0) res.writeHead(204).end();
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(fresh));
    },
    { seed: o.seed ?? 1, print: o.print ?? false, tun: o.tun ?? false },
  );
  try {
    for (const [i, at] of PUBLISH_AT.entries())
      s.at(at, () => {
        feed.push({ id: i + 1, text: `message ${i + 1}`, at: s.now() });
        s.log('server', `published message ${i + 1}`);
      });
    const client = s.clients[0];
    if (!client) throw new Error('no client');
    const agent = s.agent(client);
    let since = 0;
    let polls = 0;
    let empty = 0;
    const received: Received[] = [];
    // A poll every interval on the client's clock (not an interval after the last answer):
    // a slow answer does not push the later polls back.
    for (let at = interval; at <= until; at += interval) {
      await s.net.run(Math.max(0, at - s.now()));
      polls++;
      s.log('client', `→ GET /messages?since=${since}`);
      const r = await poll(s, agent, since);
      if (r.status === 204) empty++;
      for (const m of r.body) {
        received.push({ id: m.id, publishedAt: m.at, receivedAt: s.now() });
        since = Math.max(since, m.id);
      }
      s.log(
        'client',
        `poll ${polls}: ${r.status}${r.body.length ? ` ${r.body.map((m) => `#${m.id}`).join(' ')}` : ''}`,
      );
    }
    if (o.print) {
      console.log(`${polls} polls, ${empty} empty`);
      printLatencies(received);
    }
    return { polls, empty, received, timeline: s.timeline };
  } finally {
    await s.close();
  }
}

if (isMain(import.meta.url)) await run({ print: true, tun: process.argv.includes('--tun') });
