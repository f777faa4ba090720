/**
 * Shared pieces of the TCP-over-TUN interop tests (test/tcp-tun-*.test.ts) and the
 * TCP-TUN benchmark: kernel-side programs in the namespace, hashes of the HTTP app's byte
 * pattern, the kernel's TCP counters. Nothing here skips: a missing program throws.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { Netns, RunResult } from '@stepwire/link';
import { patternChunk } from '../../packages/cli/src/services/http-app.ts';
import { waitForLine, waitUntil } from '../../packages/cli/src/tun/kernel.ts';

/** SHA-256 (hex) of the first n bytes of the /bytes/N pattern. */
export function patternSha256(n: number): string {
  const h = createHash('sha256');
  // 251 * 4096 bytes: whole periods of the pattern, so every full block is the same.
  const block = patternChunk(0, 251 * 4096);
  let done = 0;
  while (n - done >= block.length) {
    h.update(block);
    done += block.length;
  }
  h.update(patternChunk(done, n - done));
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

/** The kernel's TCP sockets in the namespace touching `port` (ss -tan), as 'STATE local peer' lines. */
export async function kernelSockets(ns: Netns, port: number): Promise<string[]> {
  const r = await ns.run('ss', ['-Htan', `( sport = :${port} or dport = :${port} )`], { timeoutMs: 5000 });
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
