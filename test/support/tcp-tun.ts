/**
 * Shared pieces of the TCP-over-TUN interop tests (test/tcp-tun-*.test.ts) and the
 * TCP-TUN benchmark: kernel-side programs in the namespace, hashes of the HTTP app's byte
 * pattern, the kernel's TCP counters. Nothing here skips: a missing program throws.
 */
import { type ChildProcess, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { Netns, RunResult } from '@stepwire/link';
import { waitForLine, waitUntil } from '../../packages/cli/src/tun/kernel.ts';
import { tsharkFields, tsharkProblems } from './tshark.ts';

/**
 * SHA-256 (hex) of the first n bytes of the /bytes/N pattern, from its definition (byte i is
 * i mod 251) rather than the server's own generator, so a changed generator fails the tests.
 */
export function patternSha256(n: number): string {
  const h = createHash('sha256');
  const period = Uint8Array.from({ length: 251 }, (_, i) => i);
  // 251 * 4096 bytes: whole periods, so every full block is the same and the tail restarts at 0.
  const block = Buffer.alloc(251 * 4096, period);
  let done = 0;
  while (n - done >= block.length) {
    h.update(block);
    done += block.length;
  }
  h.update(block.subarray(0, n - done));
  return h.digest('hex');
}

/** Run a bash script in the namespace with pipefail, so a failing stage fails the whole. */
export function bash(ns: Netns, script: string, timeoutMs = 30_000, input?: string): Promise<RunResult> {
  return ns.run('bash', ['-c', `set -eo pipefail\n${script}`], {
    timeoutMs,
    ...(input !== undefined ? { input } : {}),
  });
}

/** Describe a finished run for an assertion message. */
export function runInfo(r: RunResult): string {
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}${r.timedOut ? ' timed out' : ''}; stderr: ${r.stderr.trim().slice(-800)}`;
}

/** A running kernel-side program: its stdout so far, and its exit. */
export interface KernelProcess {
  child: ChildProcess;
  readonly out: string;
  readonly err: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): void;
}

/**
 * Start `/usr/bin/python3 -c script args...` in the namespace and wait for its 'ready' line
 * (printed once its socket is listening or connected). Killed by PID in kill(), and by the
 * Netns on close.
 */
export async function python(
  ns: Netns,
  script: string,
  args: string[] = [],
  readyTimeoutMs = 10_000,
): Promise<KernelProcess> {
  const p = track(ns.spawn('/usr/bin/python3', ['-u', '-c', script, ...args]));
  await waitForLine(p.child, /^ready/, readyTimeoutMs);
  return p;
}

/** Track a spawned program's output and exit. */
export function track(child: ChildProcess): KernelProcess {
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    if (out.length < 1 << 20) out += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    if (err.length < 1 << 20) err += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null)
      resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return {
    child,
    get out() {
      return out;
    },
    get err() {
      return err;
    },
    exited,
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** Wait for a process to exit, or kill it after timeoutMs (then the result says SIGKILL). */
export async function exitWithin(
  p: KernelProcess,
  timeoutMs: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const timer = setTimeout(() => p.kill(), timeoutMs);
  try {
    return await p.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Resolve once a kernel socket listens on TCP `port` in the namespace (polls ss), or throw. */
export async function waitListening(ns: Netns, port: number, timeoutMs = 10_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    const r = await ns.run('ss', ['-Hltn', `sport = :${port}`], { timeoutMs: 5000 });
    if (r.stdout.trim() !== '') return;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`nothing listens on kernel-side port ${port} after ${timeoutMs} ms`);
}

/**
 * The kernel's TCP sockets in the namespace on `port` (ss -tan), as 'STATE local peer'
 * lines; with `otherPort`, only the connection between those two ports (Linux reuses an
 * ephemeral port for a different 4-tuple, so a port alone may match an older connection).
 */
export async function kernelSockets(ns: Netns, port: number, otherPort?: number): Promise<string[]> {
  const filter =
    otherPort === undefined
      ? `( sport = :${port} or dport = :${port} )`
      : `( ( sport = :${port} and dport = :${otherPort} ) or ( sport = :${otherPort} and dport = :${port} ) )`;
  const r = await ns.run('ss', ['-Htan', filter], { timeoutMs: 5000 });
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 5)
    .map((f) => `${f[0]} ${f[3]} ${f[4]}`);
}

/** TcpExt counters from the namespace's /proc/net/netstat (TCPFastOpenActive, ...). */
export async function kernelTcpExt(ns: Netns): Promise<Record<string, number>> {
  const r = await ns.run('cat', ['/proc/net/netstat'], { timeoutMs: 5000 });
  const rows = r.stdout.split('\n').filter((l) => l.startsWith('TcpExt:'));
  const names = rows[0]?.split(/\s+/).slice(1) ?? [];
  const values = rows[1]?.split(/\s+/).slice(1) ?? [];
  if (names.length === 0) throw new Error('no TcpExt in /proc/net/netstat');
  return Object.fromEntries(names.map((n, i) => [n, Number(values[i])]));
}

export { waitUntil };

/** A Buffer of n pseudo-random bytes from a seed (xorshift32), the same on every run. */
export function seededBytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b.writeUInt32LE(x, i);
  }
  for (; i < n; i++) b[i] = i & 0xff;
  return b;
}

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/**
 * Check that every TCP connection on `port` in a pcap closed with a FIN from each side,
 * each FIN acknowledged, and no RST before that. A RST after both FINs were acknowledged
 * is allowed: it answers a late duplicate (for example our ACK of a FIN the peer sent
 * twice because a busy machine delayed our first ACK) that reached a socket already gone,
 * which is what RFC 9293 §3.10.7.1 asks of a closed port. Returns one line per problem.
 */
export function closeProblems(pcap: string, ports: readonly number[]): string[] {
  const rows = bigTsharkFields(
    pcap,
    [
      'frame.number',
      'tcp.stream',
      'tcp.srcport',
      'tcp.dstport',
      'tcp.flags.fin',
      'tcp.flags.reset',
      'tcp.flags.ack',
      'tcp.seq_raw',
      'tcp.ack_raw',
      'tcp.len',
    ],
    { filter: `tcp.port in {${ports.join(',')}}`, extra: tsharkTransportOnly() },
  );
  const streams = new Map<string, Record<string, string>[]>();
  for (const r of rows) {
    const k = r['tcp.stream']!;
    if (!streams.has(k)) streams.set(k, []);
    streams.get(k)!.push(r);
  }
  const on = (v: string | undefined) => v === '1' || v === 'True';
  const problems: string[] = [];
  const seen = new Set<number>();
  for (const [stream, frames] of streams) {
    const first = frames[0]!;
    const port = ports.includes(Number(first['tcp.dstport']))
      ? Number(first['tcp.dstport'])
      : Number(first['tcp.srcport']);
    seen.add(port);
    // The side is the source port: `port` itself (the listener's side) or the other end.
    const finEnd = new Map<string, number>();
    const acked = new Set<string>();
    let closedAt: number | undefined;
    for (const f of frames) {
      const side = f['tcp.srcport'] === String(port) ? 'listener' : 'peer';
      const other = side === 'listener' ? 'peer' : 'listener';
      const n = Number(f['frame.number']);
      if (on(f['tcp.flags.reset'])) {
        if (closedAt === undefined)
          problems.push(
            `port ${port} stream ${stream}: RST from the ${side} in frame ${n} before both FINs were acknowledged`,
          );
        continue;
      }
      if (on(f['tcp.flags.fin']) && !finEnd.has(side)) {
        finEnd.set(side, (Number(f['tcp.seq_raw']) + Number(f['tcp.len']) + 1) >>> 0);
      }
      const otherFin = finEnd.get(other);
      if (otherFin !== undefined && on(f['tcp.flags.ack']) && Number(f['tcp.ack_raw']) === otherFin)
        acked.add(other);
      if (closedAt === undefined && acked.size === 2) closedAt = n;
    }
    if (closedAt === undefined) {
      problems.push(
        `port ${port} stream ${stream}: FIN from ${[...finEnd.keys()].join(' and ') || 'nobody'}, acknowledged for ${[...acked].join(' and ') || 'nobody'}`,
      );
    }
  }
  for (const p of ports) if (!seen.has(p)) problems.push(`no connection on port ${p} in the capture`);
  return problems;
}

/**
 * tsharkFields for captures with many frames: the same records, read with an output buffer
 * to match (a bulk transfer is tens of thousands of frames, over execFileSync's 1 MiB).
 */
function bigTsharkFields(
  pcap: string,
  fields: string[],
  opts: { filter: string; extra: string[] },
): Record<string, string>[] {
  const args = ['-r', pcap, '-n', '-o', 'tcp.check_checksum:TRUE', ...opts.extra, '-T', 'fields'];
  args.push('-E', 'separator=\t', '-E', 'occurrence=f', '-Y', opts.filter);
  for (const f of fields) args.push('-e', f);
  const out = execFileSync('tshark', args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 1 << 28,
  });
  return out
    .split('\n')
    .filter((l) => l.length > 0)
    .map((line) => {
      const cols = line.split('\t');
      return Object.fromEntries(fields.map((f, i) => [f, cols[i] ?? '']));
    });
}

/** What tshark dissects in the TCP checks: the network and transport layers, nothing above. */
const TRANSPORT_ONLY = new Set(['frame', 'raw', 'ip', 'ipv6', 'tcp', 'icmp', 'icmpv6', 'data']);
let disableAbove: string[] | undefined;

/**
 * tshark arguments that switch off every dissector above TCP. Our payloads are random bytes
 * on arbitrary ports (and the kernel's ephemeral ports cover many registered ones), which
 * application dissectors and heuristics (X11, Thrift, ...) would otherwise report as
 * malformed. What is checked is IP and TCP: their fields, checksums and sequence analysis.
 */
export function tsharkTransportOnly(): string[] {
  if (!disableAbove) {
    const out = execFileSync('tshark', ['-G', 'protocols'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    disableAbove = out
      .split('\n')
      .map((l) => l.split('\t')[2])
      // Whole protocols only: names with a dot are parts of others (tcp.options.tfo, ...).
      .filter((f): f is string => !!f && !f.includes('.') && !TRANSPORT_ONLY.has(f))
      .flatMap((f) => ['--disable-protocol', f]);
  }
  return disableAbove;
}

/**
 * What Wireshark reports about a TUN session's capture that is a real problem: tshark's
 * malformed frames and warnings (bad checksums included) at the IP and TCP layers, less
 * what is TCP working as it should:
 *  - flow control: 'Zero Window segment' (a reader fell behind, so the window closed) and
 *    'window ... completely full' (a sender filled it), RFC 9293 §3.8.6.2;
 *  - 'Connection reset (RST)': the resets a test asked for (closeProblems checks the
 *    connections that had to close in order);
 *  - 'D-SACK Sequence' (RFC 2883): a receiver reporting a segment the sender sent twice
 *    (a tail loss probe or an RTO when this busy machine delayed an ACK);
 *  - a TCP checksum of 0xffff where 0x0000 was computed, from the kernel only: Linux's
 *    software checksum (skb_checksum_help) writes a zero sum as CSUM_MANGLED_0 = 0xffff,
 *    the same number in ones' complement; tshark flags it (RFC 1624 §3). Ours must not.
 */
export function tcpTunProblems(pcap: string, kernel: { v4: string; v6: string }): string[] {
  const expected =
    /Connection reset \(RST\)|Zero Window segment|window specified by the receiver is now completely full|^#\d+ TCP D-SACK Sequence/;
  const mangled = new Set(
    tsharkFields(pcap, ['frame.number'], {
      filter: `tcp.checksum == 0xffff && (ip.src == ${kernel.v4} || ipv6.src == ${kernel.v6})`,
      extra: tsharkTransportOnly(),
    }).map((r) => `#${r['frame.number']} `),
  );
  return tsharkProblems(pcap, tsharkTransportOnly()).filter((p) => {
    if (expected.test(p)) return false;
    const frame = /^#\d+ /.exec(p)?.[0];
    return !(frame && mangled.has(frame) && /Checksum 0xffff instead of 0x0000/i.test(p));
  });
}

/** A kernel-side python program: accepts one connection, hashes everything to EOF, prints
 * 'sha256 <hex> <count>'. Arguments: address, port. */
export const SINK_SERVER = `
import hashlib, socket, sys
l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], int(sys.argv[2])))
l.listen(4)
l.settimeout(60)
print('ready', flush=True)
c, _ = l.accept()
c.settimeout(60)
h = hashlib.sha256()
n = 0
while True:
    d = c.recv(1 << 20)
    if not d:
        break
    h.update(d)
    n += len(d)
c.close()
print('sha256', h.hexdigest(), n, flush=True)
`;
