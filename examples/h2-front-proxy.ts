/**
 * A front proxy: many HTTP/1.1 connections in, one multiplexed HTTP/2 connection out; and the reverse.
 *
 * h1→h2: client hosts `c1`…`cN` each fetch over their own pool of HTTP/1.1 connections
 * (maxSockets 2) to host `proxy` (our HTTP/1.1 server). The proxy forwards every request as
 * a stream on one h2 session to host `backend` (our h2 server): however many connections
 * come in, one goes out, and the backend sees every request on it (RFC 9113 §5: streams
 * are independent, so nothing waits for a free connection).
 *
 * h2→h1: the clients each open one h2 session to the proxy (our h2 server) and send all
 * their requests at once as streams; the proxy forwards each over a pool of at most 4
 * HTTP/1.1 connections (our client's Agent) to an HTTP/1.1-only backend. Requests past the
 * pool's size wait in its queue: HTTP/1.1 has one exchange in flight per connection
 * (RFC 9112 §9.3).
 *
 * The proxy drops the hop-by-hop fields (RFC 9110 §7.6.1, RFC 9113 §8.2.2), turns Host into
 * :authority and back (RFC 9113 §8.3.1), and adds Via (RFC 9110 §7.6.3). The backend
 * works 20 ms (virtual) on each request and answers with what it saw (method, path, the
 * client's x-request-id, the sha256 of the body); each client checks its answer against what
 * it sent. The backend's peak concurrency shows the difference: up to one request per
 * incoming connection on the one h2 connection, never more than the pool's 4 over HTTP/1.1.
 *
 * With `--tun` (root) every host sits on a TUN device of its own in one namespace and the
 * Linux kernel routes every packet between them (see lib/stage.ts); times are then real.
 *
 *   pnpm example h2-front-proxy
 *   pnpm example h2-front-proxy --clients 12 --loss 0.02
 *   pnpm example h2-front-proxy --tun
 */
import { createHash } from 'node:crypto';
import type { OutgoingHttpHeaders } from 'node:http';
import {
  Agent,
  type ClientResponse,
  createHttpServer,
  h2,
  fetch as httpFetch,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
} from '@stepwire/http';
import { createNetwork, type NetHost, type Network } from '@stepwire/sim';
import { isMain, tunHosts } from './lib/stage.ts';

/** Pool size of each client (h1→h2) and of the proxy towards the backend (h2→h1). */
export const CLIENT_SOCKETS = 2;
export const PROXY_POOL = 4;
/** Virtual ms the backend works on each request. */
export const WORK_MS = 20;

export interface RunOptions {
  seed?: number;
  /** Client hosts. */
  clients?: number;
  /** Requests each client sends, all at once. */
  requestsPerClient?: number;
  /** One-way delay of every link, ms. */
  delay?: number;
  loss?: number;
  /** Virtual ms the backend works on each request (default WORK_MS). */
  workMs?: number;
  print?: boolean;
  /** Over TUN (root): the kernel routes between the hosts; real time. */
  tun?: boolean;
}

export interface DirectionOutcome {
  direction: 'h1→h2' | 'h2→h1';
  /** TCP connections the proxy accepted from clients. */
  inbound: number;
  /** TCP connections the backend accepted from the proxy. */
  outbound: number;
  /** Requests sent by clients. */
  requests: number;
  /** Answers whose status, id, method, path and body hash matched the request. */
  matched: number;
  /** One line per answer that did not match (empty when all did). */
  mismatches: string[];
  /** Requests the backend answered. */
  backendRequests: number;
  /** Protocol versions the backend saw ('1.1', '2.0'). */
  backendVersions: string[];
  /** Via values the backend saw (the proxy's stamp, RFC 9110 §7.6.3). */
  backendVia: string[];
  /** Most requests the backend held at once (on one h2 connection, or across the pool). */
  backendConcurrency: number;
  /** Virtual ms from the first request to the last answer. */
  ms: number;
}

/** What the backend saw, returned as the response body. */
export interface Seen {
  method: string;
  path: string;
  id: string;
  sha256: string;
  length: number;
  version: string;
  via: string;
}

export interface Sent {
  id: string;
  method: 'GET' | 'POST';
  path: string;
  body: Buffer;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** RFC 9110 §7.6.1 and RFC 9113 §8.2.2: fields for one connection only, never forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'host',
]);

/** Request c of client k: GETs and POSTs with bodies of a few KiB, all different. */
function requestsOf(k: number, n: number): Sent[] {
  return Array.from({ length: n }, (_, c) => {
    const id = `c${k}-${c}`;
    const post = (k + c) % 2 === 0;
    const body = post ? Buffer.alloc(512 + ((k * 977 + c * 331) % 4096), `${id};`) : Buffer.alloc(0);
    return { id, method: post ? 'POST' : 'GET', path: `/items/${k}/${c}?q=${id}`, body };
  });
}

function readAll(r: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    r.on('data', (c: Buffer) => parts.push(c));
    r.on('end', () => resolve(Buffer.concat(parts)));
    r.on('error', reject);
  });
}

/**
 * The backend's handler, the same for h2 and HTTP/1.1 (our servers share the (req, res)
 * shape): it reads the body, works `workMs` of virtual time, and answers with what it saw.
 */
function backendHandler(w: World, workMs: number) {
  let active = 0;
  return async (req: IncomingMessage, res: ServerResponse) => {
    active++;
    w.maxConcurrent = Math.max(w.maxConcurrent, active);
    res.on('close', () => active--);
    const body = await readAll(req);
    await new Promise<void>((r) => w.net.clock.setTimer(w.net.clock.now() + workMs, r));
    const one = (n: string) => String(req.headers[n] ?? '');
    const seen: Seen = {
      method: req.method,
      path: req.url,
      id: one('x-request-id'),
      sha256: sha(body),
      length: body.length,
      version: req.httpVersion,
      via: one('via'),
    };
    w.seen.push(seen);
    const out = Buffer.from(JSON.stringify(seen));
    res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': seen.id });
    res.end(out);
  };
}

/** Why an answer does not fit its request, or undefined when it does. */
export function check(sent: Sent, status: number, idHeader: string, body: Buffer): string | undefined {
  if (status !== 200) return `${sent.id}: status ${status}`;
  if (idHeader !== sent.id) return `${sent.id}: x-request-id ${idHeader}`;
  let seen: Seen;
  try {
    seen = JSON.parse(body.toString()) as Seen;
  } catch {
    return `${sent.id}: body is not the backend's JSON`;
  }
  if (seen.id !== sent.id || seen.method !== sent.method || seen.path !== sent.path)
    return `${sent.id}: answer for ${seen.method} ${seen.path} (${seen.id})`;
  if (seen.sha256 !== sha(sent.body)) return `${sent.id}: body hash differs`;
  return undefined;
}

interface World {
  net: Network;
  proxy: NetHost;
  backend: NetHost;
  clients: NetHost[];
  inbound: number;
  outbound: number;
  seen: Seen[];
  /** Most requests the backend held at once. */
  maxConcurrent: number;
}

function world(o: RunOptions): World {
  const link = { delay: o.delay ?? 5, loss: o.loss ?? 0 };
  const names = ['backend', ...Array.from({ length: o.clients ?? 8 }, (_, k) => `c${k + 1}`)];
  if (o.tun) {
    const net = createNetwork({ seed: o.seed ?? 1, clock: 'real' });
    const {
      server: proxy,
      clients: [backend, ...clients],
    } = tunHosts(net, names, link, 'proxy');
    if (!backend) throw new Error('no backend host');
    return { net, proxy, backend, clients, inbound: 0, outbound: 0, seen: [], maxConcurrent: 0 };
  }
  const net = createNetwork({ seed: o.seed ?? 1, link });
  const [proxy, backend, ...clients] = ['proxy', ...names].map((n) => net.host(n));
  if (!proxy || !backend) throw new Error('hosts missing');
  return { net, proxy, backend, clients, inbound: 0, outbound: 0, seen: [], maxConcurrent: 0 };
}

/** A direction on a world of its own, closed (over TUN: the namespace removed) also on failure. */
async function inWorld(
  o: RunOptions,
  direction: (w: World, o: RunOptions) => Promise<DirectionOutcome>,
): Promise<DirectionOutcome> {
  const w = world(o);
  try {
    return await direction(w, o);
  } finally {
    w.net.close();
  }
}

/** Headers of an HTTP/1.1 request as an h2 request's (RFC 9113 §8.3.1). */
function toH2Request(req: IncomingMessage, authority: string): h2.Http2OutgoingHeaders {
  const h: h2.Http2OutgoingHeaders = {
    ':method': req.method,
    ':path': req.url,
    ':scheme': 'http',
    ':authority': authority,
  };
  for (const [n, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(n) && v !== undefined) h[n] = v;
  h.via = `${req.httpVersion} proxy`;
  return h;
}

/** h1 in, one h2 connection out. */
async function h1ToH2(w: World, o: RunOptions): Promise<DirectionOutcome> {
  const { net, proxy, backend } = w;
  // Backend: our h2 server with the (req, res) handler.
  const h2Backend = h2.createCompatHttp2Server(backendHandler(w, o.workMs ?? WORK_MS), { clock: net.clock });
  const backendTcp = backend.tcp.createServer((socket) => {
    w.outbound++;
    h2Backend.handle(socket);
  });
  backendTcp.listen(80);

  // Proxy: one h2 session to the backend, opened on first use and again only if it closes.
  let session: h2.Http2Session | undefined;
  const upstream = (): h2.Http2Session => {
    if (session && !session.closed) return session;
    const s = h2.connectHttp2(`http://${backend.ipv4}`, {
      clock: net.clock,
      createConnection: () => proxy.tcp.connect({ host: backend.ipv4, port: 80 }),
    });
    s.on('error', () => {});
    session = s;
    return s;
  };
  const front = createHttpServer({ clock: net.clock, hostName: 'proxy', http2: false }, (req, res) => {
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    const stream = upstream().request(toH2Request(req, backend.ipv4), { endStream: !hasBody });
    if (hasBody) req.pipe(stream);
    stream.on('response', (h: h2.Http2IncomingHeaders) => {
      const headers: OutgoingHttpHeaders = {};
      for (const [n, v] of Object.entries(h)) if (!n.startsWith(':') && v !== undefined) headers[n] = v;
      res.writeHead(Number(h[':status']), headers);
      stream.pipe(res);
    });
    stream.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
  });
  const frontTcp = proxy.tcp.createServer((socket) => {
    w.inbound++;
    front.handle(socket);
  });
  frontTcp.listen(80);

  // Clients: each its own pool of HTTP/1.1 connections to the proxy, every request at once.
  const agents = w.clients.map(
    (host) =>
      new Agent({
        clock: net.clock,
        maxSockets: CLIENT_SOCKETS,
        connect: () => {
          const s = host.tcp.connect({ host: proxy.ipv4, port: 80 });
          s.setNoDelay(true);
          return s;
        },
      }),
  );
  const start = net.clock.now();
  const all = w.clients.flatMap((_, k) => requestsOf(k + 1, o.requestsPerClient ?? 6).map((s) => ({ k, s })));
  const results = await net.run(
    Promise.all(
      all.map(async ({ k, s }) => {
        const init: Parameters<typeof httpFetch>[1] = {
          method: s.method,
          headers: { 'x-request-id': s.id },
        };
        if (s.method === 'POST') init.body = s.body;
        if (agents[k]) init.agent = agents[k];
        const res = await httpFetch(`http://${proxy.ipv4}${s.path}`, init);
        const body = Buffer.from(await res.arrayBuffer());
        return check(s, res.status, res.headers.get('x-request-id') ?? '', body);
      }),
    ),
  );
  const ms = net.clock.now() - start;
  for (const a of agents) a.destroy();
  session?.close();
  front.close();
  frontTcp.close();
  h2Backend.close();
  backendTcp.close();
  await net.run(() => true);
  net.close();
  return outcome('h1→h2', w, all.length, results, ms);
}

/** h2 in, a pool of HTTP/1.1 connections out. */
async function h2ToH1(w: World, o: RunOptions): Promise<DirectionOutcome> {
  const { net, proxy, backend } = w;
  // Backend: our HTTP/1.1 server, h2 turned off (an old backend).
  const h1Backend = createHttpServer(
    { clock: net.clock, hostName: 'backend', http2: false },
    backendHandler(w, o.workMs ?? WORK_MS),
  );
  const backendTcp = backend.tcp.createServer((socket) => {
    w.outbound++;
    h1Backend.handle(socket);
  });
  backendTcp.listen(80);

  // Proxy: our h2 server in front; each stream becomes a request on the pool.
  const pool = new Agent({
    clock: net.clock,
    maxSockets: PROXY_POOL,
    connect: () => {
      const s = proxy.tcp.connect({ host: backend.ipv4, port: 80 });
      s.setNoDelay(true);
      return s;
    },
  });
  const front = h2.createHttp2Server({ clock: net.clock }, (stream, headers) => {
    const headersOut: OutgoingHttpHeaders = {};
    for (const [n, v] of Object.entries(headers))
      if (!n.startsWith(':') && !HOP_BY_HOP.has(n) && v !== undefined) headersOut[n] = v;
    headersOut.host = String(headers[':authority'] ?? backend.ipv4);
    headersOut.via = '2.0 proxy';
    const method = String(headers[':method']);
    const upstream = httpRequest({
      hostname: backend.ipv4,
      port: 80,
      method,
      path: String(headers[':path']),
      headers: headersOut,
      agent: pool,
      setHost: false,
    });
    upstream.on('response', (res: ClientResponse) => {
      const h: h2.Http2OutgoingHeaders = { ':status': res.statusCode };
      for (const [n, v] of Object.entries(res.headers)) if (!HOP_BY_HOP.has(n) && v !== undefined) h[n] = v;
      stream.respond(h);
      res.pipe(stream);
    });
    upstream.on('error', () => {
      if (!stream.headersSent) stream.respond({ ':status': 502 }, { endStream: true });
      else stream.close(h2.Http2ErrorCode.INTERNAL_ERROR);
    });
    stream.pipe(upstream);
  });
  const frontTcp = proxy.tcp.createServer((socket) => {
    w.inbound++;
    front.handle(socket);
  });
  frontTcp.listen(80);

  // Clients: one h2 session each, every request at once as its own stream.
  const sessions = w.clients.map((host) =>
    h2.connectHttp2(`http://${proxy.ipv4}`, {
      clock: net.clock,
      createConnection: () => host.tcp.connect({ host: proxy.ipv4, port: 80 }),
    }),
  );
  const start = net.clock.now();
  const all = w.clients.flatMap((_, k) => requestsOf(k + 1, o.requestsPerClient ?? 6).map((s) => ({ k, s })));
  const results = await net.run(
    Promise.all(
      all.map(
        ({ k, s }) =>
          new Promise<string | undefined>((resolve, reject) => {
            const session = sessions[k];
            if (!session) throw new Error(`no session for client ${k}`);
            const post = s.method === 'POST';
            const stream = session.request(
              { ':method': s.method, ':path': s.path, 'x-request-id': s.id },
              { endStream: !post },
            );
            if (post) stream.end(s.body);
            let status = 0;
            let id = '';
            stream.on('response', (h: h2.Http2IncomingHeaders) => {
              status = Number(h[':status']);
              id = String(h['x-request-id'] ?? '');
            });
            readAll(stream).then((body) => resolve(check(s, status, id, body)), reject);
          }),
      ),
    ),
  );
  const ms = net.clock.now() - start;
  for (const s of sessions) s.close();
  pool.destroy();
  front.close();
  frontTcp.close();
  h1Backend.close();
  backendTcp.close();
  await net.run(() => true);
  net.close();
  return outcome('h2→h1', w, all.length, results, ms);
}

function outcome(
  direction: DirectionOutcome['direction'],
  w: World,
  requests: number,
  results: (string | undefined)[],
  ms: number,
): DirectionOutcome {
  const mismatches = results.filter((r): r is string => r !== undefined);
  return {
    direction,
    inbound: w.inbound,
    outbound: w.outbound,
    requests,
    matched: results.length - mismatches.length,
    mismatches,
    backendRequests: w.seen.length,
    backendVersions: [...new Set(w.seen.map((s) => s.version))].sort(),
    backendVia: [...new Set(w.seen.map((s) => s.via))].sort(),
    backendConcurrency: w.maxConcurrent,
    ms,
  };
}

export async function run(
  o: RunOptions = {},
): Promise<{ h1ToH2: DirectionOutcome; h2ToH1: DirectionOutcome }> {
  const a = await inWorld(o, h1ToH2);
  const b = await inWorld(o, h2ToH1);
  if (o.print) {
    const n = o.clients ?? 8;
    console.log(
      `${n} client hosts, ${o.requestsPerClient ?? 6} requests each, all at once; the backend works ${o.workMs ?? WORK_MS} ms on each\n`,
    );
    for (const r of [a, b]) {
      const [inP, outP] = r.direction === 'h1→h2' ? ['HTTP/1.1', 'h2'] : ['h2', 'HTTP/1.1'];
      console.log(`${r.direction}`);
      console.log(`  clients → proxy   ${String(r.inbound).padStart(3)} TCP connection(s), ${inP}`);
      console.log(`  proxy → backend   ${String(r.outbound).padStart(3)} TCP connection(s), ${outP}`);
      console.log(
        `  backend answered  ${r.backendRequests} requests (HTTP/${r.backendVersions.join(', ')}), at most ${r.backendConcurrency} at once`,
      );
      console.log(
        `  responses matched ${r.matched}/${r.requests} in ${r.ms.toFixed(1)} ${o.tun ? 'real' : 'virtual'} ms`,
      );
      for (const m of r.mismatches) console.log(`  MISMATCH ${m}`);
      console.log('');
    }
  }
  return { h1ToH2: a, h2ToH1: b };
}

if (isMain(import.meta.url)) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(`--${name}`);
    const v = i >= 0 ? process.argv[i + 1] : undefined;
    return v === undefined ? undefined : Number(v);
  };
  const opts: RunOptions = { print: true, tun: process.argv.includes('--tun') };
  for (const k of ['seed', 'clients', 'requestsPerClient', 'delay', 'loss', 'workMs'] as const) {
    const v = arg(k);
    if (v !== undefined) opts[k] = v;
  }
  const r = await run(opts);
  if (r.h1ToH2.mismatches.length + r.h2ToH1.mismatches.length > 0) process.exitCode = 1;
}
