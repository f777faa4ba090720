/**
 * A malformed-packet storm against our stack over TUN: /usr/bin/python3 with scapy inside
 * the namespace writes a few thousand broken and random IPv4/IPv6/ICMP/UDP packets straight
 * onto the TUN device (an AF_PACKET socket, so the kernel fixes nothing up on the way):
 * scapy's fuzz(), and hand-broken headers — bad checksums and lengths, truncated options
 * and extension headers, bad versions, overlapping, tiny and incomplete fragments. After
 * it the stack must still answer ping and UDP echo, its drop counters must account for the
 * garbage, and its memory and reassembly buffers must stay bounded.
 *
 * Root only; fails (never skips) without root, python3-scapy or socat. Namespace
 * 'sw-tun-storm-<pid>', removed in afterAll.
 */
import { DEFAULT_REASSEMBLY_LIMITS } from '@stepwire/ip';
import { type Netns, netnsExists } from '@stepwire/link';
import { type UdpEchoService, udpEcho } from '@stepwire/udp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  parsePingSummary,
  requirePythonModules,
  requireRootAndPrograms,
  waitUntil,
} from '../packages/cli/src/tun/kernel.ts';
import { dropCount, TunSession } from '../packages/cli/src/tun/session.ts';
import { STORM } from './support/storm.ts';

// The PID in the name: two runs of this file at once (two checkouts, a loop) must not
// remove each other's namespace.
const NS = `sw-tun-storm-${process.pid}`;
const COUNT = 3000;
const SEED = 20260501;
let s: TunSession;
let ns: Netns;
let echo: UdpEchoService;

interface StormSummary {
  sent: number;
  minDrops: number;
  held: number;
  per: Record<string, number>;
}

beforeAll(() => {
  requireRootAndPrograms(['ip', 'ping', 'socat', '/usr/bin/python3']);
  requirePythonModules(['scapy.all']);
  s = TunSession.open({ netns: NS, replace: true, pollTimeoutMs: 50 });
  ns = s.namespace!;
  echo = udpEcho(s.udp, 7);
});

afterAll(async () => {
  echo?.close();
  await s?.close();
  expect(netnsExists(NS)).toBe(false);
});

/** Packets the TUN device's queue dropped because we did not read them in time. */
async function kernelTxDropped(): Promise<number> {
  const r = await ns.run('cat', [`/sys/class/net/${s.device}/statistics/tx_dropped`]);
  const n = Number(r.stdout.trim());
  if (r.code !== 0 || !Number.isInteger(n)) throw new Error(`cannot read tx_dropped: ${r.stderr}`);
  return n;
}

async function stillServes(): Promise<void> {
  for (const dst of [s.ours.v4, s.ours.v6]) {
    const r = await ns.run('ping', ['-n', '-c', '5', '-i', '0.05', '-W', '2', dst], { timeoutMs: 10_000 });
    expect(parsePingSummary(r.stdout), `ping ${dst}`).toMatchObject({ transmitted: 5, received: 5 });
  }
  for (const target of [`UDP4:${s.ours.v4}:7`, `UDP6:[${s.ours.v6}]:7`]) {
    const r = await ns.run('socat', ['-t', '1', '-', target], { input: 'still there?', timeoutMs: 10_000 });
    expect(r.stdout, target).toBe('still there?');
  }
}

describe('malformed-packet storm', () => {
  it(`${COUNT} broken and random packets: every one dropped or queued, nothing breaks`, async () => {
    await stillServes();
    const tun = s.tun.counters;
    const host = s.host.counters;
    const heapBefore = process.memoryUsage().heapUsed;
    const rxBefore = tun.get('rx');
    const txDroppedBefore = await kernelTxDropped();
    const dropsBefore = dropCount(host) + dropCount(tun);
    const answered = () => host.get('icmpv4.echo.replied') + host.get('icmpv6.echo.replied') + echo.echoed;
    const answeredBefore = answered();
    const icmpErrorsBefore = host.get('icmpv4.rx.error') + host.get('icmpv6.rx.error');

    const r = await ns.run('/usr/bin/python3', ['-c', STORM, s.device, String(COUNT), String(SEED)], {
      timeoutMs: 60_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as StormSummary;
    expect(summary.sent).toBeGreaterThanOrEqual(COUNT);

    // Everything written to the device reaches us, but for what the device's queue dropped
    // while a busy machine kept us from reading (the kernel counts those as tx_dropped).
    const queueDrops = async () => (await kernelTxDropped()) - txDroppedBefore;
    let lost = await queueDrops();
    expect(await waitUntil(() => tun.get('rx') - rxBefore >= summary.sent - lost, 10_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    lost = await queueDrops();
    const rx = tun.get('rx') - rxBefore;
    expect(lost).toBeLessThanOrEqual(summary.sent * 0.05);
    // Beyond the storm, only the kernel's ICMP errors about datagrams we sent in answer to
    // valid fuzzed packets (an echo reply to a random port: port unreachable).
    const icmpErrors = host.get('icmpv4.rx.error') + host.get('icmpv6.rx.error') - icmpErrorsBefore;
    expect(rx).toBe(summary.sent - lost + icmpErrors);
    expect(tun.get('error.handler')).toBe(0);

    const drops = dropCount(host) + dropCount(tun) - dropsBefore;
    const counters = host.snapshot();
    console.log(
      `storm: ${summary.sent} sent, ${rx} received, ${drops} dropped (at least ${summary.minDrops} expected, ${summary.held} fragments may wait in reassembly)`,
    );
    console.log(
      Object.entries(counters)
        .filter(([k]) => k.includes('drop') || k.startsWith('reasm'))
        .map(([k, v]) => `${k}=${v}`)
        .join(' '),
    );
    // Each broken packet (each broken fragment set) was counted as a drop; fuzzed ones were
    // dropped or, when valid, answered; only fragments were left waiting in a queue.
    const valid = answered() - answeredBefore;
    const fuzzed = Object.entries(summary.per)
      .filter(([k]) => k.startsWith('fuzz'))
      .reduce((a, [, n]) => a + n, 0);
    console.log(`storm: ${valid} valid packets answered, ${fuzzed} fuzzed`);
    expect(drops).toBeGreaterThanOrEqual(summary.minDrops - lost);
    expect(valid).toBeLessThanOrEqual(fuzzed);
    expect(drops + valid).toBeLessThanOrEqual(rx);
    expect(drops + valid).toBeGreaterThanOrEqual(summary.minDrops + 0.9 * fuzzed - lost);

    // Each of the two reassemblers (IPv4, IPv6) holds to its caps; Host.stats sums them.
    const held = s.host.stats;
    expect(held.reassemblyBytes).toBeLessThanOrEqual(2 * DEFAULT_REASSEMBLY_LIMITS.maxBytesTotal);
    expect(held.reassemblyDatagrams).toBeLessThanOrEqual(4 * DEFAULT_REASSEMBLY_LIMITS.maxDatagramsPerSource);
    await stillServes();
    const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
    console.log(`storm: heap grew by ${(heapGrowth / 1e6).toFixed(1)} MB`);
    expect(heapGrowth).toBeLessThan(64e6);
  });
});
