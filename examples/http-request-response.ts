/**
 * Request-response on our HTTP/1.1 client and server, with the packet ladder.
 *
 * The client asks, waits, and the server answers — one exchange at a time.
 *
 * Host `client` runs our fetch (with a pool that keeps the connection alive), host `server`
 * our HTTP/1.1 server, both on our TCP over a simulated wire with 5 ms each way. The ladder
 * shows the TCP handshake once, then each request and its response a round trip apart on
 * the same connection (RFC 9112 §9.3 persistence), then the timeline of the three exchanges.
 *
 *   pnpm example http-request-response
 *   pnpm example http-request-response --tun    # root: real packets, the kernel routing (lib/stage.ts)
 */
import { fetch as httpFetch } from '@stepwire/http';
import { isMain, readBody, stage } from './lib/stage.ts';

export interface Exchange {
  request: string;
  status: number;
  body: string;
  sentAt: number;
  answeredAt: number;
}

export async function run(o: { seed?: number; print?: boolean; tun?: boolean } = {}) {
  const users: Record<string, string> = { '42': 'Ada', '7': 'Grace' };
  const s = stage(
    async (req, res) => {
      const body = await readBody(req);
      const user = /^\/users\/(\d+)$/.exec(req.url ?? '');
      if (req.method === 'GET' && user) {
        const name = users[user[1] ?? ''];
        res.writeHead(name ? 200 : 404, { 'content-type': 'text/plain' });
        res.end(name ?? 'no such user');
      } else if (req.method === 'POST' && req.url === '/echo') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(body);
      } else {
        res.writeHead(405).end();
      }
    },
    { seed: o.seed ?? 1, print: o.print ?? false, tun: o.tun ?? false, ladder: true },
  );
  try {
    const client = s.clients[0];
    if (!client) throw new Error('no client');
    const agent = s.agent(client);
    const exchanges: Exchange[] = [];
    const ask = async (method: string, path: string, body?: string) => {
      const sentAt = s.now();
      s.log('client', `→ ${method} ${path}`);
      const r = await s.net.run(
        fetch(method, path, body).then(async (res) => ({ status: res.status, body: await res.text() })),
      );
      s.log('client', `← ${r.status} ${r.body}`);
      exchanges.push({ request: `${method} ${path}`, ...r, sentAt, answeredAt: s.now() });
    };
    const fetch = (method: string, path: string, body?: string) =>
      httpFetch(s.url(path), { method, agent, ...(body !== undefined ? { body } : {}) });
    await ask('GET', '/users/42');
    await ask('POST', '/echo', 'hello, server');
    await ask('GET', '/users/1');
    const pool = Object.values(agent.stats().origins)[0];
    if (o.print) console.log(`3 exchanges on ${pool?.created} connection(s), ${pool?.reused} reused`);
    return { exchanges, connections: pool?.created ?? 0, reused: pool?.reused ?? 0, timeline: s.timeline };
  } finally {
    await s.close();
  }
}

if (isMain(import.meta.url)) await run({ print: true, tun: process.argv.includes('--tun') });
