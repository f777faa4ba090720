/**
 * Long polling: each poll is held until a message is published, or answered 204 at a timeout.
 *
 * The client asks "anything new?" and the server holds the request open until
 * there is — answering at the very instant a message is published, or with 204 at a timeout.
 *
 * The feed gets messages at 1.5 s, 2.6 s and 9 s; the server holds each poll up to 5 s. Watch
 * each 200 leave the server at the exact virtual millisecond of the publish, the client ask
 * again at once, and the empty 204 at the 5 s timeout in the quiet stretch. Same feed as
 * http-short-polling, a fraction of the requests, and no interval of latency.
 *
 *   pnpm example http-long-polling
 *   pnpm example http-long-polling --tun    # root: real packets, the kernel routing (lib/stage.ts)
 */
import { poll, printLatencies, type Received } from './lib/feed.ts';
import { isMain, ms, stage } from './lib/stage.ts';

export const PUBLISH_AT = [1500, 2600, 9000];
export const HOLD_MS = 5000;

/** A held poll: answered by the next publish (200) or by its timer (204). */
interface Waiting {
  answer(status: 200 | 204): void;
}

export async function run(o: { seed?: number; print?: boolean; tun?: boolean } = {}) {
  const feed: { id: number; at: number }[] = [];
  const waiting = new Set<Waiting>();
  /**
   * When and how the server answered each poll, and how many messages the answer carried
   * (a poll that arrives after more than one publish takes them all at once).
   */
  const answers: { status: number; at: number; heldMs: number; messages: number }[] = [];
  const s = stage(
    (req, res) => {
      const since = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('since') ?? '0');
      const arrived = s.now();
      const news = () => feed.filter((m) => m.id > since);
      if (news().length > 0) {
        answers.push({ status: 200, at: arrived, heldMs: 0, messages: news().length });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(news()));
        return;
      }
      const timer = s.after(HOLD_MS, () => w.answer(204));
      const w: Waiting = {
        answer(status) {
          waiting.delete(w);
          timer.cancel();
          answers.push({
            status,
            at: s.now(),
            heldMs: s.now() - arrived,
            messages: status === 200 ? news().length : 0,
          });
          s.log('server', `→ ${status} after holding ${ms(s.now() - arrived)}`);
          if (status === 204) res.writeHead(204).end();
          else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(news()));
        },
      };
      waiting.add(w);
      res.on('close', () => {
        waiting.delete(w);
        timer.cancel();
      });
    },
    { seed: o.seed ?? 1, print: o.print ?? false, tun: o.tun ?? false },
  );
  try {
    for (const [i, at] of PUBLISH_AT.entries())
      s.at(at, () => {
        feed.push({ id: i + 1, at: s.now() });
        s.log('server', `published message ${i + 1}`);
        for (const w of [...waiting]) w.answer(200);
      });
    const client = s.clients[0];
    if (!client) throw new Error('no client');
    const agent = s.agent(client);
    let since = 0;
    let polls = 0;
    const received: Received[] = [];
    while (since < PUBLISH_AT.length) {
      polls++;
      s.log('client', `→ GET /messages?since=${since}`);
      const r = await poll(s, agent, since);
      for (const m of r.body) {
        received.push({ id: m.id, publishedAt: m.at, receivedAt: s.now() });
        since = Math.max(since, m.id);
      }
      s.log('client', `← ${r.status}${r.body.map((m) => ` #${m.id}`).join('')}`);
    }
    if (o.print) printLatencies(received);
    return { polls, answers, received, timeline: s.timeline };
  } finally {
    await s.close();
  }
}

if (isMain(import.meta.url)) await run({ print: true, tun: process.argv.includes('--tun') });
