/**
 * Our stack on a real TUN device against the kernel, in the same run and the same
 * namespace, measured by the same kernel-side client:
 *  - ping round trips: the kernel's ping(8) to our stack (198.18.0.2, through the TUN
 *    device, our read loop and our Host) versus ping to the kernel's own address;
 *  - UDP echo: a python client in the namespace keeps a window of datagrams in flight
 *    against our echo service versus a socat echo in the kernel.
 * Needs root; every loop is bounded in count and time, and the namespace is removed.
 */
import { spawnSync } from 'node:child_process';
import { type UdpEchoService, udpEcho } from '@stepwire/udp';
import { parsePingSummary } from '../packages/cli/src/tun/kernel.ts';
import { TunSession } from '../packages/cli/src/tun/session.ts';
import { type Benchmark, type BenchResult, result } from './lib.ts';

const NS = 'sw-tun-bench';
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

async function withSession<T>(fn: (s: TunSession, echo: UdpEchoService) => Promise<T>): Promise<T> {
  const s = TunSession.open({ netns: NS, replace: true, pollTimeoutMs: 50 });
  const echo = udpEcho(s.udp, 7);
  try {
    return await fn(s, echo);
  } finally {
    echo.close();
    await s.close();
  }
}

/** Mean round-trip time in ms of the kernel's ping(8) to `dst`, from inside the namespace. */
async function pingRtt(s: TunSession, dst: string): Promise<number> {
  const r = await s.namespace!.run('ping', ['-n', '-q', '-c', String(PINGS), '-i', '0.002', '-W', '1', dst], {
    timeoutMs: 30_000,
  });
  const sum = parsePingSummary(r.stdout);
  if (sum.received !== sum.transmitted || !sum.rtt) {
    throw new Error(`ping ${dst}: ${sum.received}/${sum.transmitted} replies`);
  }
  return sum.rtt.avg;
}

async function echoRate(s: TunSession, dst: string, port: number): Promise<number> {
  const r = await s.namespace!.run(
    '/usr/bin/python3',
    ['-c', CLIENT, dst, String(port), String(DATAGRAMS), String(WINDOW), String(SIZE)],
    { timeoutMs: 40_000 },
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
async function withSocatEcho<T>(s: TunSession, fn: () => Promise<T>): Promise<T> {
  const socat = s.namespace!.spawn('socat', [
    '-T',
    '30',
    'UDP4-LISTEN:7007,bind=198.18.0.1,reuseaddr',
    'PIPE',
  ]);
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
    run: () =>
      withSession(async (s) => {
        const out: BenchResult[] = [];
        // Warm up both paths (JIT, the kernel's caches) before measuring.
        await pingRtt(s, s.ours.v4);
        await pingRtt(s, s.kernel.v4);
        const ours = await pingRtt(s, s.ours.v4);
        const kernel = await pingRtt(s, s.kernel.v4);
        // As round trips per second (1000 / mean rtt), so that the ratio reads like every
        // other benchmark's: above 1 means we are faster.
        out.push(
          result(
            `ping rtt over TUN (${(ours * 1000).toFixed(0)} µs vs ${(kernel * 1000).toFixed(0)} µs)`,
            1000 / ours,
            'round trip/s',
            'kernel pinging itself',
            1000 / kernel,
          ),
        );

        await echoRate(s, s.ours.v4, 7);
        const oursRate = await echoRate(s, s.ours.v4, 7);
        const socatRate = await withSocatEcho(s, () => echoRate(s, s.kernel.v4, 7007));
        out.push(
          result(
            `UDP echo ${SIZE} B, window ${WINDOW}`,
            oursRate,
            'datagram/s',
            'kernel socat echo',
            socatRate,
          ),
        );
        return out;
      }),
  },
];
