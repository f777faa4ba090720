/**
 * A load run that would have caught issue 15's leak: N keep-alive requests through an HTTP
 * server on our TCP, over a MemoryLink on the virtual clock, in a process started with a
 * small heap (see test/load-keepalive.test.ts). At the end every connection is closed, the
 * clock runs past TIME-WAIT, and the stacks' counts must be back at their idle values.
 * Prints one JSON line.
 *
 *   node --max-old-space-size=96 --import tsx test/load/keepalive.ts [requests] [connections] [server]
 *
 * `server` is `node` (node:http on our sockets) or `ours` (@stepwire/http's HTTP/1.1 server,
 * on the same virtual clock, whose stats join the idle check).
 */
import http from 'node:http';
import { forbidKernelTrafficOffLoopback } from '@stepwire/cli/safety';
import { createHttpServer } from '@stepwire/http';
import { Host } from '@stepwire/ip';
import { MemoryLink } from '@stepwire/link';
import { Tcp, type TcpSocket } from '@stepwire/tcp';
import { Prng, VirtualClock } from '@stepwire/wire';

forbidKernelTrafficOffLoopback();

const requests = Number(process.argv[2] ?? 200_000);
const connections = Number(process.argv[3] ?? 8);
const serverKind = process.argv[4] ?? 'node';

const clock = new VirtualClock();
const [la, lb] = MemoryLink.pair({ clock, mtu: 1500, seed: 1 });
const hostA = new Host({ name: 'A', clock, prng: new Prng(1) });
const hostB = new Host({ name: 'B', clock, prng: new Prng(2) });
hostA.addInterface({ link: la, ipv4: '198.18.0.1/24' });
hostB.addInterface({ link: lb, ipv4: '198.18.0.2/24' });
const a = new Tcp(hostA);
const b = new Tcp(hostB);

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;
const respond: Handler = (req, res) => {
  req.resume();
  req.on('end', () => {
    res.setHeader('content-type', 'text/plain');
    res.end(`hello ${req.url}\n`);
  });
};
const ours =
  serverKind === 'ours'
    ? createHttpServer({ clock }, respond as unknown as Parameters<typeof createHttpServer>[1])
    : undefined;
const server: { emit(e: 'connection', s: TcpSocket): unknown; close(): unknown } =
  serverKind === 'node' ? http.createServer(respond) : ours!;
if (serverKind !== 'node' && serverKind !== 'ours') throw new Error(`unknown server ${serverKind}`);

const httpIdle = () => {
  if (!ours) return undefined;
  const s = ours.stats();
  return { connections: s.connections, armedTimers: s.armedTimers, bufferedBytes: s.bufferedBytes };
};
const idle = () => ({
  http: httpIdle(),
  clientTcp: a.stats,
  serverTcp: b.stats,
  clientHost: hostA.stats,
  serverHost: hostB.stats,
  clockPending: clock.pending,
});
const before = idle();

const listener = b.createServer((s: TcpSocket) => server.emit('connection', s));
listener.listen(80, '198.18.0.2');

const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
// node:http's Agent calls createConnection for each new socket (it never dials the kernel
// when createConnection is given and agent is an Agent).
(agent as unknown as { createConnection: () => TcpSocket }).createConnection = () =>
  a.connect({ host: '198.18.0.2', port: 80 });

let done = 0;
let failed = 0;
let peakHeap = 0;
let peakTimers = 0;
let peakClockPending = 0;
let issued = 0;

function issue(): void {
  if (issued >= requests) return;
  const n = issued++;
  const req = http.get({ host: '198.18.0.2', port: 80, path: `/${n}`, agent }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (d: string) => (body += d));
    res.on('end', () => {
      if (res.statusCode !== 200 || body !== `hello /${n}\n`) failed++;
      done++;
      issue();
    });
  });
  req.on('error', () => {
    failed++;
    done++;
    issue();
  });
}

const turn = () => new Promise<void>((r) => setImmediate(r));

async function drive(until: () => boolean, limitMs: number): Promise<void> {
  const deadline = clock.now() + limitMs;
  let turns = 0;
  while (!until()) {
    const at = clock.nextTimerAt();
    if (at !== undefined && at <= deadline) clock.advanceTo(at);
    else if (at === undefined || at > deadline) {
      // Nothing due: let Node's own callbacks run; give up if that changes nothing for long.
      await turn();
      if (clock.nextTimerAt() === undefined && ++turns > 1000) break;
      continue;
    }
    turns = 0;
    // Let streams run (nextTick/setImmediate) once per instant, not per timer.
    if (clock.nextTimerAt() !== clock.now()) await turn();
    if ((done & 1023) === 0) {
      const h = process.memoryUsage().heapUsed;
      if (h > peakHeap) peakHeap = h;
      const t = b.stats.timersArmed + a.stats.timersArmed + (ours?.stats().armedTimers ?? 0);
      if (t > peakTimers) peakTimers = t;
      // Every timer on the clock, whoever armed it (a timer that escapes the counts shows here).
      const p = clock.pending;
      if (p > peakClockPending) peakClockPending = p;
    }
  }
}

const started = performance.now();
for (let i = 0; i < connections * 2; i++) issue();
await drive(() => done >= requests, 24 * 3600_000);
const loadMs = performance.now() - started;
const busy = { serverTcp: b.stats, clientTcp: a.stats, http: httpIdle() };

agent.destroy();
server.close();
listener.close();
// Past every FIN exchange and TIME-WAIT (2*MSL), so the tables are empty again.
await drive(() => a.stats.connections === 0 && b.stats.connections === 0, 600_000);
clock.advance(600_000);
await turn();
const after = idle();

console.log(
  JSON.stringify({
    requests,
    connections,
    server: serverKind,
    done,
    failed,
    loadMs: Math.round(loadMs),
    requestsPerSecond: Math.round(requests / (loadMs / 1000)),
    peakHeapMB: Math.round(peakHeap / 1e5) / 10,
    peakTimers,
    peakClockPending,
    busy,
    before,
    after,
  }),
);
