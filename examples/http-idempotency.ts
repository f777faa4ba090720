/**
 * Idempotent POST with `Idempotency-Key`: a retry and concurrent copies charge once.
 *
 * A payment is charged once however many times the
 * request arrives (draft-ietf-httpapi-idempotency-key-header).
 *
 * The server remembers each key with a fingerprint of the request body and, once done, the
 * response. Stories on two simulated hosts: (0) a payment without a key is refused with
 * 400; (1) the client gives up waiting after
 * 100 ms and retries, twice — the first retry joins the charge still in progress, the
 * second gets the stored response at once; (2) three copies of one request race on three
 * connections — one charge, three identical answers; (3) the same key with another body is
 * refused with 422. `Idempotent-Replayed: true` marks stored answers.
 *
 *   pnpm example http-idempotency
 *   pnpm example http-idempotency --tun    # root: real packets, the kernel routing (lib/stage.ts)
 */
import { createHash } from 'node:crypto';
import { fetch } from '@stepwire/http';
import { isMain, readBody, stage } from './lib/stage.ts';

/** How long a charge takes at the payment provider. */
const CHARGE_MS = 300;

interface Stored {
  status: number;
  body: string;
}
type Entry =
  | { state: 'running'; fingerprint: string; waiters: ((r: Stored) => void)[] }
  | { state: 'done'; fingerprint: string; response: Stored };

export async function run(o: { seed?: number; print?: boolean; tun?: boolean } = {}) {
  const keys = new Map<string, Entry>();
  const charges: { key: string; at: number }[] = [];
  const s = stage(
    async (req, res) => {
      const body = (await readBody(req)).toString();
      const key = req.headers['idempotency-key'];
      const send = (r: Stored, replayed: boolean) =>
        res
          .writeHead(r.status, {
            'content-type': 'application/json',
            ...(replayed ? { 'idempotent-replayed': 'true' } : {}),
          })
          .end(r.body);
      if (typeof key !== 'string') {
        send({ status: 400, body: '{"error":"Idempotency-Key required"}' }, false);
        return;
      }
      const fingerprint = createHash('sha256').update(body).digest('hex');
      const seen = keys.get(key);
      if (seen && seen.fingerprint !== fingerprint) {
        // The key was used for another request: refuse rather than answer for the wrong one.
        s.log('server', `${key}: other body → 422`);
        send({ status: 422, body: '{"error":"Idempotency-Key reused with another request"}' }, false);
      } else if (seen?.state === 'done') {
        s.log('server', `${key}: stored response replayed`);
        send(seen.response, true);
      } else if (seen?.state === 'running') {
        // The draft allows 409 here; holding the copy until the first finishes gives every
        // caller the one outcome without another retry.
        s.log('server', `${key}: in progress, this copy waits for it`);
        seen.waiters.push((r) => send(r, true));
      } else {
        const entry: Entry = { state: 'running', fingerprint, waiters: [] };
        keys.set(key, entry);
        charges.push({ key, at: s.now() });
        const id = `pay_${charges.length}`;
        s.log('server', `${key}: charging ${body} as ${id}`);
        s.after(CHARGE_MS, () => {
          const response = { status: 201, body: JSON.stringify({ id, ...JSON.parse(body) }) };
          keys.set(key, { state: 'done', fingerprint, response });
          s.log('server', `${key}: charged, ${entry.waiters.length} waiting cop(ies) answered`);
          send(response, false);
          for (const w of entry.waiters) w(response);
        });
      }
    },
    { seed: o.seed ?? 1, print: o.print ?? false, tun: o.tun ?? false },
  );
  try {
    const client = s.clients[0];
    if (!client) throw new Error('no client');
    const agent = s.agent(client);
    const pay = async (key: string, amount: number, timeoutMs?: number) => {
      const controller = new AbortController();
      if (timeoutMs !== undefined) s.after(timeoutMs, () => controller.abort(new Error('client timeout')));
      s.log('client', `→ POST /payments ${key} ${amount} EUR`);
      try {
        const r = await fetch(s.url('/payments'), {
          method: 'POST',
          headers: { 'idempotency-key': key, 'content-type': 'application/json' },
          body: JSON.stringify({ amount }),
          signal: controller.signal,
          agent,
        });
        const out = {
          status: r.status,
          replayed: r.headers.get('idempotent-replayed') === 'true',
          body: await r.text(),
        };
        s.log('client', `← ${out.status}${out.replayed ? ' (replayed)' : ''} ${out.body}`);
        return out;
      } catch {
        s.log('client', `gave up on ${key} after ${timeoutMs} ms`);
        return { status: 0, replayed: false, body: '' };
      }
    };
    // (0) No key: refused. This also opens the pool's connection, so the 100 ms of story 1
    // are the server's time, not the handshake's (over TUN a busy machine can stall that long).
    s.log('client', '→ POST /payments (no Idempotency-Key) 10 EUR');
    const missing = await s.net.run(
      fetch(s.url('/payments'), { method: 'POST', body: JSON.stringify({ amount: 10 }), agent }).then(
        async (r) => ({ status: r.status, body: await r.text() }),
      ),
    );
    s.log('client', `← ${missing.status} ${missing.body}`);
    // (1) A timeout, then retries.
    const retries = [await s.net.run(pay('key-1', 40, 100))];
    retries.push(await s.net.run(pay('key-1', 40)));
    retries.push(await s.net.run(pay('key-1', 40)));
    // (2) Three copies at once.
    const concurrent = await s.net.run(Promise.all([pay('key-2', 75), pay('key-2', 75), pay('key-2', 75)]));
    // (3) The key again, another body.
    const mismatch = await s.net.run(pay('key-2', 99));
    const runs = (key: string) => charges.filter((c) => c.key === key).length;
    if (o.print)
      console.log(
        `key-1: ${retries.length} requests, ${runs('key-1')} charge; key-2: ${concurrent.length} concurrent requests, ${runs('key-2')} charge; reused key → ${mismatch.status}`,
      );
    return { missing, retries, concurrent, mismatch, charges, timeline: s.timeline };
  } finally {
    await s.close();
  }
}

if (isMain(import.meta.url)) await run({ print: true, tun: process.argv.includes('--tun') });
