/**
 * h2load requests per second against our HTTP/2 server on node:net, and against a
 * node:http2 server in the same process with the same handler and flags (ratio > 1: we are
 * faster). h2c prior knowledge on loopback.
 *
 *   pnpm exec tsx bench/h2.bench.ts   (or through bench/run.ts)
 */
import { spawn, spawnSync } from 'node:child_process';
import http2 from 'node:http2';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { createServer } from '../packages/http/src/h2/internal.ts';
import { type Benchmark, type BenchResult, result } from './lib.ts';

const FLAGS = ['-n', '20000', '-c', '4', '-m', '10'];
const BODY = 'hello h2\n';

function h2load(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn('h2load', [...FLAGS, `http://127.0.0.1:${port}/`], { stdio: ['ignore', 'pipe', 'pipe'] });
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
      const ok =
        /requests: 20000 total, 20000 started, 20000 done, 20000 succeeded, 0 failed, 0 errored, 0 timeout/.test(
          out,
        );
      if (!m || !ok) reject(new Error(`h2load failed:\n${out}`));
      else resolve(Number(m[1]));
    });
  });
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return (server.address() as net.AddressInfo).port;
}

export const h2Benchmarks: Benchmark[] = [
  {
    name: 'h2',
    requires: () =>
      spawnSync('h2load', ['--version']).status === 0 ? undefined : 'h2load (nghttp2-client) not installed',
    async run(): Promise<BenchResult[]> {
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
      const [p1, p2] = [await listen(oursTcp), await listen(nodeTcp)];
      try {
        // Warm both up, then three alternating rounds; the best of each, since on a shared
        // machine the noise only ever slows a run down.
        await h2load(p1);
        await h2load(p2);
        let a = 0;
        let b = 0;
        for (let i = 0; i < 3; i++) {
          a = Math.max(a, await h2load(p1));
          b = Math.max(b, await h2load(p2));
        }
        return [result(`h2load ${FLAGS.join(' ')} (h2c, node:net, best of 3)`, a, 'req/s', 'node:http2', b)];
      } finally {
        for (const s of ours.sessions) s.destroy();
        oursTcp.close();
        nodeTcp.close();
        node.close();
      }
    },
  },
];

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const r of await (h2Benchmarks[0] as Benchmark).run())
    console.log(
      `BENCH ${r.name} ${r.value} ${r.unit} ${r.peer ?? '-'} ${r.peerValue ?? '-'} ${r.ratio ?? '-'}`,
    );
}
