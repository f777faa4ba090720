/**
 * TCP throughput between our stack and the Linux kernel over TUN, against the kernel
 * talking to itself over a veth pair between two namespaces, in the same run and with the
 * same programs on the kernel side:
 *
 *  - kernel -> us: a python client in the namespace sends N bytes to our discard service
 *    (RFC 863) and waits for our FIN, which comes after we have read everything; the peer
 *    figure is the same client sending to a python sink in a second namespace over veth.
 *  - us -> kernel: our socket sends N bytes to a python sink in the namespace, which times
 *    from accept to EOF; the peer figure is the python client in the second namespace
 *    sending to the same sink over veth.
 *
 * Ours is measured three times in the same run: over a plain TUN device, and over a
 * device with offloads (IFF_VNET_HDR with checksum and TSO: the kernel hands us 64 KB
 * super-segments with partial checksums and cuts ours), once writing on the main thread
 * and once through the link's writer thread. The veth figures are the same for all.
 *
 * The kernel's figure includes python's per-call cost on both ends; ours includes it on
 * one end. Each figure is the best of RUNS. Needs root; every loop is bounded in bytes and
 * time; both namespaces are removed, also on failure.
 *
 * 'tcp-tun-impaired' is the loss-recovery figure (issue 13): on one TUN session whose link
 * drops 2% and reorders 2% of the packets in each direction (@stepwire/link's impair(),
 * seeded; this kernel has no netem), our sender (our socket -> a python sink in the
 * namespace) against the kernel's sender (the python client -> our discard service)
 * through the very same impairment, one line per controller: our BBR against the kernel's
 * BBR, our CUBIC against its CUBIC, our NewReno against its Reno (the client's socket
 * takes each by TCP_CONGESTION). The ratio is ours / kernel's; the goal
 * is >= 0.5. Each loss-based line also gives the Mathis bound at our measured RTT: what
 * any controller that halves per loss can reach at 2% loss.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { impair, NETNS_DEFAULTS, netnsDown, netnsUp, TunLink } from '@stepwire/link';
import type { CongestionName, TcpConnection } from '@stepwire/tcp';
import { tcpDiscard } from '../packages/cli/src/services/tcp-services.ts';
import { TunSession } from '../packages/cli/src/tun/session.ts';
import { type Benchmark, type BenchResult, result } from './lib.ts';

const NS = `sw-tcptun-bench-${process.pid}`;
/**
 * Our TCP's receive buffer in these sessions. Linux autotunes its own up to tcp_rmem[2]
 * (32 MiB here); ours is fixed, 256 KiB by default, and at this path's round trip that
 * window, not the link, caps kernel -> us. Both devices (plain and offloads) get the same.
 */
const OUR_TCP = { connection: { receiveBuffer: 1 << 20 } } as const;
/** The namespace of the session whose device has offloads (IFF_VNET_HDR, checksum, TSO). */
const OFF_NS = { main: `sw-tcptun-boff-${process.pid}`, thread: `sw-tcptun-bofft-${process.pid}` } as const;
const PEER_NS = `sw-tcptun-bpeer-${process.pid}`;
/** The namespace of the plain-device session with software GSO and GRO in our IP layer. */
const SOFT_NS = `sw-tcptun-bsoft-${process.pid}`;
/** The veth pair: the TUN namespace's end, and the peer namespace's end (RFC 2544 range). */
const VETH = { a: 'swv0', b: 'swv1', aAddr: '198.19.7.1', bAddr: '198.19.7.2' } as const;
const BYTES = 100 * 1024 * 1024;
const RUNS = 3;
const SINK_PORT = 40100;

/**
 * argv: address, port, bytes[, congestion control]. Connects, sends `bytes` (1 MiB writes),
 * half-closes, reads to EOF; prints 'rate <bytes per second> <bytes>' timed from before
 * connect to EOF. The socket takes the named controller (TCP_CONGESTION) before it sends.
 */
const CLIENT = `
import socket, sys, time
addr, port, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
buf = bytes(range(256)) * 4096
t = time.perf_counter()
s = socket.create_connection((addr, port), timeout=60)
if len(sys.argv) > 4:
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, sys.argv[4].encode())
sent = 0
while sent < total:
    n = min(len(buf), total - sent)
    s.sendall(buf[:n] if n < len(buf) else buf)
    sent += n
s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
e = time.perf_counter() - t
print('rate', total / e, total, flush=True)
`;

/**
 * argv: address, port, connections. For each connection: read to EOF, then close; prints
 * 'rate <bytes per second> <bytes>' timed from accept to EOF. Gives up after 120 s.
 */
const SINK = `
import socket, sys, time
addr, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((addr, port))
l.listen(8)
l.settimeout(120)
print('ready', flush=True)
for _ in range(count):
    c, _ = l.accept()
    c.settimeout(60)
    t = time.perf_counter()
    n = 0
    while True:
        d = c.recv(1 << 20)
        if not d:
            break
        n += len(d)
    e = time.perf_counter() - t
    c.close()
    print('rate', n / e, n, flush=True)
`;

function missing(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (TUN device and network namespaces)';
  for (const p of ['ip', '/usr/bin/python3']) {
    const r = p.startsWith('/')
      ? spawnSync('test', ['-x', p])
      : spawnSync('sh', ['-c', `command -v ${p}`], { stdio: 'ignore' });
    if (r.status !== 0) return `needs ${p}`;
  }
  return undefined;
}

function ip(args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${(r.stderr ?? '').trim()}`);
}

/** A second namespace joined to the session's by a veth pair made inside them (never in the root namespace). */
function makePeer(): void {
  netnsDown(PEER_NS);
  ip(['netns', 'add', PEER_NS]);
  ip(['-n', NS, 'link', 'add', VETH.a, 'type', 'veth', 'peer', 'name', VETH.b, 'netns', PEER_NS]);
  ip(['-n', NS, 'addr', 'add', `${VETH.aAddr}/24`, 'dev', VETH.a]);
  ip(['-n', PEER_NS, 'addr', 'add', `${VETH.bAddr}/24`, 'dev', VETH.b]);
  ip(['-n', NS, 'link', 'set', VETH.a, 'up']);
  ip(['-n', PEER_NS, 'link', 'set', VETH.b, 'up']);
  ip(['-n', PEER_NS, 'link', 'set', 'lo', 'up']);
}

const running = new Set<ChildProcess>();

/**
 * Run python in a namespace to completion (killed after timeoutMs): `ready` resolves at its
 * 'ready' line, `rates` with its 'rate' lines (bytes/s) once it exits 0.
 */
function pythonIn(
  ns: string,
  script: string,
  args: string[],
  timeoutMs: number,
): { ready: Promise<void>; rates: Promise<number[]> } {
  const child = spawn('ip', ['netns', 'exec', ns, '/usr/bin/python3', '-u', '-c', script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let out = '';
  let err = '';
  let onReady: () => void = () => {};
  const ready = new Promise<void>((r) => {
    onReady = r;
  });
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    if (/^ready$/m.test(out)) onReady();
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    if (err.length < 10_000) err += d;
  });
  const rates = new Promise<number[]>((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      running.delete(child);
      const rs = [...out.matchAll(/^rate ([\d.e+]+) (\d+)$/gm)].map((m) => Number(m[1]));
      if (code !== 0 || rs.length === 0) reject(new Error(`python in ${ns} failed (${code}): ${err.trim()}`));
      else resolve(rs);
    });
  });
  return { ready, rates };
}

/**
 * Start a sink for `count` connections and wait until it listens. Its rates come in an
 * object: an async function returning the bare promise would wait for it.
 */
async function startSink(ns: string, addr: string, count: number): Promise<{ rates: Promise<number[]> }> {
  const p = pythonIn(ns, SINK, [addr, String(SINK_PORT), String(count)], 150_000);
  // Settled here so that a failure before anyone awaits it is not an unhandled rejection.
  p.rates.catch(() => {});
  await Promise.race([p.ready, p.rates]);
  return { rates: p.rates };
}

/** The python client's rates, run `runs` times in a namespace. */
async function clientRuns(
  ns: string,
  addr: string,
  port: number,
  runs: number,
  bytes = BYTES,
  congestion?: string,
): Promise<number[]> {
  const rates: number[] = [];
  const args = [addr, String(port), String(bytes), ...(congestion ? [congestion] : [])];
  for (let i = 0; i < runs; i++) rates.push(...(await pythonIn(ns, CLIENT, args, 90_000).rates));
  return rates;
}

/** The impairment of the loss-recovery figure: 2% loss and 2% reordering, each way. */
const LOSSY = { loss: 0.02, reorder: 0.02, reorderDelay: 5 } as const;
const LOSSY_BYTES = 20 * 1024 * 1024;
const LOSSY_NS = `sw-tcptun-blossy-${process.pid}`;
/** Our controllers in the loss-recovery figure, in order (STEPWIRE_BENCH_CC=bbr,cubic picks some). */
const LOSSY_CCS = (process.env.STEPWIRE_BENCH_CC ?? 'bbr,cubic,newreno')
  .split(',')
  .map((c) => c.trim())
  .filter((c): c is CongestionName => c === 'bbr' || c === 'cubic' || c === 'newreno');
/** Linux's name for each of ours (its reno is RFC 5681 with NewReno's recovery, as ours). */
const LINUX_CC: Record<CongestionName, string> = { bbr: 'bbr', cubic: 'cubic', newreno: 'reno' };
/** Runs of each sender per controller (the best counts). */
const LOSSY_RUNS = 2;

/**
 * The Mathis bound (Mathis, Semke, Mahdavi, Ott: "The Macroscopic Behavior of the TCP
 * Congestion Avoidance Algorithm", CCR 1997): a controller that halves its window once per
 * loss, at loss rate p, averages at most MSS/RTT x sqrt(3/2) / sqrt(p). In bytes per second.
 */
function mathisBound(mss: number, rttMs: number, p: number): number {
  return (mss / (rttMs / 1000)) * Math.sqrt(1.5 / p);
}

const best = (xs: number[]) => Math.max(...xs);
const mbit = (bytesPerSec: number) => (bytesPerSec * 8) / 1e6;

/** Our socket sends `bytes` to (addr, port); resolves when the sink has closed. */
async function ourSend(
  s: TunSession,
  addr: string,
  port: number,
  bytes = BYTES,
  congestion?: CongestionName,
  /** Gets the connection's smoothed RTT every 20 ms while it sends. */
  rtts?: number[],
): Promise<TcpConnection | undefined> {
  const sock = s.tcp.connect({ host: addr, port, ...(congestion ? { tcp: { congestion } } : {}) });
  const mib = Buffer.alloc(1 << 20, 'stepwire');
  let conn: TcpConnection | undefined;
  sock.once('connect', () => {
    conn = sock.connection;
  });
  const sampler = rtts
    ? setInterval(() => {
        const v = conn?.stats.srtt;
        if (v !== undefined && conn?.state === 'ESTABLISHED') rtts.push(v);
      }, 20)
    : undefined;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('our send did not finish within 60 s'));
    }, 60_000);
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
    sock.resume();
    let sent = 0;
    const more = () => {
      while (sent < bytes) {
        sent += mib.length;
        if (!sock.write(mib)) {
          sock.once('drain', more);
          return;
        }
      }
      sock.end();
    };
    sock.once('connect', more);
  }).finally(() => clearInterval(sampler));
  return conn;
}

/**
 * A session on a TUN device with offloads: `netnsUp` makes the namespace and a persistent
 * device, our TunLink attaches to it with IFF_VNET_HDR and TUNSETOFFLOAD (TunSession.open
 * opens plain devices), and the session runs its stack on that link. close() closes the
 * link; the caller removes the namespace.
 */
function offloadSession(writer: 'main' | 'thread'): TunSession {
  const ns = OFF_NS[writer];
  netnsUp(ns, { device: NETNS_DEFAULTS.device });
  try {
    const tun = TunLink.open({
      netns: ns,
      name: NETNS_DEFAULTS.device,
      offloads: true,
      pollTimeoutMs: 50,
      writer,
    });
    return TunSession.onQueue(ns, tun, { tcp: OUR_TCP });
  } catch (e) {
    netnsDown(ns);
    throw e;
  }
}

/**
 * One transfer each way for our session `s` in namespace `ns`: [kernel -> us, us -> kernel]
 * in B/s, then the CPU seconds (user + system) our process spent on each. A rate on this
 * shared machine moves with other sessions' load; what the transfer cost us moves far less,
 * and it counts every thread (the stack, the TUN reader and writer, V8's GC helpers).
 */
async function oursOnce(s: TunSession, ns: string): Promise<[number, number, number, number]> {
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  const c0 = cpu();
  const [inRate] = await clientRuns(ns, s.ours.v4, 9, 1);
  const c1 = cpu();
  const sink = await startSink(ns, s.kernel.v4, 1);
  const c2 = cpu();
  await ourSend(s, s.kernel.v4, SINK_PORT);
  const [outRate] = await sink.rates;
  return [inRate ?? 0, outRate ?? 0, c1 - c0, cpu() - c2];
}

/** One transfer each way kernel to kernel over the veth pair: [peer -> NS, peer -> NS again]. */
async function vethOnce(): Promise<[number, number]> {
  const r: number[] = [];
  for (let k = 0; k < 2; k++) {
    const sink = await startSink(NS, VETH.aAddr, 1);
    await clientRuns(PEER_NS, VETH.aAddr, SINK_PORT, 1);
    r.push(...(await sink.rates));
  }
  return [r[0] ?? 0, r[1] ?? 0];
}

const linkNote = (s: TunSession) =>
  `reader wake-ups ${s.tun.counters.get('rx.wakeups')} for ${s.tun.counters.get('rx')} packets, gso in ${s.tun.counters.get('rx.gso')} out ${s.tun.counters.get('tx.gso')}`;

export const tcpTunBenchmarks: Benchmark[] = [
  {
    name: 'tcp-tun-impaired',
    requires: missing,
    async run(): Promise<BenchResult[]> {
      const s = TunSession.open({
        netns: LOSSY_NS,
        replace: true,
        pollTimeoutMs: 50,
        wrapLink: (link, clock) => impair(link, { ...LOSSY, seed: 2026, receive: LOSSY }, clock),
      });
      const discard = tcpDiscard(s.tcp, 9);
      const out: BenchResult[] = [];
      try {
        for (const cc of LOSSY_CCS) {
          const kernelCc = LINUX_CC[cc];
          const dropsBefore = s.tun.counters.get('drop.loss');
          // The kernel's sender: the python client to our discard service, through the impairment.
          // (Its socket takes kernelCc by TCP_CONGESTION: a namespace may only default to the
          // controllers in net.ipv4.tcp_allowed_congestion_control, a socket of root to any.)
          const kernel = await clientRuns(LOSSY_NS, s.ours.v4, 9, LOSSY_RUNS, LOSSY_BYTES, kernelCc);
          // Our sender: our socket to a python sink, through the same impairment.
          const sink = await startSink(LOSSY_NS, s.kernel.v4, LOSSY_RUNS);
          const notes: string[] = [];
          const srtts: number[] = [];
          let mss = 1448;
          for (let i = 0; i < LOSSY_RUNS; i++) {
            const st = (await ourSend(s, s.kernel.v4, SINK_PORT, LOSSY_BYTES, cc, srtts))?.stats;
            if (!st) continue;
            notes.push(
              `${st.retransmits} (rto ${st.timeouts}, undone ${st.spuriousRecoveries}, D-SACKs ${st.dsacksReceived})`,
            );
            mss = st.mss;
          }
          const ours = await sink.rates;
          const drops = s.tun.counters.get('drop.loss') - dropsBefore;
          const rtt = srtts.reduce((x, y) => x + y, 0) / Math.max(1, srtts.length);
          const bound =
            cc === 'bbr'
              ? ''
              : `; Mathis bound at our mean srtt ${rtt.toFixed(1)} ms ${mbit(mathisBound(mss, rtt, LOSSY.loss)).toFixed(0)} Mbit/s`;
          out.push(
            result(
              `TCP sender ${cc}, 2% loss + 2% reorder TUN, ${LOSSY_BYTES >> 20} MiB (${mbit(best(ours)).toFixed(0)} vs ${mbit(best(kernel)).toFixed(0)} Mbit/s; ours ${ours.map((r) => mbit(r).toFixed(0)).join('/')}, kernel ${kernel.map((r) => mbit(r).toFixed(0)).join('/')}${bound}; our retransmits ${notes.join(', ')}; link drops ${drops})`,
              best(ours),
              'B/s',
              `kernel ${kernelCc} sender, same link`,
              best(kernel),
            ),
          );
        }
        return out;
      } finally {
        for (const c of running) c.kill('SIGKILL');
        discard.close();
        await s.close();
      }
    },
  },
  {
    name: 'tcp-tun',
    requires: missing,
    async run(): Promise<BenchResult[]> {
      // Three sessions at once (plain device; offloads writing on the main thread; offloads
      // through the writer thread), and the kernel's veth pair beside them. The runs are
      // interleaved (veth, plain, main, thread; RUNS rounds) so that load from elsewhere on
      // the machine falls on every figure alike instead of on whichever came last.
      const sessions: { key: string; s: TunSession; ns: string }[] = [];
      const discards: { close(): void }[] = [];
      try {
        sessions.push({
          key: 'plain',
          s: TunSession.open({ netns: NS, replace: true, pollTimeoutMs: 50, tcp: OUR_TCP }),
          ns: NS,
        });
        sessions.push({
          key: 'soft',
          s: TunSession.open({
            netns: SOFT_NS,
            replace: true,
            pollTimeoutMs: 50,
            tcp: OUR_TCP,
            softwareOffloads: true,
          }),
          ns: SOFT_NS,
        });
        makePeer();
        for (const writer of ['main', 'thread'] as const)
          sessions.push({ key: writer, s: offloadSession(writer), ns: OFF_NS[writer] });
        for (const x of sessions) discards.push(tcpDiscard(x.s.tcp, 9));
        const rates: Record<string, { in: number[]; out: number[]; cpuIn: number[]; cpuOut: number[] }> = {};
        for (const k of ['veth', ...sessions.map((x) => x.key)])
          rates[k] = { in: [], out: [], cpuIn: [], cpuOut: [] };
        const add = (k: string, [i, o, ci, co]: [number, number, number?, number?]) => {
          rates[k]?.in.push(i);
          rates[k]?.out.push(o);
          if (ci !== undefined) rates[k]?.cpuIn.push(ci);
          if (co !== undefined) rates[k]?.cpuOut.push(co);
        };
        /** The least CPU our process spent on one transfer of BYTES (the least disturbed run). */
        const cpuNote = (xs: number[] | undefined) =>
          xs?.length ? `our process ${(Math.min(...xs) * 1000).toFixed(0)} CPU-ms per transfer` : '';
        for (let round = 0; round < RUNS; round++) {
          add('veth', await vethOnce());
          for (const x of sessions) add(x.key, await oursOnce(x.s, x.ns));
        }
        const veth = rates.veth!;
        const line = (what: string, ours: number[], kernel: number[], note: string) =>
          result(
            `TCP ${what}, ${BYTES >> 20} MiB (${mbit(best(ours)).toFixed(0)} vs ${mbit(best(kernel)).toFixed(0)} Mbit/s; runs ${ours.map((r) => mbit(r).toFixed(0)).join('/')} vs ${kernel.map((r) => mbit(r).toFixed(0)).join('/')}; ${note})`,
            best(ours),
            'B/s',
            'kernel -> kernel over veth',
            best(kernel),
          );
        const [plain, soft, main, thread] = sessions;
        return [
          line(
            'kernel -> us over TUN',
            rates.plain!.in,
            veth.in,
            `${linkNote(plain!.s)}; ${cpuNote(rates.plain?.cpuIn)}`,
          ),
          line(
            'us -> kernel over TUN',
            rates.plain!.out,
            veth.out,
            `offloads off; ${cpuNote(rates.plain?.cpuOut)}`,
          ),
          line(
            'kernel -> us over TUN, software GRO',
            rates.soft!.in,
            veth.in,
            `plain device; ${linkNote(soft!.s)}; ip rx.gro-joined ${soft!.s.host.counters.get('ip.rx.gro-joined')}`,
          ),
          line(
            'us -> kernel over TUN, software GSO',
            rates.soft!.out,
            veth.out,
            `plain device; ip tx.gso-segments ${soft!.s.host.counters.get('ip.tx.gso-segments')}`,
          ),
          line(
            'kernel -> us over TUN with offloads',
            rates.main!.in,
            veth.in,
            `${linkNote(main!.s)}; ${cpuNote(rates.main?.cpuIn)}`,
          ),
          line(
            'us -> kernel over TUN with offloads',
            rates.main!.out,
            veth.out,
            `writes on the main thread; ${cpuNote(rates.main?.cpuOut)}`,
          ),
          line(
            'kernel -> us over TUN, offloads, writer thread',
            rates.thread!.in,
            veth.in,
            linkNote(thread!.s),
          ),
          line(
            'us -> kernel over TUN, offloads, writer thread',
            rates.thread!.out,
            veth.out,
            'writes on a writer thread',
          ),
        ];
      } finally {
        for (const c of running) c.kill('SIGKILL');
        for (const d of discards) d.close();
        try {
          netnsDown(PEER_NS);
        } finally {
          for (const x of sessions) await x.s.close();
          for (const ns of Object.values(OFF_NS)) netnsDown(ns);
        }
      }
    },
  },
];
