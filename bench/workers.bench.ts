/**
 * `stepwire serve --tun --workers N` under wrk: does a stack per core scale?
 *
 * Two servers run at once, each in a namespace it makes: `--workers 1` (today's single
 * stack on the main thread) and `--workers 2` (two worker threads, each on its own queue of
 * a multi-queue TUN device). wrk (one thread, 64 connections, keep-alive) runs inside each
 * namespace in turn, alternating ROUNDS times so that the load of a shared machine drifts
 * over both alike. Reported: the median over rounds of each one's requests per second, the
 * median of the per-round ratios (each round's two runs are next to each other in time, so
 * their ratio is the least disturbed by other work on the machine), each server's requests
 * per CPU-second (user + system of the whole process while wrk ran: did a second worker make
 * the work cheaper or only spread it?) and the main thread's share of that CPU.
 *
 * What the ratio can mean on this machine: 2 cores, and wrk needs one of them. With one
 * stack, the server has one core and wrk the other; a second worker can only take CPU from
 * wrk (and from anything else running), so 2 workers beating 1 needs a spare core that is
 * not there. On a machine with more cores than workers + wrk the ratio is the scaling.
 *
 * Needs root and wrk. Bounded: ROUNDS × 2 × (1 s warm-up + SECONDS) of load, 60 s for each
 * server to start, every child killed by PID and both namespaces removed at the end.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { netnsDown, netnsExists } from '../packages/link/src/index.ts';
import { type Benchmark, type BenchResult, result } from './lib.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(root, 'packages/cli/bin/stepwire.js');
const URL_ = 'http://198.18.0.2/bytes/100';
const CONNECTIONS = 64;
const SECONDS = Number(process.env.STEPWIRE_WORKERS_BENCH_SECONDS ?? 3);
const ROUNDS = 5;
const CONFIGS = [
  { workers: 1, ns: 'sw-bench-wk1' },
  { workers: 2, ns: 'sw-bench-wk2' },
] as const;

interface Server {
  child: ChildProcess;
  exited: Promise<number | null>;
}

function startServer(workers: number, ns: string, home: string): Promise<Server> {
  const child = spawn(
    process.execPath,
    [BIN, 'serve', '--tun', '--workers', String(workers), '--netns', ns],
    {
      cwd: root,
      env: { ...process.env, STEPWIRE_HOME: home },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve --workers ${workers} not ready within 60 s: ${out.slice(-300)}`));
    }, 60_000);
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (/^ready$/m.test(out)) {
        clearTimeout(timer);
        resolve({ child, exited });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve --workers ${workers} exited ${code}: ${out.slice(-300)}`));
    });
  });
}

/** utime + stime of a process (or, with `tid`, of one of its threads), in seconds (stat fields 14 and 15). */
function cpuSeconds(pid: number, tid?: number): number {
  const stat = fs.readFileSync(
    tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`,
    'utf8',
  );
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / 100; // USER_HZ is 100 on Linux x86-64 and arm64
}

/** wrk inside the namespace; requests per second, refusing a run with errors. */
function wrk(ns: string, seconds: number): number {
  const r = spawnSync(
    'ip',
    ['netns', 'exec', ns, 'wrk', '-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--timeout', '5s', URL_],
    { encoding: 'utf8', timeout: (seconds + 30) * 1000 },
  );
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status !== 0) throw new Error(`wrk in ${ns} exited ${r.status}: ${out.slice(-400)}`);
  const rate = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const sock = /Socket errors: (.*)/.exec(out);
  if (Number.isNaN(rate) || non2xx || sock)
    throw new Error(`wrk in ${ns}: errors or no rate: ${out.slice(-400)}`);
  return rate;
}

async function run(): Promise<BenchResult[]> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'sw-bench-wk-'));
  const servers: Server[] = [];
  try {
    for (const c of CONFIGS) netnsDown(c.ns);
    // One after the other: the first makes the serve CA in `home`, the second reuses it.
    for (const c of CONFIGS) servers.push(await startServer(c.workers, c.ns, home));
    const runs = CONFIGS.map(() => [] as { rate: number; perCpu: number; mainShare: number }[]);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, c] of CONFIGS.entries()) {
        const pid = servers[i]?.child.pid;
        if (pid === undefined) throw new Error('server without a pid');
        wrk(c.ns, 1); // warm-up: JIT, connection tables, congestion windows
        const cpu0 = cpuSeconds(pid);
        // The main thread's id is the process id: with workers it should carry no packets.
        const main0 = cpuSeconds(pid, pid);
        const rate = wrk(c.ns, SECONDS);
        const cpu = cpuSeconds(pid) - cpu0;
        const main = cpuSeconds(pid, pid) - main0;
        runs[i]?.push({
          rate,
          perCpu: cpu > 0 ? (rate * SECONDS) / cpu : 0,
          mainShare: cpu > 0 ? main / cpu : 0,
        });
      }
    }
    const [r1, r2] = runs;
    if (!r1 || !r2) throw new Error('missing results');
    const summary = (rs: typeof r1) => ({
      rate: median(rs.map((r) => r.rate)),
      perCpu: median(rs.map((r) => r.perCpu)),
      mainShare: median(rs.map((r) => r.mainShare)),
    });
    const one = summary(r1);
    const two = summary(r2);
    const paired = median(r2.map((r, k) => r.rate / (r1[k]?.rate ?? Number.NaN)));
    return [
      result(`serve --workers 2 wrk -c${CONNECTIONS} req/s`, two.rate, 'req/s', '--workers 1', one.rate),
      result(`serve --workers 2 / 1 paired ratio (median of ${ROUNDS})`, paired, 'x'),
      result(`serve --workers 2 req per CPU-s`, two.perCpu, 'req/cpu-s', '--workers 1', one.perCpu),
      // Of the server's CPU time while wrk ran, the main thread's part (1 worker: the stack
      // itself runs there; 2 workers: only the counters and the prints).
      result(
        'serve --workers 2 main thread CPU share',
        two.mainShare,
        'fraction',
        '--workers 1',
        one.mainShare,
      ),
      result('serve workers: cores on this machine', os.cpus().length, 'cores'),
    ];
  } finally {
    for (const s of servers) {
      s.child.kill('SIGINT');
      const late = setTimeout(() => s.child.kill('SIGKILL'), 15_000);
      await s.exited;
      clearTimeout(late);
    }
    for (const c of CONFIGS) {
      if (netnsExists(c.ns)) netnsDown(c.ns);
    }
    fs.rmSync(home, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] ?? Number.NaN) : ((s[mid - 1] ?? Number.NaN) + (s[mid] ?? Number.NaN)) / 2;
}

function needs(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (TUN and a network namespace)';
  if (spawnSync('sh', ['-c', 'command -v wrk'], { stdio: 'ignore' }).status !== 0) return 'needs wrk';
  return undefined;
}

export const workersBenchmarks: Benchmark[] = [{ name: 'serve workers', requires: needs, run }];
