/**
 * Head-of-line blocking: 50 small resources over 6 HTTP/1.1 connections vs one HTTP/2 connection.
 *
 * A page needs 50 small resources (1–8 KiB each). Host `browser` fetches them all at once from
 * host `server` (our HTTP/1.1 server for (a), our h2 server for (b), h2c with prior knowledge):
 *
 *   (a) HTTP/1.1: our fetch over an Agent with maxSockets 6, as browsers do (6 connections
 *       per origin). Each connection carries one request at a time (RFC 9112 §9.3), so the
 *       other 44 wait in the pool's queue, and a lost segment on one connection holds back
 *       only that connection's response.
 *   (b) HTTP/2: one session, 50 streams opened at once (RFC 9113 §5). Nothing waits for a
 *       free connection, but every stream shares one TCP byte stream: a lost segment holds
 *       back every response behind it until TCP repairs the hole (TCP head-of-line blocking,
 *       the reason for QUIC).
 *
 * Both run on the same seeded wire, once clean and once lossy (30 ms each way, so a 60 ms
 * round trip, and 2% loss),
 * and print side by side: virtual time from the first request to the last byte, TCP
 * connections the server accepted, and TCP retransmissions on both sides. Every body is
 * checked against the server's sha256. On the clean link HTTP/1.1 finishes in waves of six,
 * a round trip apart; h2 in waves that grow with TCP's congestion window (RFC 5681 slow
 * start), all on one connection. Which one wins on the lossy link depends on where the
 * losses fall (try other seeds): the clean link shows the cost of queueing, the lossy one
 * the cost of one shared byte stream.
 *
 * With `--tun` (root) the two hosts sit on TUN devices in a namespace, the Linux kernel
 * routing every packet between them (see lib/stage.ts); the delay and loss are applied in
 * user space as each host sends, and times are real.
 *
 *   pnpm example h2-head-of-line
 *   pnpm example h2-head-of-line --seed 7 --loss 0.05 --delay 50
 *   pnpm example h2-head-of-line --tun
 */
import { createHash } from 'node:crypto';
import { Agent, createHttpServer, h2, fetch as httpFetch } from '@stepwire/http';
import { createNetwork } from '@stepwire/sim';
import type { TcpSocket } from '@stepwire/tcp';
import { isMain, tunHosts } from './lib/stage.ts';

/** How many resources the page needs. */
export const RESOURCES = 50;
/** Connections per origin a browser opens for HTTP/1.1. */
export const MAX_SOCKETS = 6;

/** Resource i: 1–8 KiB of bytes that depend on i, so a body delivered to the wrong request shows. */
export function resource(i: number): Buffer {
  const size = 1024 + ((i * 1543) % (7 * 1024));
  const b = Buffer.alloc(size);
  for (let k = 0; k < size; k++) b[k] = (i * 31 + k * 7) & 0xff;
  return b;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export interface Outcome {
  protocol: 'http/1.1' | 'h2';
  /** Virtual ms from the first request to the last byte of the last resource. */
  ms: number;
  /** TCP connections the server accepted over the whole run. */
  connections: number;
  /**
   * The most TCP connections the browser held open at once (counted as each is dialed). The
   * pool's limit is on this, as a browser's is: a connection that dies is replaced for the
   * requests still queued, so `connections` over a run can exceed `MAX_SOCKETS` — for
   * example when the server's keep-alive timeout (5 s) closes a connection whose next request
   * is still on its way (lost and waiting for TCP's retransmission, or in real time held up
   * by a stalled event loop), and the client sends that GET again on a new connection
   * (RFC 9112 §9.3.1).
   */
  maxOpen: number;
  /** IP packets that crossed the wire, and those the lossy link dropped. */
  packets: number;
  lost: number;
  /** TCP retransmissions (RTO, fast retransmit, tail loss probes), both sides. */
  retransmits: number;
  /** Resources whose body matched the server's sha256 and whose status was 200. */
  intact: number;
  /** Virtual ms at which each resource's last byte arrived (index = resource). */
  doneAt: number[];
}

export interface LinkSetting {
  /** One-way delay, ms (applied once on each path: a round trip is 2 × delay). */
  delay: number;
  loss: number;
}

export interface Comparison {
  link: LinkSetting;
  h1: Outcome;
  h2: Outcome;
}

export interface RunOptions {
  seed?: number;
  /** The lossy link; the clean one has the same delay and no loss. */
  delay?: number;
  loss?: number;
  print?: boolean;
  /** Over TUN (root): the kernel routes between the two hosts; real time. */
  tun?: boolean;
}

/** One side of the comparison on a fresh network: the server, the browser, and TCP's counters. */
function setup(protocol: Outcome['protocol'], seed: number, link: LinkSetting, tun: boolean) {
  // The ladder's lines are only counted: IP packets, and the wire's drops (packets the link
  // lost). Over TUN a packet shows twice, as a host sends it and as the kernel hands it on:
  // count it once, as sent.
  let lost = 0;
  let packets = 0;
  const trace = (line: string) => {
    if (line.includes('drop.loss')) lost++;
    else if (/ IPv[46] /.test(line) && !line.includes('kernel→')) packets++;
  };
  const impairments = { delay: link.delay, loss: link.loss };
  const net = tun
    ? createNetwork({ seed, clock: 'real', trace })
    : createNetwork({ seed, link: impairments, trace });
  const { server, clients } = tun
    ? tunHosts(net, ['browser'], impairments)
    : { server: net.host('server'), clients: [net.host('browser')] };
  const browser = clients[0];
  if (!browser) throw new Error('no browser host');
  const bodies = Array.from({ length: RESOURCES }, (_, i) => resource(i));
  const lookup = (path: string) => {
    const m = /^\/r\/(\d+)$/.exec(path);
    return m ? bodies[Number(m[1])] : undefined;
  };
  // HTTP/1.1: our HTTP/1.1 server. h2: our h2 server's streams directly (stream.respond and
  // end(body): the last DATA frame carries END_STREAM). The HTTP/1.1 server would answer h2
  // too, by the preface, but its (req, res) layer ends each h2 response with a separate
  // END_STREAM frame queued behind every other response's data, so every stream would look
  // done only at the very end; this comparison is about the protocols, not that layer.
  const app: { handle(socket: TcpSocket): unknown; close(): void } =
    protocol === 'http/1.1'
      ? createHttpServer({ clock: net.clock, hostName: 'server', http2: false }, (req, res) => {
          const body = lookup(req.url);
          if (!body) {
            res.writeHead(404).end();
            return;
          }
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
          res.end(body);
        })
      : h2.createHttp2Server({ clock: net.clock, hostName: 'server' }, (stream, headers) => {
          const body = lookup(String(headers[':path'] ?? ''));
          if (!body) {
            stream.respond({ ':status': 404 }, { endStream: true });
            return;
          }
          stream.respond({
            ':status': 200,
            'content-type': 'application/octet-stream',
            'content-length': body.length,
          });
          stream.end(body);
        });
  // Every TCP connection on both sides, held from its start, to sum their retransmissions at
  // the end (a socket lets go of its connection once closed).
  const accepted: TcpSocket[] = [];
  const connections: NonNullable<TcpSocket['connection']>[] = [];
  const hold = (socket: TcpSocket) => {
    if (socket.connection) connections.push(socket.connection);
  };
  const listening = server.tcp.createServer((socket) => {
    accepted.push(socket);
    hold(socket);
    app.handle(socket);
  });
  listening.listen(80);
  const dialed: TcpSocket[] = [];
  let maxOpen = 0;
  const dial = (): TcpSocket => {
    // A socket the browser has destroyed is one it no longer holds (the pool drops a dead
    // connection's socket before it opens the replacement).
    maxOpen = Math.max(maxOpen, dialed.filter((d) => !d.destroyed).length + 1);
    const s = browser.tcp.connect({ host: server.ipv4, port: 80 });
    dialed.push(s);
    s.setNoDelay(true);
    s.once('connect', () => hold(s));
    return s;
  };
  const retransmits = () => connections.reduce((n, c) => n + c.counters.retransmits, 0);
  const close = async () => {
    app.close();
    listening.close();
    await net.run(() => true);
    net.close();
  };
  return {
    net,
    server,
    browser,
    bodies,
    dial,
    retransmits,
    accepted,
    close,
    lost: () => lost,
    packets: () => packets,
    maxOpen: () => maxOpen,
  };
}

async function overHttp1(seed: number, link: LinkSetting, tun: boolean): Promise<Outcome> {
  const s = setup('http/1.1', seed, link, tun);
  try {
    const agent = new Agent({ clock: s.net.clock, maxSockets: MAX_SOCKETS, connect: () => s.dial() });
    const start = s.net.clock.now();
    const doneAt: number[] = [];
    const results = await s.net.run(
      Promise.all(
        s.bodies.map(async (_, i) => {
          const res = await httpFetch(`http://${s.server.ipv4}/r/${i}`, { agent });
          const body = new Uint8Array(await res.arrayBuffer());
          doneAt[i] = s.net.clock.now() - start;
          return { status: res.status, body };
        }),
      ),
    );
    const out = outcome('http/1.1', s, start, doneAt, results);
    agent.destroy();
    return out;
  } finally {
    await s.close();
  }
}

async function overHttp2(seed: number, link: LinkSetting, tun: boolean): Promise<Outcome> {
  const s = setup('h2', seed, link, tun);
  try {
    const session = h2.connectHttp2(`http://${s.server.ipv4}`, {
      clock: s.net.clock,
      createConnection: () => s.dial(),
    });
    const start = s.net.clock.now();
    const doneAt: number[] = [];
    const results = await s.net.run(
      Promise.all(
        s.bodies.map(
          (_, i) =>
            new Promise<{ status: number; body: Uint8Array }>((resolve, reject) => {
              const stream = session.request({ ':path': `/r/${i}` });
              let status = 0;
              const parts: Buffer[] = [];
              stream.on('response', (h: h2.Http2IncomingHeaders) => {
                status = Number(h[':status']);
              });
              stream.on('data', (c: Buffer) => parts.push(c));
              stream.on('end', () => {
                doneAt[i] = s.net.clock.now() - start;
                resolve({ status, body: Buffer.concat(parts) });
              });
              stream.on('error', reject);
            }),
        ),
      ),
    );
    const out = outcome('h2', s, start, doneAt, results);
    session.close();
    return out;
  } finally {
    await s.close();
  }
}

function outcome(
  protocol: Outcome['protocol'],
  s: ReturnType<typeof setup>,
  start: number,
  doneAt: number[],
  results: { status: number; body: Uint8Array }[],
): Outcome {
  const intact = results.filter((r, i) => {
    const want = s.bodies[i];
    return r.status === 200 && want !== undefined && sha(r.body) === sha(want);
  }).length;
  return {
    protocol,
    ms: s.net.clock.now() - start,
    connections: s.accepted.length,
    maxOpen: s.maxOpen(),
    packets: s.packets(),
    lost: s.lost(),
    retransmits: s.retransmits(),
    intact,
    doneAt,
  };
}

/** Both protocols on a clean link and on a lossy one, same seed. */
export async function run(o: RunOptions = {}): Promise<{ clean: Comparison; lossy: Comparison }> {
  const seed = o.seed ?? 1;
  const delay = o.delay ?? 30;
  // One network at a time: each run loop drives its own virtual clock.
  const compare = async (link: LinkSetting): Promise<Comparison> => ({
    link,
    h1: await overHttp1(seed, link, o.tun ?? false),
    h2: await overHttp2(seed, link, o.tun ?? false),
  });
  const clean = await compare({ delay, loss: 0 });
  const lossy = await compare({ delay, loss: o.loss ?? 0.02 });
  if (o.print) {
    console.log(`${RESOURCES} resources of 1–8 KiB, seed ${seed}, one-way link delay ${delay} ms\n`);
    for (const c of [clean, lossy]) print(c);
  }
  return { clean, lossy };
}

function print(c: Comparison): void {
  const title = c.link.loss === 0 ? 'clean link' : `lossy link (${(c.link.loss * 100).toFixed(1)}% loss)`;
  const row = (label: string, a: string | number, b: string | number) =>
    console.log(`  ${label.padEnd(26)} ${String(a).padStart(17)} ${String(b).padStart(17)}`);
  console.log(title);
  row('', `HTTP/1.1 ×${MAX_SOCKETS}`, 'h2 ×1');
  row('time to last byte (ms)', c.h1.ms.toFixed(1), c.h2.ms.toFixed(1));
  const q = (o: Outcome) => [0.25, 0.5, 0.75].map((p) => quantile(o.doneAt, p).toFixed(0)).join(' / ');
  row('first resource done (ms)', Math.min(...c.h1.doneAt).toFixed(1), Math.min(...c.h2.doneAt).toFixed(1));
  row('25/50/75% done by (ms)', q(c.h1), q(c.h2));
  row(
    'TCP connections (at once)',
    `${c.h1.connections} (${c.h1.maxOpen})`,
    `${c.h2.connections} (${c.h2.maxOpen})`,
  );
  row('packets (lost on the wire)', `${c.h1.packets} (${c.h1.lost})`, `${c.h2.packets} (${c.h2.lost})`);
  row('TCP retransmissions', c.h1.retransmits, c.h2.retransmits);
  row('resources intact', `${c.h1.intact}/${RESOURCES}`, `${c.h2.intact}/${RESOURCES}`);
  const faster = c.h1.ms < c.h2.ms ? 'HTTP/1.1' : c.h2.ms < c.h1.ms ? 'h2' : 'neither';
  console.log(`  faster: ${faster}\n`);
}

function quantile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] ?? 0;
}

if (isMain(import.meta.url)) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(`--${name}`);
    const v = i >= 0 ? process.argv[i + 1] : undefined;
    return v === undefined ? undefined : Number(v);
  };
  const opts: RunOptions = { print: true, tun: process.argv.includes('--tun') };
  const seed = arg('seed');
  const delay = arg('delay');
  const loss = arg('loss');
  if (seed !== undefined) opts.seed = seed;
  if (delay !== undefined) opts.delay = delay;
  if (loss !== undefined) opts.loss = loss;
  await run(opts);
}
