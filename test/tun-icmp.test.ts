/**
 * ICMP echo between our stack and the Linux kernel over a real TUN device, both ways and
 * both families, with payloads the kernel fragments and that we fragment. The kernel is
 * the oracle: its ping(8) must get every reply, its SNMP counters must see no checksum or
 * reassembly failures, and tshark must find nothing malformed in a capture of the session.
 *
 * Root only; fails (never skips) without it. Namespace 'sw-tun-icmp-<pid>', removed in afterAll.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Netns, netnsExists } from '@stepwire/link';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kernelSnmp, parsePingSummary, requireRootAndPrograms } from '../packages/cli/src/tun/kernel.ts';
import { dropCount, TunSession } from '../packages/cli/src/tun/session.ts';
import { tsharkProblems } from './support/tshark.ts';

// The PID in the name: two runs of this file at once (two checkouts, a loop) must not
// remove each other's namespace.
const NS = `sw-tun-icmp-${process.pid}`;
let s: TunSession;
let ns: Netns;

beforeAll(() => {
  requireRootAndPrograms(['ip', 'ping', 'tshark']);
  s = TunSession.open({ netns: NS, replace: true, pcapInMemory: true, pollTimeoutMs: 50 });
  ns = s.namespace!;
});

afterAll(async () => {
  await s?.close();
  expect(netnsExists(NS)).toBe(false);
});

/**
 * Drops on the echo path. The kernel's own IPv6 multicast chatter (MLD, neighbour
 * discovery), which may arrive at any moment and is dropped by design, is left out.
 */
function echoPathDrops(): number {
  const c = s.host.counters;
  return dropCount(c) - c.get('ipv6.drop.multicast') - c.get('icmpv6.drop.mld') - c.get('icmpv6.drop.ndp');
}

describe('the kernel pings our stack', () => {
  // 56: ping's default; 1452: fills a 1500-byte IPv6 packet (no fragments in either
  // family); 8000: the kernel fragments the request, we reassemble it and fragment the reply.
  for (const family of [4, 6] as const) {
    for (const size of [56, 1452, 8000]) {
      it(`IPv${family}, ${size} data bytes: 100 requests at 10 ms, every reply arrives`, async () => {
        const dst = family === 4 ? s.ours.v4 : s.ours.v6;
        const c = s.host.counters;
        const replied = `icmpv${family}.echo.replied`;
        const before = { replied: c.get(replied), reasm: c.get('reasm.ok'), drops: echoPathDrops() };
        const kernelCsumBefore =
          family === 4
            ? await kernelSnmp(ns, 'Icmp', 'InCsumErrors')
            : await kernelSnmp(ns, '', 'Icmp6InCsumErrors');
        const kernelReasmFailsBefore =
          family === 4 ? await kernelSnmp(ns, 'Ip', 'ReasmFails') : await kernelSnmp(ns, '', 'Ip6ReasmFails');
        const r = await ns.run(
          'ping',
          [`-${family}`, '-n', '-c', '100', '-i', '0.01', '-W', '2', '-s', String(size), dst],
          {
            timeoutMs: 20_000,
          },
        );
        const sum = parsePingSummary(r.stdout);
        expect(sum, r.stdout + r.stderr).toMatchObject({ transmitted: 100, received: 100 });
        expect(r.code).toBe(0);
        expect(c.get(replied) - before.replied).toBe(100);
        if (size > 1452) expect(c.get('reasm.ok') - before.reasm).toBe(100);
        expect(echoPathDrops() - before.drops).toBe(0);
        const kernelCsum =
          family === 4
            ? await kernelSnmp(ns, 'Icmp', 'InCsumErrors')
            : await kernelSnmp(ns, '', 'Icmp6InCsumErrors');
        expect(kernelCsum - kernelCsumBefore).toBe(0);
        const reasmFails =
          family === 4 ? await kernelSnmp(ns, 'Ip', 'ReasmFails') : await kernelSnmp(ns, '', 'Ip6ReasmFails');
        expect(reasmFails - kernelReasmFailsBefore).toBe(0);
      });
    }
  }
});

describe('our stack pings the kernel', () => {
  for (const family of [4, 6] as const) {
    for (const size of [0, 56, 1452, 8000, 30_000]) {
      it(`IPv${family}, ${size} data bytes: 20 requests, 20 replies with our data`, async () => {
        const dst = family === 4 ? s.kernel.v4 : s.kernel.v6;
        const c = s.host.counters;
        const mismatch = `icmpv${family}.echo.data-mismatch`;
        const before = c.get(mismatch);
        const frags = c.get(`ipv${family}.tx.fragments`);
        const results = [];
        for (let i = 0; i < 20; i++) results.push(await s.host.ping(dst, { size, timeoutMs: 2000 }));
        expect(results).toHaveLength(20);
        for (const r of results) {
          expect(r.from).toBe(dst);
          expect(r.bytes).toBe(size + 8);
          expect(r.ttl).toBe(64);
        }
        expect(c.get(mismatch)).toBe(before);
        if (size + 8 + (family === 4 ? 20 : 40) > 1500)
          expect(c.get(`ipv${family}.tx.fragments`)).toBeGreaterThan(frags);
      });
    }
  }

  it('a ping to an address nobody has times out instead of hanging', async () => {
    await expect(s.host.ping('198.18.0.77', { timeoutMs: 300 })).rejects.toMatchObject({ reason: 'timeout' });
  });
});

describe('capture', () => {
  it('a pcap of this TUN session decodes in tshark with nothing malformed', () => {
    const pcap = s.pcap!;
    expect(pcap.packets).toBeGreaterThan(1000);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sw-tun-icmp-')), 'session.pcap');
    try {
      fs.writeFileSync(file, pcap.bytes());
      expect(tsharkProblems(file)).toEqual([]);
    } finally {
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
    }
  });
});
