/**
 * Our stack on a real TUN device against the kernel, in the same run and the same
 * namespace, measured by the same kernel-side client:
 *  - ping round trips: the kernel's ping(8) to our stack (198.18.0.2, through the TUN
 *    device, our read loop and our Host) versus ping to the kernel's own address;
 *  - UDP echo: a python client in the namespace keeps a window of datagrams in flight
 *    against our echo service versus a socat echo in the kernel.
 * Needs root; every loop is bounded in count and time, and the namespace is removed.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { NETNS_DEFAULTS, netnsDown, netnsUp, type RunResult, TunLink } from '@stepwire/link';
import { type UdpEchoService, udpEcho } from '@stepwire/udp';
import { parsePingSummary } from '../packages/cli/src/tun/kernel.ts';
import { TunSession } from '../packages/cli/src/tun/session.ts';
import { type Benchmark, type BenchResult, result } from './lib.ts';

const NS = 'sw-tun-bench';
/** The namespace of the session on a device with offloads (IFF_VNET_HDR, checksum, TSO). */
const OFF_NS = 'sw-tun-bench-off';
const PINGS = 500;
const DATAGRAMS = 20_000;
const WINDOW = 16;
const SIZE = 64;

/**
 * argv: address, port, total, window, size. Keeps `window` datagrams in flight and prints
 * datagrams echoed per second (bytes back / size, so an echo that merges datagrams is not
 * credited with more than it returned). A reply missing for 0.5 s counts as lost and its
 * slot is reused; the whole run stops after 20 s.
 */
const CLIENT = `
import socket, sys, time
addr, port, total, window, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
s = socket.socket(socket.AF_INET6 if ':' in addr else socket.AF_INET, socket.SOCK_DGRAM)
s.connect((addr, port))
s.settimeout(0.5)
msg = b'x' * size
sent = got = lost = 0
inflight = 0
start = time.perf_counter()
deadline = start + 20
while got < total * size and time.perf_counter() < deadline:
    while inflight < window and sent < total + lost:
        s.send(msg)
        sent += 1
        inflight += 1
    try:
        n = len(s.recv(65536))
        got += n
        inflight -= max(1, n // size)
    except socket.timeout:
        lost += inflight
        inflight = 0
elapsed = time.perf_counter() - start
print(got / size / elapsed, lost, flush=True)
`;

function missing(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (TUN device and network namespace)';
  for (const p of ['ip', 'ping', 'socat', '/usr/bin/python3']) {
    const r = p.startsWith('/')
      ? spawnSync('test', ['-x', p])
      : spawnSync('sh', ['-c', `command -v ${p}`], { stdio: 'ignore' });
    if (r.status !== 0) return `needs ${p}`;
  }
  return undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Run a program in namespace `ns` to completion, killed after timeoutMs. */
function runIn(ns: string, cmd: string, args: string[], timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      'ip',
      ['netns', 'exec', ns, cmd, ...args],
      { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        const e = err as
          | (Error & { code?: number | string; killed?: boolean; signal?: NodeJS.Signals })
          | null;
        resolve({
          code: e ? (typeof e.code === 'number' ? e.code : 1) : 0,
          signal: e?.signal ?? null,
          stdout,
          stderr,
          timedOut: e?.killed ?? false,
        });
      },
    );
  });
}

async function withSession<T>(fn: (s: TunSession, ns: string) => Promise<T>, offloads = false): Promise<T> {
  let s: TunSession;
  const ns = offloads ? OFF_NS : NS;
  if (offloads) {
    // TunSession.open opens plain devices: make the namespace and a persistent device, and
    // attach our own TunLink to it with IFF_VNET_HDR and TUNSETOFFLOAD.
    netnsUp(OFF_NS, { device: NETNS_DEFAULTS.device });
    try {
      const tun = TunLink.open({
        netns: OFF_NS,
        name: NETNS_DEFAULTS.device,
        offloads: true,
        pollTimeoutMs: 50,
      });
      s = TunSession.onQueue(OFF_NS, tun, {});
    } catch (e) {
      netnsDown(OFF_NS);
      throw e;
    }
  } else {
    s = TunSession.open({ netns: NS, replace: true, pollTimeoutMs: 50 });
  }
  const echo: UdpEchoService = udpEcho(s.udp, 7);
  try {
    return await fn(s, ns);
  } finally {
    echo.close();
    await s.close();
    if (offloads) netnsDown(OFF_NS);
  }
}

/** Mean round-trip time in ms of the kernel's ping(8) to `dst`, from inside the namespace. */
async function pingRtt(ns: string, dst: string): Promise<number> {
  const r = await runIn(ns, 'ping', ['-n', '-q', '-c', String(PINGS), '-i', '0.002', '-W', '1', dst], 30_000);
  const sum = parsePingSummary(r.stdout);
  if (sum.received !== sum.transmitted || !sum.rtt) {
    throw new Error(`ping ${dst}: ${sum.received}/${sum.transmitted} replies`);
  }
  return sum.rtt.avg;
}

async function echoRate(ns: string, dst: string, port: number): Promise<number> {
  const r = await runIn(
    ns,
    '/usr/bin/python3',
    ['-c', CLIENT, dst, String(port), String(DATAGRAMS), String(WINDOW), String(SIZE)],
    40_000,
  );
  const [rate] = r.stdout.trim().split(/\s+/).map(Number);
  if (r.code !== 0 || rate === undefined || !Number.isFinite(rate) || rate <= 0) {
    throw new Error(`UDP echo client against ${dst}:${port} failed: ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return rate;
}

/**
 * A socat UDP echo on 198.18.0.1:7007 for one client run. No fork: socat answers the first
 * peer only, and a forked child would outlive a kill of its parent's PID. -T bounds its life
 * if the kill never came.
 */
async function withSocatEcho<T>(ns: string, fn: () => Promise<T>): Promise<T> {
  const socat = spawn(
    'ip',
    ['netns', 'exec', ns, 'socat', '-T', '30', 'UDP4-LISTEN:7007,bind=198.18.0.1,reuseaddr', 'PIPE'],
    { stdio: 'ignore' },
  );
  try {
    await sleep(300);
    return await fn();
  } finally {
    socat.kill('SIGKILL');
  }
}

export const tunBenchmarks: Benchmark[] = [
  {
    name: 'tun',
    requires: missing,
    async run(): Promise<BenchResult[]> {
      const measure = (offloads: boolean) =>
        withSession(async (s, ns) => {
          // Warm up both paths (JIT, the kernel's caches) before measuring.
          await pingRtt(ns, s.ours.v4);
          await pingRtt(ns, s.kernel.v4);
          const ours = await pingRtt(ns, s.ours.v4);
          const kernel = await pingRtt(ns, s.kernel.v4);
          // With offloads the kernel leaves UDP checksums partial; a stack that does not
          // take PacketInfo's 'partial' as verified drops every datagram. Say so and go on.
          let oursRate: number | string;
          try {
            await echoRate(ns, s.ours.v4, 7);
            oursRate = await echoRate(ns, s.ours.v4, 7);
          } catch (e) {
            oursRate = `${(e as Error).message} (stack: ${JSON.stringify(s.host.counters.snapshot())})`;
          }
          const socatRate = await withSocatEcho(ns, () => echoRate(ns, s.kernel.v4, 7007));
          return { ours, kernel, oursRate, socatRate };
        }, offloads);
      const out: BenchResult[] = [];
      for (const offloads of [false, true]) {
        const m = await measure(offloads);
        const tag = offloads ? ', offloads on' : '';
        // As round trips per second (1000 / mean rtt), so that the ratio reads like every
        // other benchmark's: above 1 means we are faster.
        out.push(
          result(
            `ping rtt over TUN${tag} (${(m.ours * 1000).toFixed(0)} µs vs ${(m.kernel * 1000).toFixed(0)} µs)`,
            1000 / m.ours,
            'round trip/s',
            'kernel pinging itself',
            1000 / m.kernel,
          ),
        );
        if (typeof m.oursRate === 'string')
          console.error(`tun bench: UDP echo${tag} not measured: ${m.oursRate}`);
        else
          out.push(
            result(
              `UDP echo ${SIZE} B, window ${WINDOW}${tag}`,
              m.oursRate,
              'datagram/s',
              'kernel socat echo',
              m.socatRate,
            ),
          );
      }
      return out;
    },
  },
];
