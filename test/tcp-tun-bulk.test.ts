/**
 * 100 MB each way between our TCP and the Linux kernel over TUN, with the bytes checked
 * by SHA-256 at the far end:
 *  - kernel -> us as a client's upload: curl POSTs 100 MB to our /sha256;
 *  - us -> kernel as a server's download: curl GETs /bytes/104857600 from us;
 *  - us as a client downloading: node:http's client over our socket GETs 100 MB from
 *    python's http.server;
 *  - us as a client uploading: our socket writes 100 MB to a python sink that hashes.
 * Each transfer prints its rate (a line starting 'tcp-tun bulk') for the record.
 *
 * Root only; fails (never skips) without it. Namespace 'sw-tcptun-bulk-<pid>', removed in
 * afterAll; kernel-side programs run with `ip netns exec` and are killed by PID.
 */

import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Netns } from '@stepwire/link';
import { netnsExists } from '@stepwire/link';
import type { TcpConnection, TcpSocket } from '@stepwire/tcp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpOverTcp, type TcpService } from '../packages/cli/src/services/tcp-services.ts';
import { requireRootAndPrograms } from '../packages/cli/src/tun/kernel.ts';
import { TunSession } from '../packages/cli/src/tun/session.ts';
import {
  bash,
  exitWithin,
  type KernelProcess,
  patternSha256,
  python,
  runInfo,
  SINK_SERVER,
  seededBytes,
  sha256,
  track,
  waitListening,
} from './support/tcp-tun.ts';

const NS = `sw-tcptun-bulk-${process.pid}`;
const MB100 = 100 * 1024 * 1024;
const dir = mkdtempSync(path.join(tmpdir(), 'sw-tcptun-bulk-'));
const FILE = path.join(dir, 'big.bin');
let body: Buffer;
let bodyHash: string;
let s: TunSession;
let ns: Netns;
let web: TcpService;
const procs: KernelProcess[] = [];
const sockets: TcpSocket[] = [];

beforeAll(() => {
  requireRootAndPrograms(['ip', 'ss', 'curl', 'sha256sum', '/usr/bin/python3']);
  body = seededBytes(MB100, 100);
  bodyHash = sha256(body);
  writeFileSync(FILE, body);
  s = TunSession.open({ netns: NS, replace: true, pollTimeoutMs: 50 });
  ns = s.namespace!;
  web = httpOverTcp(s.tcp, 80);
});

afterAll(async () => {
  for (const x of sockets) x.destroy();
  for (const p of procs) p.kill();
  web?.close();
  await s?.close();
  rmSync(dir, { recursive: true, force: true });
  expect(netnsExists(NS)).toBe(false);
});

function report(what: string, bytes: number, ms: number): void {
  console.log(
    `tcp-tun bulk ${what}: ${bytes} bytes in ${ms.toFixed(0)} ms (${((bytes * 8) / ms / 1000).toFixed(0)} Mbit/s)`,
  );
}

describe('100 MB between curl and our HTTP server', () => {
  it('curl GETs /bytes/104857600 from us: the body hashes to the pattern', async () => {
    const t = performance.now();
    const r = await bash(ns, `curl -sS --max-time 90 http://198.18.0.2/bytes/${MB100} | sha256sum`, 100_000);
    report('us -> kernel (curl GET)', MB100, performance.now() - t);
    expect(r.code, runInfo(r)).toBe(0);
    expect(r.stdout.split(' ')[0]).toBe(patternSha256(MB100));
  });

  it("curl POSTs 100 MB to our /sha256: our hash of what we read is the file's", async () => {
    const t = performance.now();
    const r = await ns.run(
      'curl',
      [
        '-sS',
        '--max-time',
        '90',
        '-H',
        'content-type: application/octet-stream',
        '--data-binary',
        `@${FILE}`,
        'http://198.18.0.2/sha256',
      ],
      { timeoutMs: 100_000 },
    );
    report('kernel -> us (curl POST)', MB100, performance.now() - t);
    expect(r.code, runInfo(r)).toBe(0);
    expect(r.stdout.trim()).toBe(bodyHash);
  });
});

describe('100 MB between our client and kernel servers', () => {
  it("node:http's client over our socket GETs 100 MB from python's http.server", async () => {
    const server = track(
      ns.spawn('/usr/bin/python3', [
        '-m',
        'http.server',
        '40080',
        '--bind',
        '198.18.0.1',
        '--directory',
        dir,
      ]),
    );
    procs.push(server);
    await waitListening(ns, 40080);
    const t = performance.now();
    let ours = false;
    const { status, hash, length } = await new Promise<{ status: number; hash: string; length: number }>(
      (resolve, reject) => {
        // No `agent` option: `agent: false` would make node:http ignore createConnection.
        const req = http.get(
          {
            host: '198.18.0.1',
            port: 40080,
            path: '/big.bin',
            createConnection: () => {
              ours = true;
              const sock = s.tcp.connect({ host: '198.18.0.1', port: 40080 });
              sockets.push(sock);
              return sock as never;
            },
          },
          (res) => {
            if (!ours) reject(new Error('node:http answered over a socket that is not ours'));
            const h = createHash('sha256');
            let n = 0;
            res.on('data', (d: Buffer) => {
              h.update(d);
              n += d.length;
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, hash: h.digest('hex'), length: n }));
            res.on('error', reject);
          },
        );
        req.on('error', reject);
      },
    );
    report('kernel -> us (node:http GET from http.server)', length, performance.now() - t);
    server.kill();
    expect(status, server.err).toBe(200);
    expect(length).toBe(MB100);
    expect(hash).toBe(bodyHash);
  });

  it('our socket writes 100 MB to a kernel sink that hashes it', async () => {
    const p = await python(ns, SINK_SERVER, ['198.18.0.1', '40081']);
    procs.push(p);
    const t = performance.now();
    const sock = s.tcp.connect({ host: '198.18.0.1', port: 40081 });
    sockets.push(sock);
    sock.resume();
    // In 1 MB writes, with backpressure: what a streaming sender does.
    const step = 1 << 20;
    for (let at = 0; at < MB100; at += step) {
      if (!sock.write(body.subarray(at, Math.min(MB100, at + step)))) {
        await new Promise((r) => sock.once('drain', r));
      }
    }
    sock.end();
    const exit = await exitWithin(p, 90_000);
    report('us -> kernel (socket to a hashing sink)', MB100, performance.now() - t);
    expect(exit.code, p.err).toBe(0);
    expect(p.out).toContain(`sha256 ${bodyHash} ${MB100}`);
  });
});

describe('IPv6, and a kernel without TCP options', () => {
  it('curl GETs 20 MB from us over IPv6', async () => {
    const n = 20 * 1024 * 1024;
    const t = performance.now();
    const r = await bash(ns, `curl -sS --max-time 60 'http://[fd00:5757::2]/bytes/${n}' | sha256sum`, 70_000);
    report('us -> kernel over IPv6 (curl GET)', n, performance.now() - t);
    expect(r.code, runInfo(r)).toBe(0);
    expect(r.stdout.split(' ')[0]).toBe(patternSha256(n));
  });

  it('the kernel with SACK, timestamps and window scaling off: 20 MB each way through our fallbacks', async () => {
    // Per-namespace sysctls (set with ip netns exec): the root namespace keeps its own.
    const names = ['net.ipv4.tcp_sack', 'net.ipv4.tcp_timestamps', 'net.ipv4.tcp_window_scaling'];
    const rootBefore = names.map((n) => readFileSync(`/proc/sys/${n.replaceAll('.', '/')}`, 'utf8'));
    const set = await ns.run('sysctl', ['-w', ...names.map((n) => `${n}=0`)]);
    expect(set.code, runInfo(set)).toBe(0);
    const inside = await ns.run('sysctl', ['-n', ...names]);
    expect(inside.stdout.trim().split('\n')).toEqual(['0', '0', '0']);
    expect(names.map((n) => readFileSync(`/proc/sys/${n.replaceAll('.', '/')}`, 'utf8'))).toEqual(rootBefore);
    let conn: TcpConnection | undefined;
    const onConn = (sock: TcpSocket) => {
      conn = sock.connection;
    };
    web.server.on('connection', onConn);
    try {
      const n = 20 * 1024 * 1024;
      let t = performance.now();
      const get = await bash(ns, `curl -sS --max-time 60 http://198.18.0.2/bytes/${n} | sha256sum`, 70_000);
      report('us -> kernel, no TCP options (curl GET)', n, performance.now() - t);
      expect(get.code, runInfo(get)).toBe(0);
      expect(get.stdout.split(' ')[0]).toBe(patternSha256(n));
      // What our side agreed to: nothing the kernel did not offer.
      expect(conn?.stats).toMatchObject({ mss: 1460 });
      const file = path.join(dir, 'plain.bin');
      const body = body20();
      writeFileSync(file, body);
      t = performance.now();
      const post = await ns.run(
        'curl',
        ['-sS', '--max-time', '60', '--data-binary', `@${file}`, 'http://198.18.0.2/sha256'],
        { timeoutMs: 70_000 },
      );
      report('kernel -> us, no TCP options (curl POST)', body.length, performance.now() - t);
      expect(post.code, runInfo(post)).toBe(0);
      expect(post.stdout.trim()).toBe(sha256(body));
      // Without window scaling the kernel can have at most 64 KiB in flight to us.
      expect(conn?.stats.rcvWnd).toBeLessThanOrEqual(0xffff);
    } finally {
      web.server.off('connection', onConn);
      await ns.run('sysctl', [
        '-w',
        'net.ipv4.tcp_sack=1',
        'net.ipv4.tcp_timestamps=1',
        'net.ipv4.tcp_window_scaling=1',
      ]);
    }
  });
});

function body20(): Buffer {
  return seededBytes(20 * 1024 * 1024, 20);
}
