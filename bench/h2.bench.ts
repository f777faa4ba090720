/**
 * h2load requests per second against our HTTP/2 server and against node:http2 in the same
 * process, same handler, same flags, runs interleaved (ratio > 1: we are faster). Each
 * figure is the median of RUNS runs, after one warm-up run each. Beside requests per
 * second (which on a shared machine swing several-fold between runs), each row also gives
 * requests per CPU-second of this process — the server side only, h2load being a child —
 * which the machine's other load moves far less.
 *
 *   h2c, node:net     — our session API vs node:http2's, cleartext prior knowledge.
 *   h2, node:tls      — the server users run (the HTTP/1.1 server answering h2 by ALPN, one
 *                       (req, res) handler) behind node:tls vs node:http2's secure server
 *                       with the same (req, res) handler (its compat API). TLS is node's on
 *                       both sides, so the ratio is HTTP/2's.
 *   h2c, whole stack  — our server on our IP and TCP over a TUN device in a namespace the
 *                       bench makes (198.18.0.0/15), h2load run inside it with `ip netns
 *                       exec`; the peer figure is node:http2 on kernel loopback (row one's).
 *
 *   pnpm exec tsx bench/h2.bench.ts        (or: pnpm bench --filter h2)
 */
import { spawn, spawnSync } from 'node:child_process';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { TunSession } from '../packages/cli/src/tun/session.ts';
import type { IncomingMessage, ServerResponse } from '../packages/http/src/h1/messages.ts';
import { createServer as createHttpServer } from '../packages/http/src/h1/server.ts';
import { createServer } from '../packages/http/src/h2/internal.ts';
import { createStepwireCredentials } from '../packages/tls/src/pki/index.ts';
import { type Benchmark, type BenchResult, result } from './lib.ts';

const N = 20_000;
const FLAGS = ['-n', String(N), '-c', '4', '-m', '10'];
const RUNS = 7;
const BODY = 'hello h2\n';
const NS = `sw-h2-bench-${process.pid}`;

interface Run {
  /** Requests per second, as h2load reports. */
  rps: number;
  /** Requests per CPU-second spent by this process (the server) during the run. */
  perCpu: number;
}

/** One h2load run (bounded by a kill after 120 s); rejects unless every request succeeded. */
function h2load(url: string, netns?: string): Promise<Run> {
  const cpu0 = process.cpuUsage();
  const args = [...FLAGS, url];
  const [cmd, argv] = netns ? ['ip', ['netns', 'exec', netns, 'h2load', ...args]] : ['h2load', args];
  return new Promise((resolve, reject) => {
    const p = spawn(cmd as string, argv as string[], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    const t = setTimeout(() => {
      if (p.pid) process.kill(p.pid, 'SIGKILL');
    }, 120_000);
    p.on('close', () => {
      clearTimeout(t);
      const m = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out);
      const ok = new RegExp(
        `requests: ${N} total, ${N} started, ${N} done, ${N} succeeded, 0 failed, 0 errored, 0 timeout`,
      ).test(out);
      const cpu = process.cpuUsage(cpu0);
      if (!m || !ok) reject(new Error(`h2load failed:\n${out}`));
      else resolve({ rps: Number(m[1]), perCpu: N / ((cpu.user + cpu.system) / 1e6) });
    });
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
};

const list = (xs: Run[]) => xs.map((x) => x.rps.toFixed(0)).join('/');

/** Warm-up, then RUNS alternating rounds; medians, and every run's req/s for the label. */
async function compare(ours: () => Promise<Run>, peer: () => Promise<Run>) {
  await ours();
  await peer();
  const a: Run[] = [];
  const b: Run[] = [];
  for (let i = 0; i < RUNS; i++) {
    a.push(await ours());
    b.push(await peer());
  }
  return {
    ours: median(a.map((x) => x.rps)),
    peer: median(b.map((x) => x.rps)),
    oursCpu: median(a.map((x) => x.perCpu)),
    peerCpu: median(b.map((x) => x.perCpu)),
    runs: `ours ${list(a)}, peer ${list(b)}`,
  };
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return (server.address() as net.AddressInfo).port;
}

function reqRes(
  _req: IncomingMessage | http2.Http2ServerRequest,
  res: ServerResponse | http2.Http2ServerResponse,
) {
  res.setHeader('content-type', 'text/plain');
  res.end(BODY);
}

function tunMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (TUN device and network namespaces)';
  if (spawnSync('sh', ['-c', 'command -v ip'], { stdio: 'ignore' }).status !== 0) return 'needs ip';
  return undefined;
}

export const h2Benchmarks: Benchmark[] = [
  {
    name: 'h2',
    requires: () =>
      spawnSync('h2load', ['--version']).status === 0 ? undefined : 'h2load (nghttp2-client) not installed',
    async run(): Promise<BenchResult[]> {
      const out: BenchResult[] = [];
      // Row one: h2c on node:net, the session APIs.
      const ours = createServer({}, (stream) => {
        stream.respond({ ':status': 200, 'content-type': 'text/plain' });
        stream.end(BODY);
      });
      const oursTcp = net.createServer((s) => ours.handle(s));
      const node = http2.createServer();
      node.on('stream', (stream) => {
        stream.respond({ ':status': 200, 'content-type': 'text/plain' });
        stream.end(BODY);
      });
      const nodeTcp = net.createServer((s) => node.emit('connection', s));
      // Row two: h2 on node:tls, the (req, res) handlers.
      const { leaf } = createStepwireCredentials(new Date());
      const tlsOptions = { cert: leaf.certificatePem, key: leaf.privateKeyPem, ALPNProtocols: ['h2'] };
      const oursHttp = createHttpServer(reqRes);
      const oursTls = tls.createServer(tlsOptions, (s) => oursHttp.emit('connection', s));
      const nodeSecure = http2.createSecureServer(tlsOptions, reqRes);
      const [p1, p2, p3] = [await listen(oursTcp), await listen(nodeTcp), await listen(oursTls)];
      await new Promise<void>((r) => nodeSecure.listen(0, '127.0.0.1', () => r()));
      const p4 = (nodeSecure.address() as net.AddressInfo).port;
      let h2cPeer = 0;
      let h2cPeerCpu = 0;
      try {
        const c = await compare(
          () => h2load(`http://127.0.0.1:${p1}/`),
          () => h2load(`http://127.0.0.1:${p2}/`),
        );
        h2cPeer = c.peer;
        h2cPeerCpu = c.peerCpu;
        out.push(
          result(
            `h2load ${FLAGS.join(' ')} h2c node:net, median of ${RUNS} (${c.runs})`,
            c.ours,
            'req/s',
            'node:http2',
            c.peer,
          ),
          result(
            'h2c node:net, server requests per CPU-second',
            c.oursCpu,
            'req/cpu-s',
            'node:http2',
            c.peerCpu,
          ),
        );
        const t = await compare(
          () => h2load(`https://127.0.0.1:${p3}/`),
          () => h2load(`https://127.0.0.1:${p4}/`),
        );
        out.push(
          result(
            `h2load ${FLAGS.join(' ')} h2 node:tls (req, res), median of ${RUNS} (${t.runs})`,
            t.ours,
            'req/s',
            'node:http2 compat',
            t.peer,
          ),
          result(
            'h2 node:tls (req, res), server requests per CPU-second',
            t.oursCpu,
            'req/cpu-s',
            'node:http2 compat',
            t.peerCpu,
          ),
        );
      } finally {
        for (const s of ours.sessions) s.destroy();
        oursTcp.close();
        nodeTcp.close();
        node.close();
        oursHttp.close();
        oursTls.close();
        nodeSecure.close();
      }
      // Row three: our whole stack under our server, h2load in the namespace.
      const missing = tunMissing();
      if (missing) {
        console.log(`h2 whole stack: not run: ${missing}`);
        return out;
      }
      const s = TunSession.open({ netns: NS, replace: true, pollTimeoutMs: 50 });
      const server = createServer({}, (stream) => {
        stream.respond({ ':status': 200, 'content-type': 'text/plain' });
        stream.end(BODY);
      });
      const listener = s.tcp.createServer();
      listener.on('connection', (sock) => server.handle(sock));
      listener.listen(80);
      try {
        const url = `http://${s.ours.v4}/`;
        await h2load(url, NS);
        const runs: Run[] = [];
        for (let i = 0; i < RUNS; i++) runs.push(await h2load(url, NS));
        out.push(
          result(
            `h2load ${FLAGS.join(' ')} h2c, our IP/TCP on TUN, median of ${RUNS} (${list(runs)})`,
            median(runs.map((x) => x.rps)),
            'req/s',
            'node:http2 on kernel loopback',
            h2cPeer,
          ),
          result(
            'h2c on our IP/TCP over TUN, requests per CPU-second (whole stack)',
            median(runs.map((x) => x.perCpu)),
            'req/cpu-s',
            'node:http2 on kernel loopback',
            h2cPeerCpu,
          ),
        );
      } finally {
        for (const x of server.sessions) x.destroy();
        listener.close();
        await s.close();
      }
      return out;
    },
  },
];

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const r of await (h2Benchmarks[0] as Benchmark).run())
    console.log(
      `BENCH ${r.name} ${r.value} ${r.unit} ${r.peer ?? '-'} ${r.peerValue ?? '-'} ${r.ratio ?? '-'}`,
    );
}
