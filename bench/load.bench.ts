/**
 * Does the stack hold load? (issue 15) Our `stepwire serve` services on a TUN device, driven
 * from the kernel side of a namespace this benchmark makes and removes, against node:http on
 * kernel sockets in the same namespace with the same load generator:
 *
 *  - soak: wrk on HTTP and HTTPS at once for STEPWIRE_SOAK_SECONDS (default 600 s); resident
 *    memory sampled every 5 s must be flat after warm-up (the figure is its growth from the
 *    end of warm-up to the end, per minute), with no errors, and every timer and connection
 *    count back to idle afterwards;
 *  - c10k: a kernel-side client opens 10,000 connections, sends a request on each and keeps
 *    them open; memory per idle connection (ours, node:http's, the kernel's) and the time to
 *    have them all accepted and answered; then all close and the counts return to idle;
 *  - churn: 100,000 short connections (half HTTP with `Connection: close`, where we close
 *    first and hold TIME-WAIT; half TCP echo, where the kernel closes first), the TIME-WAIT
 *    table bounded throughout;
 *  - mixed: everything at once for STEPWIRE_MIXED_SECONDS (default 300 s) — ping floods on
 *    both families, UDP echo, HTTP and HTTPS under wrk, bulk TCP both ways, and a scapy
 *    storm of malformed packets every 30 s — with memory, file descriptors, timers and
 *    buffers sampled: none may grow after warm-up, and all return to idle (issue 14).
 *
 * Needs root, wrk and Debian's python3. Every loop is bounded in count and time; the
 * namespace and every process started here are removed at the end, also on failure.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { forbidKernelTrafficOffLoopback } from '../packages/cli/src/safety.ts';
import { SERVICES, startServices } from '../packages/cli/src/tun/services.ts';
import { TunSession } from '../packages/cli/src/tun/session.ts';
import { STORM } from '../test/support/storm.ts';
import { type Benchmark, type BenchResult, result } from './lib.ts';

forbidKernelTrafficOffLoopback();

const NS = `sw-load-${process.pid}`;
const OURS = '198.18.0.2';
/** The node:http peer listens on the namespace's own address, on kernel sockets. */
const PEER = '198.18.0.1';
const PEER_PORT = 8080;
const SOAK_SECONDS = Number(process.env.STEPWIRE_SOAK_SECONDS ?? 600);
const C10K = Number(process.env.STEPWIRE_C10K ?? 10_000);
const CHURN = Number(process.env.STEPWIRE_CHURN ?? 100_000);
const MIXED_SECONDS = Number(process.env.STEPWIRE_MIXED_SECONDS ?? 300);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** node:http on kernel sockets serving /bytes/N with the same pattern as ours. */
const PEER_SERVER = `
const http = require('node:http');
const pattern = Buffer.alloc(251 * 1024);
for (let i = 0; i < pattern.length; i++) pattern[i] = i % 251;
const s = http.createServer((req, res) => {
  const m = /^\\/bytes\\/(\\d+)$/.exec(req.url);
  const n = m ? Number(m[1]) : 0;
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
  res.end(pattern.subarray(0, n));
});
s.keepAliveTimeout = 5000;
s.listen(${PEER_PORT}, '${PEER}', () => console.log('listening'));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

/**
 * argv: address, port, count. Opens `count` connections (in batches), sends one request on
 * each, reads its whole response, keeps them open. Prints 'answered <seconds>' when all
 * are answered; on 'close' from stdin closes all and prints 'closed'. Gives up after 300 s.
 */
const C10K_CLIENT = `
import asyncio, resource, sys, time
addr, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
REQ = ('GET /bytes/100 HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n' % addr).encode()
async def one(conns, sem):
    async with sem:
        r, w = await asyncio.open_connection(addr, port)
        w.write(REQ)
        head = await r.readuntil(b'\\r\\n\\r\\n')
        length = 0
        for line in head.split(b'\\r\\n'):
            if line.lower().startswith(b'content-length:'):
                length = int(line.split(b':')[1])
        await r.readexactly(length)
        conns.append(w)
async def main():
    conns = []
    sem = asyncio.Semaphore(256)
    t = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*[one(conns, sem) for _ in range(count)]), 300)
    print('answered', time.perf_counter() - t, len(conns), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for w in conns:
        w.close()
    await asyncio.gather(*[w.wait_closed() for w in conns], return_exceptions=True)
    print('closed', flush=True)
asyncio.run(main())
`;

/**
 * argv: address, port, count, mode ('http' or 'echo'), concurrency. Each connection does one
 * exchange and ends: 'http' sends a request with Connection: close and reads to EOF (the
 * server closes first); 'echo' writes 64 bytes, reads them back and closes first. Prints
 * 'done <seconds> <ok> <failed>'. Gives up after 300 s.
 */
const CHURN_CLIENT = `
import asyncio, resource, sys, time
addr, port, count, mode, conc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
REQ = ('GET /bytes/100 HTTP/1.1\\r\\nHost: %s\\r\\nConnection: close\\r\\n\\r\\n' % addr).encode()
ok = 0
failed = 0
async def worker(n):
    global ok, failed
    for _ in range(n):
        try:
            r, w = await asyncio.open_connection(addr, port)
            if mode == 'http':
                w.write(REQ)
                data = await r.read()
                good = data.startswith(b'HTTP/1.1 200') and len(data) > 100
            else:
                w.write(b'x' * 64)
                data = await r.readexactly(64)
                good = True
            w.close()
            await w.wait_closed()
            if good: ok += 1
            else: failed += 1
        except Exception:
            failed += 1
async def main():
    t = time.perf_counter()
    per = [count // conc + (1 if i < count % conc else 0) for i in range(conc)]
    await asyncio.wait_for(asyncio.gather(*[worker(n) for n in per]), 300)
    print('done', time.perf_counter() - t, ok, failed, flush=True)
asyncio.run(main())
`;

interface Lines {
  child: ChildProcess;
  next(prefix: string, timeoutMs: number): Promise<string>;
  /** Everything it printed so far. */
  text(): string;
}

/** A child in the namespace whose stdout is read line by line. */
function inNamespace(cmd: string, args: string[]): Lines {
  const child = spawn('ip', ['netns', 'exec', NS, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  let buf = '';
  let err = '';
  let all = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    all += d;
    let i = buf.indexOf('\n');
    while (i >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
      i = buf.indexOf('\n');
    }
    for (const w of waiters.splice(0)) w();
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err = (err + d).slice(-2000);
  });
  child.on('exit', () => {
    for (const w of waiters.splice(0)) w();
  });
  return {
    child,
    text: () => all,
    next(prefix, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      return new Promise((resolve, reject) => {
        const check = () => {
          const at = lines.findIndex((l) => l.startsWith(prefix));
          if (at >= 0) return resolve(lines.splice(0, at + 1).pop()!);
          if (child.exitCode !== null || child.signalCode !== null)
            return reject(new Error(`${cmd} ended before '${prefix}': ${err.trim()}`));
          if (Date.now() > deadline)
            return reject(new Error(`${cmd}: no '${prefix}' within ${timeoutMs} ms`));
          waiters.push(check);
          setTimeout(check, Math.min(1000, Math.max(0, deadline - Date.now()))).unref();
        };
        check();
      });
    },
  };
}

function stop(c: ChildProcess): void {
  if (c.exitCode === null && c.signalCode === null && c.pid) c.kill('SIGTERM');
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Kernel memory held by TCP sockets: their slab objects plus their buffers (sockstat 'mem'). */
function kernelTcpBytes(): number {
  let slab = 0;
  for (const line of readFileSync('/proc/slabinfo', 'utf8').split('\n')) {
    const f = line.split(/\s+/);
    if (f[0] === 'TCP' || f[0] === 'TCPv6' || f[0] === 'request_sock_TCP' || f[0] === 'tw_sock_TCP')
      slab += Number(f[1]) * Number(f[3]);
  }
  const mem = /TCP:.* mem (\d+)/.exec(readFileSync('/proc/net/sockstat', 'utf8'));
  return slab + (mem ? Number(mem[1]) * 4096 : 0);
}

async function settle(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Run fn with our services on a fresh TUN session and the node:http peer in the namespace. */
async function withStack<T>(fn: (s: TunSession, peerPid: number) => Promise<T>): Promise<T> {
  const session = TunSession.open({ netns: NS, replace: true, tcp: { maxTimeWait: 32_768 } });
  const services = startServices({ host: session.host, udp: session.udp, tcp: session.tcp }, SERVICES);
  const peer = inNamespace(process.execPath, ['-e', PEER_SERVER]);
  try {
    await peer.next('listening', 10_000);
    return await fn(session, peer.child.pid!);
  } finally {
    peer.child.stdin!.end();
    stop(peer.child);
    services.close();
    await session.close();
  }
}

interface Idle {
  connections: number;
  timers: number;
}
const idleOf = (s: TunSession): Idle => ({
  connections: s.tcp.stats.connections,
  timers: s.tcp.stats.timersArmed + s.host.stats.timersArmed,
});

/** Wait (bounded) until our TCP has no connection left, TIME-WAIT included. */
async function drained(s: TunSession, limitMs: number): Promise<Idle> {
  const deadline = Date.now() + limitMs;
  while (s.tcp.stats.connections > 0 && Date.now() < deadline) await settle(250);
  return idleOf(s);
}

interface Wrk {
  requests: number;
  perSecond: number;
  errors: number;
}

function parseWrk(out: string): Wrk {
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const perSecond = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = non2xx + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return { requests, perSecond, errors };
}

function wrk(url: string, seconds: number, connections: number): Promise<Wrk> {
  return new Promise((resolve, reject) => {
    const c = spawn(
      'ip',
      ['netns', 'exec', NS, 'wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', url],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const kill = setTimeout(() => stop(c), (seconds + 60) * 1000);
    c.on('exit', (code) => {
      clearTimeout(kill);
      if (code !== 0) reject(new Error(`wrk ${url} exited ${code}: ${out.slice(-500)}`));
      else resolve(parseWrk(out));
    });
  });
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

async function soak(): Promise<BenchResult[]> {
  return withStack(async (s) => {
    const idle = idleOf(s);
    const samples: Array<{ t: number; rss: number; conns: number; timers: number }> = [];
    const t0 = Date.now();
    const sampler = setInterval(() => {
      const st = idleOf(s);
      samples.push({
        t: (Date.now() - t0) / 1000,
        rss: process.memoryUsage().rss,
        conns: st.connections,
        timers: st.timers,
      });
    }, 5000);
    const [http, https] = await Promise.all([
      wrk(`http://${OURS}/bytes/100`, SOAK_SECONDS, 32),
      wrk(`https://${OURS}/bytes/100`, SOAK_SECONDS, 32),
    ]);
    clearInterval(sampler);
    const after = await drained(s, 180_000);
    // Peer: node:http on kernel sockets, same wrk, a tenth of the time (it is the reference rate).
    const peer = await wrk(`http://${PEER}:${PEER_PORT}/bytes/100`, Math.max(10, SOAK_SECONDS / 10), 32);
    const warm = samples.filter((x) => x.t >= SOAK_SECONDS / 6);
    const perMinute = slope(
      warm.map((x) => x.t / 60),
      warm.map((x) => x.rss / 1e6),
    );
    const rssWarm = warm[0]?.rss ?? 0;
    const rssEnd = warm.at(-1)?.rss ?? 0;
    const peakTimers = Math.max(...samples.map((x) => x.timers));
    console.log(
      `soak: ${SOAK_SECONDS} s, http ${http.requests} requests (${http.errors} errors), https ${https.requests} (${https.errors} errors); ` +
        `rss ${(rssWarm / 1e6).toFixed(0)} MB after warm-up -> ${(rssEnd / 1e6).toFixed(0)} MB at end, slope ${perMinute.toFixed(2)} MB/min; ` +
        `peak timers ${peakTimers}; idle before ${JSON.stringify(idle)}, after ${JSON.stringify(after)}`,
    );
    console.log(
      `soak samples (s, rss MB, connections, timers): ${samples.map((x) => `${x.t.toFixed(0)},${(x.rss / 1e6).toFixed(0)},${x.conns},${x.timers}`).join(' ')}`,
    );
    if (after.connections !== idle.connections || after.timers !== idle.timers)
      console.log(`soak: NOT back to idle: ${JSON.stringify(after)} vs ${JSON.stringify(idle)}`);
    return [
      result(
        'load soak http req/s (wrk -c32, with https)',
        http.perSecond,
        'req/s',
        'node:http on kernel sockets',
        peer.perSecond,
      ),
      result('load soak https req/s (wrk -c32, with http)', https.perSecond, 'req/s'),
      result('load soak errors', http.errors + https.errors, 'errors'),
      result('load soak rss growth after warm-up', perMinute, 'MB/min'),
      result('load soak connections left after drain', after.connections, 'conns'),
      result('load soak timers left after drain', after.timers, 'timers'),
    ];
  });
}

async function c10kOnce(
  addr: string,
  port: number,
  memory: () => number,
): Promise<{ seconds: number; perConn: number; kernelPerConn: number; closeLines: Lines }> {
  gc();
  await settle(500);
  const before = memory();
  const kBefore = kernelTcpBytes();
  const client = inNamespace('/usr/bin/python3', ['-u', '-c', C10K_CLIENT, addr, String(port), String(C10K)]);
  const line = await client.next('answered', 320_000);
  const [, secs, n] = line.split(' ');
  if (Number(n) !== C10K) throw new Error(`c10k: only ${n} of ${C10K} answered`);
  gc();
  await settle(1000);
  const after = memory();
  const kAfter = kernelTcpBytes();
  return {
    seconds: Number(secs),
    perConn: (after - before) / C10K,
    kernelPerConn: (kAfter - kBefore) / C10K,
    closeLines: client,
  };
}

async function c10k(): Promise<BenchResult[]> {
  return withStack(async (s, peerPid) => {
    const idle = idleOf(s);
    const heap = () =>
      process.memoryUsage().heapUsed + process.memoryUsage().external + process.memoryUsage().arrayBuffers;
    const ours = await c10kOnce(OURS, 80, heap);
    const busy = s.tcp.stats;
    const oursRss = process.memoryUsage().rss;
    ours.closeLines.child.stdin!.write('close\n');
    await ours.closeLines.next('closed', 120_000);
    stop(ours.closeLines.child);
    const after = await drained(s, 180_000);
    // Kernel memory for our run counts only the client's sockets; for node:http's run it
    // counts both ends, so the kernel figure is taken from our run.
    const peer = await c10kOnce(PEER, PEER_PORT, () => rssOf(peerPid));
    peer.closeLines.child.stdin!.write('close\n');
    await peer.closeLines.next('closed', 120_000);
    stop(peer.closeLines.child);
    console.log(
      `c10k: ${C10K} connections answered in ${ours.seconds.toFixed(2)} s (node:http ${peer.seconds.toFixed(2)} s); ` +
        `ours ${ours.perConn.toFixed(0)} B/conn (heap+buffers), node:http ${peer.perConn.toFixed(0)} B/conn (rss), kernel ${ours.kernelPerConn.toFixed(0)} B/conn; ` +
        `our rss ${(oursRss / 1e6).toFixed(0)} MB while open; busy ${busy.connections} conns, ${busy.timersArmed} timers; ` +
        `after close ${JSON.stringify(after)} vs idle ${JSON.stringify(idle)}`,
    );
    return [
      result(
        'load c10k accept+answer rate',
        C10K / ours.seconds,
        'conn/s',
        'node:http on kernel sockets',
        C10K / peer.seconds,
      ),
      // Memory figures: lower is better, so the ratio is peer / ours (>1: we hold less).
      {
        ...result(
          'load c10k memory per idle connection',
          ours.perConn,
          'B/conn',
          'node:http (rss)',
          peer.perConn,
        ),
        ratio: peer.perConn / ours.perConn,
      },
      {
        ...result(
          'load c10k memory vs kernel socket',
          ours.perConn,
          'B/conn',
          'kernel TCP socket',
          ours.kernelPerConn,
        ),
        ratio: ours.kernelPerConn / ours.perConn,
      },
      result('load c10k connections left after close', after.connections, 'conns'),
      result('load c10k timers left after close', after.timers, 'timers'),
    ];
  });
}

async function churnOnce(
  addr: string,
  port: number,
  count: number,
  mode: 'http' | 'echo',
): Promise<{ seconds: number; ok: number; failed: number }> {
  const c = inNamespace('/usr/bin/python3', [
    '-u',
    '-c',
    CHURN_CLIENT,
    addr,
    String(port),
    String(count),
    mode,
    '32',
  ]);
  const line = await c.next('done', 320_000);
  const [, secs, ok, failed] = line.split(' ');
  return { seconds: Number(secs), ok: Number(ok), failed: Number(failed) };
}

async function churn(): Promise<BenchResult[]> {
  return withStack(async (s) => {
    const idle = idleOf(s);
    let peakTimeWait = 0;
    let peakConns = 0;
    const sampler = setInterval(() => {
      const st = s.tcp.stats;
      peakTimeWait = Math.max(peakTimeWait, st.byState['TIME-WAIT'] ?? 0);
      peakConns = Math.max(peakConns, st.connections);
    }, 200);
    const half = Math.floor(CHURN / 2);
    const http = await churnOnce(OURS, 80, half, 'http');
    const echo = await churnOnce(OURS, 7, CHURN - half, 'echo');
    clearInterval(sampler);
    const overflow = s.host.counters.get('tcp.timewait.overflow');
    const peer = await churnOnce(PEER, PEER_PORT, Math.min(half, 20_000), 'http');
    // TIME-WAIT lasts 2*MSL: wait for it (bounded), then everything must be gone.
    const after = await drained(s, 180_000);
    console.log(
      `churn: http ${http.ok}/${half} in ${http.seconds.toFixed(1)} s (${http.failed} failed), echo ${echo.ok}/${CHURN - half} in ${echo.seconds.toFixed(1)} s (${echo.failed} failed); ` +
        `peak TIME-WAIT ${peakTimeWait} (overflow ${overflow}), peak connections ${peakConns}; node:http ${peer.ok} in ${peer.seconds.toFixed(1)} s; after ${JSON.stringify(after)} vs idle ${JSON.stringify(idle)}`,
    );
    return [
      result(
        'load churn http conn/s (we close first)',
        http.ok / http.seconds,
        'conn/s',
        'node:http on kernel sockets',
        peer.ok / peer.seconds,
      ),
      result('load churn echo conn/s (kernel closes first)', echo.ok / echo.seconds, 'conn/s'),
      result('load churn failed connections', http.failed + echo.failed, 'conns'),
      result('load churn peak TIME-WAIT', peakTimeWait, 'conns'),
      result('load churn connections left after 2MSL', after.connections, 'conns'),
    ];
  });
}

/**
 * argv: address, port, seconds. Sends 512-byte datagrams to the UDP echo service, one in
 * flight, for `seconds`; prints 'udp <sent> <echoed>'.
 */
const UDP_CLIENT = `
import socket, sys, time
addr, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
fam = socket.AF_INET6 if ':' in addr else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.settimeout(0.5)
end = time.time() + secs
sent = echoed = 0
msg = bytes(range(256)) * 2
while time.time() < end:
    s.sendto(msg, (addr, port)); sent += 1
    try:
        if s.recv(2048) == msg: echoed += 1
    except socket.timeout:
        pass
print('udp', sent, echoed, flush=True)
`;

/**
 * argv: address, seconds. Bulk TCP both ways until time runs out: 8 MiB to the discard
 * service, then /bytes/8388608 read back over HTTP; prints 'bulk <bytes up> <bytes down> <errors>'.
 */
const BULK_CLIENT = `
import socket, sys, time
addr, secs = sys.argv[1], float(sys.argv[2])
end = time.time() + secs
up = down = errors = 0
buf = bytes(range(256)) * 4096
while time.time() < end:
    try:
        s = socket.create_connection((addr, 9), timeout=30)
        for _ in range(8): s.sendall(buf); up += len(buf)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536): pass
        s.close()
        s = socket.create_connection((addr, 80), timeout=30)
        s.sendall(b'GET /bytes/8388608 HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n')
        while True:
            d = s.recv(262144)
            if not d: break
            down += len(d)
        s.close()
    except Exception:
        errors += 1
print('bulk', up, down, errors, flush=True)
`;

const fdCount = () => readdirSync('/proc/self/fd').length;

async function mixed(): Promise<BenchResult[]> {
  return withStack(async (s) => {
    const idle = idleOf(s);
    const D = MIXED_SECONDS;
    const samples: Array<{
      t: number;
      rss: number;
      fds: number;
      timers: number;
      conns: number;
      reasm: number;
    }> = [];
    const t0 = Date.now();
    const sample = () => {
      const st = idleOf(s);
      samples.push({
        t: (Date.now() - t0) / 1000,
        rss: process.memoryUsage().rss,
        fds: fdCount(),
        timers: st.timers + s.udp.stats.timersArmed,
        conns: st.connections,
        reasm: s.host.stats.reassemblyBytes,
      });
    };
    sample();
    const sampler = setInterval(sample, 5000);
    const fds0 = fdCount();
    const pings = [
      inNamespace('ping', ['-q', '-i', '0.01', '-w', String(D), OURS]),
      inNamespace('ping', ['-q', '-6', '-i', '0.01', '-w', String(D), 'fd00:5757::2']),
    ];
    const udp = inNamespace('/usr/bin/python3', ['-u', '-c', UDP_CLIENT, OURS, '7', String(D)]);
    const bulk = inNamespace('/usr/bin/python3', ['-u', '-c', BULK_CLIENT, OURS, String(D)]);
    const web = Promise.all([
      wrk(`http://${OURS}/bytes/100`, D, 16),
      wrk(`https://${OURS}/bytes/100`, D, 16),
    ]);
    // A storm of 3000 malformed packets every 30 s (bounded: D / 30 of them).
    let storms = 0;
    const stormRuns: Promise<void>[] = [];
    const stormTimer = setInterval(() => {
      if ((Date.now() - t0) / 1000 > D - 20) return;
      storms++;
      const st = inNamespace('/usr/bin/python3', ['-u', '-c', STORM, s.device, '3000', String(storms)]);
      stormRuns.push(st.next('{', 120_000).then(() => undefined));
    }, 30_000);
    const [http, https] = await web;
    clearInterval(stormTimer);
    await Promise.all(stormRuns);
    const pingOut = await Promise.all(
      pings.map(async (p) => {
        if (p.child.exitCode === null && p.child.signalCode === null) await once(p.child, 'exit');
        return p.text();
      }),
    );
    const udpLine = (await udp.next('udp', 60_000)).split(' ');
    const bulkLine = (await bulk.next('bulk', 120_000)).split(' ');
    clearInterval(sampler);
    sample();
    const after = await drained(s, 180_000);
    const fdsAfter = fdCount();
    const warm = samples.filter((x) => x.t >= D / 6 && x.t <= D);
    const perMinute = slope(
      warm.map((x) => x.t / 60),
      warm.map((x) => x.rss / 1e6),
    );
    const fdGrowth = Math.max(...warm.map((x) => x.fds)) - (warm[0]?.fds ?? fds0);
    const loss = pingOut.map((o) => /(\d+(?:\.\d+)?)% packet loss/.exec(o)?.[1] ?? '?');
    console.log(
      `mixed: ${D} s; ping loss v4 ${loss[0]}% v6 ${loss[1]}%; udp ${udpLine[2]}/${udpLine[1]} echoed; ` +
        `http ${http.requests} (${http.errors} errors), https ${https.requests} (${https.errors} errors); ` +
        `bulk up ${(Number(bulkLine[1]) / 1e6).toFixed(0)} MB, down ${(Number(bulkLine[2]) / 1e6).toFixed(0)} MB, ${bulkLine[3]} errors; ${storms} storms; ` +
        `rss slope ${perMinute.toFixed(2)} MB/min, fds ${fds0} → ${fdsAfter} (growth after warm-up ${fdGrowth}), ` +
        `peak timers ${Math.max(...samples.map((x) => x.timers))}, peak reassembly ${Math.max(...samples.map((x) => x.reasm))} B; ` +
        `after ${JSON.stringify(after)} vs idle ${JSON.stringify(idle)}`,
    );
    console.log(
      `mixed samples (s, rss MB, fds, timers, conns): ${samples.map((x) => `${x.t.toFixed(0)},${(x.rss / 1e6).toFixed(0)},${x.fds},${x.timers},${x.conns}`).join(' ')}`,
    );
    return [
      result('load mixed rss growth after warm-up', perMinute, 'MB/min'),
      result('load mixed fd growth after warm-up', fdGrowth, 'fds'),
      result('load mixed http+https errors', http.errors + https.errors, 'errors'),
      result('load mixed bulk errors', Number(bulkLine[3]), 'errors'),
      result('load mixed udp echoed', Number(udpLine[2]) / Math.max(1, Number(udpLine[1])), 'fraction'),
      result('load mixed connections left after drain', after.connections, 'conns'),
      result('load mixed timers left after drain', after.timers, 'timers'),
    ];
  });
}

function needs(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (TUN and a network namespace)';
  for (const p of ['wrk', '/usr/bin/python3', 'ping']) {
    if (spawnSync('sh', ['-c', `command -v ${p}`], { stdio: 'ignore' }).status !== 0) return `needs ${p}`;
  }
  return undefined;
}

export const loadBenchmarks: Benchmark[] = [
  { name: 'load soak', requires: needs, run: soak },
  { name: 'load c10k', requires: needs, run: c10k },
  { name: 'load churn', requires: needs, run: churn },
  { name: 'load mixed', requires: needs, run: mixed },
];
