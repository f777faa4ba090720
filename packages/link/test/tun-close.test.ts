/**
 * close() while the kernel floods the device: the reader thread ends, the fd and device go,
 * and a process whose only link was closed that way exits by itself. Namespaces
 * sw-link-close-<pid> and sw-link-close-c-<pid>, made and removed here; needs root.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { netnsDown, netnsExists } from '../src/netns.ts';
import { FLOOD, makeNs, requireRoot, type TestNs } from './tun-helpers.ts';

// The PID in the name: two runs of this file at once (two checkouts, a loop) must not
// remove each other's namespace.
const NS = `sw-link-close-${process.pid}`;
const CHILD_NS = `sw-link-close-c-${process.pid}`;
const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../../..');

afterAll(() => {
  netnsDown(NS);
  netnsDown(CHILD_NS);
});

describe('close() during traffic', () => {
  let ns: TestNs | undefined;

  beforeAll(() => {
    requireRoot();
  });

  afterAll(async () => {
    await ns?.close();
  });

  const cases = [
    [false, 'main'],
    [true, 'main'],
    [true, 'thread'],
  ] as const;
  for (const [offloads, writer] of cases) {
    it(`ends the reader and removes the device (offloads ${offloads ? 'on' : 'off'}, writes on ${writer === 'main' ? 'the main thread' : 'a writer thread'})`, async () => {
      const made = makeNs(NS, 'swcl0', { offloads, writer });
      ns = made.ns;
      const link = made.link;
      let closedAt = -1;
      const seen = new Promise<void>((resolve) =>
        link.onPacket(() => {
          if (link.counters.get('rx') >= 2000 && closedAt < 0) {
            closedAt = link.counters.get('rx');
            link.close();
            resolve();
          }
        }),
      );
      const flood = ns.exec('/usr/bin/python3', ['-c', FLOOD]);
      await seen;
      await link.closed;
      expect(link.error).toBeUndefined();
      // Nothing is handed up once close() returned, though the ring may have held more.
      expect(link.counters.get('rx')).toBe(closedAt);
      await flood;
      await expect(ns.exec('ip', ['link', 'show', 'swcl0'])).rejects.toThrow(/does not exist/);
      await ns.close();
      ns = undefined;
    });
  }

  it('the writer thread counts the packets the kernel refuses, once the main thread looks', async () => {
    const made = makeNs(NS, 'swcl0', { writer: 'thread' });
    ns = made.ns;
    const link = made.link;
    link.send(new Uint8Array([0x00, 0x01, 0x02])); // version 0: TUN refuses it (EINVAL)
    expect(link.counters.get('tx')).toBe(1); // queued
    for (let i = 0; i < 100 && link.counters.total('drop.write') === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
      link.send(new Uint8Array([0x00])); // each send's end of turn collects the writer's counts
    }
    expect(link.counters.get('drop.write.EINVAL')).toBeGreaterThanOrEqual(1);
    expect(link.writerStats?.sleeps).toBeGreaterThan(0);
    await ns.close();
    ns = undefined;
  });

  it('signals do not stop the reader: a second of traffic under the CPU profiler (SIGPROF, EINTR)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sw-link-prof-'));
    try {
      const fixture = path.join(here, 'fixtures', 'tun-child.ts');
      const r = spawnSync(
        process.execPath,
        ['--cpu-prof', '--cpu-prof-dir', dir, '--import', 'tsx', fixture, 'traffic-for-a-second', CHILD_NS],
        { cwd: repoRoot, encoding: 'utf8', timeout: 30_000 },
      );
      expect(r.status, r.stderr).toBe(0);
      const line = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as {
        rx?: number;
        error?: string | null;
      };
      expect(line.error).toBeNull();
      expect(line.rx).toBeGreaterThan(1000);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      netnsDown(CHILD_NS);
    }
  });

  it('a process that closes its link mid-flood exits by itself', async () => {
    const fixture = path.join(here, 'fixtures', 'tun-child.ts');
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, 'close-during-traffic', CHILD_NS], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) =>
      child.once('close', (c, s) => r([c, s])),
    );
    clearTimeout(killer);
    expect(signal, err).toBeNull();
    expect(code, err).toBe(0);
    expect(out).toMatch(/"closed":true/);
    expect(netnsExists(CHILD_NS)).toBe(false);
  });
});
