/**
 * Transfers between our TCP and the Linux kernel over a TUN link we impair ourselves
 * (this kernel has no netem): @stepwire/link's impair() between the device and our stack
 * drops 2% of the packets and reorders 2% in each direction, seeded. Both TCPs must
 * recover (our SACK, fast retransmit and RTO on one side; the kernel's RACK/TLP on the
 * other) and every byte must arrive, checked by SHA-256.
 *
 * Root only; fails (never skips) without it. Namespace 'sw-tcptun-imp-<pid>', removed in
 * afterAll; kernel-side programs run with `ip netns exec` and are killed by PID.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { impair, type Netns, netnsExists } from '@stepwire/link';
import type { TcpConnection, TcpSocket } from '@stepwire/tcp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpOverTcp, type TcpService } from '../packages/cli/src/services/tcp-services.ts';
import { requireRootAndPrograms } from '../packages/cli/src/tun/kernel.ts';
import { TunSession } from '../packages/cli/src/tun/session.ts';
import {
  bash,
  exitWithin,
  type KernelProcess,
  kernelTcpExt,
  patternSha256,
  python,
  runInfo,
  SINK_SERVER,
  seededBytes,
  sha256,
} from './support/tcp-tun.ts';

const NS = `sw-tcptun-imp-${process.pid}`;
const SIZE = 20 * 1024 * 1024;
const LOSSY = { loss: 0.02, reorder: 0.02, reorderDelay: 5 } as const;
const dir = mkdtempSync(path.join(tmpdir(), 'sw-tcptun-imp-'));
let s: TunSession;
let ns: Netns;
let web: TcpService;
const procs: KernelProcess[] = [];
const sockets: TcpSocket[] = [];
/** The connection of the HTTP service's latest client. */
let lastConn: TcpConnection | undefined;

beforeAll(() => {
  requireRootAndPrograms(['ip', 'curl', 'sha256sum', '/usr/bin/python3']);
  s = TunSession.open({
    netns: NS,
    replace: true,
    pollTimeoutMs: 50,
    wrapLink: (link, clock) => impair(link, { ...LOSSY, seed: 2026, receive: LOSSY }, clock),
  });
  ns = s.namespace!;
  web = httpOverTcp(s.tcp, 80);
  web.server.on('connection', (sock) => {
    lastConn = sock.connection;
  });
});

afterAll(async () => {
  for (const x of sockets) x.destroy();
  for (const p of procs) p.kill();
  web?.close();
  await s?.close();
  rmSync(dir, { recursive: true, force: true });
  expect(netnsExists(NS)).toBe(false);
});

function report(what: string, bytes: number, ms: number, conn?: TcpConnection): void {
  const st = conn?.stats;
  console.log(
    `tcp-tun impaired ${what}: ${bytes} bytes in ${ms.toFixed(0)} ms (${((bytes * 8) / ms / 1000).toFixed(0)} Mbit/s)` +
      (st ? `; our retransmits ${st.retransmits} (fast ${st.fastRetransmits}, timeouts ${st.timeouts})` : ''),
  );
}

const linkDrops = () => s.tun.counters.get('drop.loss');

describe('2% loss and 2% reordering each way on the TUN link', () => {
  it('us -> kernel: curl GETs 20 MB from us intact; we retransmitted what was lost', async () => {
    const drops = linkDrops();
    const t = performance.now();
    const r = await bash(ns, `curl -sS --max-time 100 http://198.18.0.2/bytes/${SIZE} | sha256sum`, 110_000);
    report('us -> kernel (curl GET)', SIZE, performance.now() - t, lastConn);
    expect(r.code, runInfo(r)).toBe(0);
    expect(r.stdout.split(' ')[0]).toBe(patternSha256(SIZE));
    expect(linkDrops() - drops).toBeGreaterThan(100);
    expect(lastConn?.stats.retransmits).toBeGreaterThan(0);
  });

  it('kernel -> us: curl POSTs 20 MB to our /sha256 intact; the kernel retransmitted', async () => {
    const file = path.join(dir, 'post.bin');
    const body = seededBytes(SIZE, 31);
    writeFileSync(file, body);
    const before = await kernelTcpExt(ns);
    const t = performance.now();
    const r = await ns.run(
      'curl',
      ['-sS', '--max-time', '100', '--data-binary', `@${file}`, 'http://198.18.0.2/sha256'],
      { timeoutMs: 110_000 },
    );
    report('kernel -> us (curl POST)', SIZE, performance.now() - t, lastConn);
    expect(r.code, runInfo(r)).toBe(0);
    expect(r.stdout.trim()).toBe(sha256(body));
    const after = await kernelTcpExt(ns);
    const kernelRetrans =
      (after.TCPLostRetransmit ?? 0) +
      (after.TCPFastRetrans ?? 0) +
      (after.TCPSlowStartRetrans ?? 0) +
      (after.TCPLossProbes ?? 0) -
      ((before.TCPLostRetransmit ?? 0) +
        (before.TCPFastRetrans ?? 0) +
        (before.TCPSlowStartRetrans ?? 0) +
        (before.TCPLossProbes ?? 0));
    expect(kernelRetrans).toBeGreaterThan(0);
  });

  it('our client writes 10 MB to a kernel sink intact', async () => {
    const p = await python(ns, SINK_SERVER, ['198.18.0.1', '40090']);
    procs.push(p);
    const body = seededBytes(10 * 1024 * 1024, 32);
    const t = performance.now();
    const sock = s.tcp.connect({ host: '198.18.0.1', port: 40090 });
    sockets.push(sock);
    sock.resume();
    sock.end(body);
    const exit = await exitWithin(p, 100_000);
    report('us -> kernel (socket to a hashing sink)', body.length, performance.now() - t, sock.connection);
    expect(exit.code, p.err).toBe(0);
    expect(p.out).toContain(`sha256 ${sha256(body)} ${body.length}`);
  });
});
