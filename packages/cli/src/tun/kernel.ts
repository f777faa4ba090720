/**
 * Helpers for talking to the kernel side of a TUN session: used by the interop tests and
 * the TUN benchmarks. They never skip: a missing privilege or program is an error that
 * says what to install.
 */

import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import type { Netns } from '@stepwire/link';

/** Throw (one line, saying what to do) unless we are root and every program is on PATH. */
export function requireRootAndPrograms(programs: readonly string[]): void {
  if (process.getuid?.() !== 0) {
    throw new Error('TUN interop needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN): run as root, as CI does');
  }
  const missing = programs.filter((p) => {
    const r = spawnSync(
      p.startsWith('/') ? 'test' : 'sh',
      p.startsWith('/') ? ['-x', p] : ['-c', `command -v ${p}`],
      {
        stdio: 'ignore',
      },
    );
    return r.status !== 0;
  });
  if (missing.length > 0) {
    throw new Error(`missing programs: ${missing.join(', ')} (scripts/install-peers.sh installs them)`);
  }
}

/** Throw unless /usr/bin/python3 can import the modules (scapy comes from Debian's python3-scapy). */
export function requirePythonModules(modules: readonly string[]): void {
  const r = spawnSync('/usr/bin/python3', ['-c', modules.map((m) => `import ${m}`).join('; ')], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (r.status !== 0) {
    throw new Error(
      `/usr/bin/python3 cannot import ${modules.join(', ')}: apt-get install python3-scapy (${(r.stderr ?? r.error?.message ?? '').trim().split('\n').pop()})`,
    );
  }
}

export interface PingSummary {
  transmitted: number;
  received: number;
  /** Present when at least one reply came. */
  rtt?: { min: number; avg: number; max: number; mdev: number };
}

/** Parse ping(8)'s summary lines ('3 packets transmitted, 3 received, ...', 'rtt min/avg/max/mdev = ...'). */
export function parsePingSummary(output: string): PingSummary {
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(output);
  if (!m) throw new Error(`no ping summary in:\n${output.slice(-2000)}`);
  const s: PingSummary = { transmitted: Number(m[1]), received: Number(m[2]) };
  const r = /= ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(output);
  if (r) s.rtt = { min: Number(r[1]), avg: Number(r[2]), max: Number(r[3]), mdev: Number(r[4]) };
  return s;
}

/** A counter from /proc/net/snmp (or /proc/net/snmp6 when group is ''), read inside the namespace. */
export async function kernelSnmp(ns: Netns, group: string, field: string): Promise<number> {
  if (group === '') {
    const r = await ns.run('cat', ['/proc/net/snmp6']);
    const line = r.stdout.split('\n').find((l) => l.split(/\s+/)[0] === field);
    if (!line) throw new Error(`no ${field} in /proc/net/snmp6`);
    return Number(line.split(/\s+/)[1]);
  }
  const r = await ns.run('cat', ['/proc/net/snmp']);
  const rows = r.stdout.split('\n').filter((l) => l.startsWith(`${group}:`));
  const names = rows[0]?.split(/\s+/) ?? [];
  const values = rows[1]?.split(/\s+/) ?? [];
  const i = names.indexOf(field);
  if (i < 0) throw new Error(`no ${group} ${field} in /proc/net/snmp`);
  return Number(values[i]);
}

/** Resolve when a line of the child's stdout matches; reject on exit or after timeoutMs. */
export function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    // Only whole lines are matched: a line is tested once its newline has come (a pipe may
    // split `stats {...}` anywhere, and a pattern must not see half of it).
    let partial = '';
    let tail = '';
    let err = '';
    const done = (f: () => void) => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onErr);
      child.off('exit', onExit);
      f();
    };
    const onData = (d: Buffer | string) => {
      const text = d.toString();
      tail = (tail + text).slice(-500);
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (pattern.test(line)) return done(() => resolve(line));
      }
    };
    const onErr = (d: Buffer | string) => {
      if (err.length < 10_000) err += d.toString();
    };
    const onExit = (code: number | null) =>
      done(() => reject(new Error(`exited (${code}) before printing ${pattern}: ${err.trim()}`)));
    const timer = setTimeout(
      () => done(() => reject(new Error(`no ${pattern} within ${timeoutMs} ms; stdout: ${tail}`))),
      timeoutMs,
    );
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onErr);
    child.once('exit', onExit);
  });
}

/** Poll cond every 5 ms until it holds or timeoutMs passes; returns whether it held. */
export async function waitUntil(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}
