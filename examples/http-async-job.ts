/**
 * Synchronous vs asynchronous work: a 3-second job held open (200), or accepted (202) and polled.
 *
 * The same 3-second job, once held open until done (200)
 * and once accepted at once (202 Accepted, RFC 9110 §15.3.3) with a status URL to poll.
 *
 * The synchronous client waits the whole 3 s with its request open; the asynchronous one has
 * its answer in one round trip, `Location: /jobs/1` and `Retry-After: 1` (RFC 9110 §10.2.3),
 * then polls the status URL each second until the job reports done — time it could spend on
 * other work. Everything on the virtual clock of two simulated hosts.
 *
 *   pnpm example http-async-job
 *   pnpm example http-async-job --tun    # root: real packets, the kernel routing (lib/stage.ts)
 */
import { fetch } from '@stepwire/http';
import { isMain, ms, stage } from './lib/stage.ts';

const JOB_MS = 3000;

export async function run(o: { seed?: number; print?: boolean; tun?: boolean } = {}) {
  const jobs: { state: 'running' | 'done'; result?: string }[] = [];
  const s = stage(
    (req, res) => {
      const job = /^\/jobs\/(\d+)$/.exec(req.url ?? '');
      if (req.method === 'POST' && req.url === '/sync/thumbnail') {
        s.log('server', 'working, request held open');
        s.after(JOB_MS, () => {
          s.log('server', 'done → 200');
          res.writeHead(200, { 'content-type': 'text/plain' }).end('thumbnail.png');
        });
      } else if (req.method === 'POST' && req.url === '/jobs') {
        const id = jobs.push({ state: 'running' });
        s.after(JOB_MS, () => {
          jobs[id - 1] = { state: 'done', result: 'thumbnail.png' };
          s.log('server', `job ${id} done`);
        });
        s.log('server', `job ${id} queued → 202`);
        res.writeHead(202, { location: `/jobs/${id}`, 'retry-after': '1' }).end();
      } else if (req.method === 'GET' && job) {
        const j = jobs[Number(job[1]) - 1];
        if (!j) res.writeHead(404).end();
        else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(j));
      } else res.writeHead(404).end();
    },
    { seed: o.seed ?? 1, print: o.print ?? false, tun: o.tun ?? false },
  );
  try {
    const client = s.clients[0];
    if (!client) throw new Error('no client');
    const agent = s.agent(client);

    // Synchronous: one request, open for the whole job.
    const syncStart = s.now();
    s.log('client', '→ POST /sync/thumbnail');
    const syncBody = await s.net.run(
      fetch(s.url('/sync/thumbnail'), { method: 'POST', agent }).then((r) => r.text()),
    );
    const syncMs = s.now() - syncStart;
    s.log('client', `← 200 ${syncBody} after ${ms(syncMs)}`);

    // Asynchronous: accepted at once, then polled.
    const asyncStart = s.now();
    s.log('client', '→ POST /jobs');
    const accepted = await s.net.run(fetch(s.url('/jobs'), { method: 'POST', agent }));
    const acceptMs = s.now() - asyncStart;
    const location = accepted.headers.get('location') ?? '';
    const retryAfter = Number(accepted.headers.get('retry-after') ?? '1') * 1000;
    s.log('client', `← ${accepted.status} Location: ${location} after ${ms(acceptMs)}`);
    let polls = 0;
    let result: { state: string; result?: string } = { state: 'running' };
    while (result.state !== 'done') {
      await s.net.run(retryAfter);
      polls++;
      s.log('client', `→ GET ${location}`);
      result = await s.net.run(
        fetch(s.url(location), { agent }).then((r) => r.json() as Promise<typeof result>),
      );
      s.log('client', `← 200 ${JSON.stringify(result)}`);
    }
    const asyncMs = s.now() - asyncStart;
    if (o.print)
      console.log(
        `sync: answered after ${ms(syncMs)}; async: accepted after ${ms(acceptMs)}, done after ${ms(asyncMs)} and ${polls} polls`,
      );
    return {
      sync: { ms: syncMs, body: syncBody },
      async: { status: accepted.status, location, acceptMs, polls, ms: asyncMs, result: result.result },
      timeline: s.timeline,
    };
  } finally {
    await s.close();
  }
}

if (isMain(import.meta.url)) await run({ print: true, tun: process.argv.includes('--tun') });
