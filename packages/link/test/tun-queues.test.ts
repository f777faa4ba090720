/**
 * IFF_MULTI_QUEUE: several TunLinks on one device, one per queue, inside namespace
 * sw-link-mq-<pid> made and removed here (198.18.0.0/24). Needs root; fails without it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { netnsDown } from '../src/netns.ts';
import type { TunLink } from '../src/tun.ts';
import { makeNs, requireRoot, type TestNs, udpEchoV4 } from './tun-helpers.ts';

// The PID in the name: two runs of this file at once (two checkouts, a loop) must not
// remove each other's namespace.
const NS = `sw-link-mq-${process.pid}`;
const DEV = 'swmq0';
const FLOWS = 32;

/**
 * One UDP socket per flow (so each has its own source port and its own flow hash), one
 * datagram each to 198.18.0.2:7; prints how many came back intact.
 */
const CLIENT = `
import socket, sys
n = int(sys.argv[1])
socks = []
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.connect(('198.18.0.2', 7))
    s.send(b'flow %d' % i)
    socks.append(s)
ok = 0
for i, s in enumerate(socks):
    try:
        ok += s.recv(100) == b'flow %d' % i
    except socket.timeout:
        pass
print(ok)
`;

afterAll(() => {
  netnsDown(NS);
});

describe('multi-queue TUN device', () => {
  let ns: TestNs | undefined;
  let q0: TunLink;
  let q1: TunLink;

  beforeAll(() => {
    requireRoot();
    const made = makeNs(NS, DEV, { multiQueue: true });
    ns = made.ns;
    q0 = made.link;
    q1 = ns.open({ multiQueue: true });
  });

  afterAll(async () => {
    await ns?.close();
  });

  it('two fds attach to one device as two queues', async () => {
    expect(q0.name).toBe(DEV);
    expect(q1.name).toBe(DEV);
    const show = await ns!.exec('ip', ['-d', 'link', 'show', DEV]);
    expect(show).toMatch(/multi_queue/);
  });

  it('a single-queue open of the multi-queue device is refused', () => {
    expect(() => ns!.open({ multiQueue: false })).toThrow(expect.objectContaining({ code: 'ERR_TUN_BUSY' }));
  });

  it('the kernel spreads flows over both queues, and both queues write back to it', async () => {
    for (const q of [q0, q1]) {
      q.onPacket((p) => {
        const back = udpEchoV4(p);
        if (back) q.send(back);
      });
    }
    const out = await ns!.exec('/usr/bin/python3', ['-c', CLIENT, String(FLOWS)]);
    expect(Number(out.trim())).toBe(FLOWS);
    const rx0 = q0.counters.get('rx');
    const rx1 = q1.counters.get('rx');
    // Flows are placed by a keyed hash; 32 flows all on one queue has odds of 2^-31.
    expect(rx0).toBeGreaterThan(0);
    expect(rx1).toBeGreaterThan(0);
    expect(q0.counters.get('tx')).toBeGreaterThan(0);
    expect(q1.counters.get('tx')).toBeGreaterThan(0);
    expect(q0.counters.get('tx') + q1.counters.get('tx')).toBe(FLOWS);
  });

  it('closing one queue leaves the other carrying every flow', async () => {
    q1.close();
    await q1.closed;
    const before = q0.counters.get('rx');
    const out = await ns!.exec('/usr/bin/python3', ['-c', CLIENT, '8']);
    expect(Number(out.trim())).toBe(8);
    expect(q0.counters.get('rx') - before).toBeGreaterThanOrEqual(8);
  });
});

describe('multi-queue with offloads', () => {
  it('every queue gets the virtio-net header and reports the offloads; flows still spread', async () => {
    requireRoot();
    const { ns, link: a } = makeNs(NS, DEV, { multiQueue: true, offloads: true });
    try {
      const b = ns.open({ multiQueue: true, offloads: true });
      expect(a.offloads).toEqual({ checksum: true, tsoMax: 65535 });
      expect(b.offloads).toEqual(a.offloads);
      for (const q of [a, b]) {
        q.onPacket((p, info) => {
          const back = udpEchoV4(p);
          // The kernel's UDP checksum may be left partial: hand it back partial, the device finishes it.
          if (back) q.send(back, info?.csum?.kind === 'partial' ? { csum: info.csum } : undefined);
        });
      }
      const out = await ns.exec('/usr/bin/python3', ['-c', CLIENT, String(FLOWS)]);
      expect(Number(out.trim())).toBe(FLOWS);
      expect(a.counters.get('rx')).toBeGreaterThan(0);
      expect(b.counters.get('rx')).toBeGreaterThan(0);
    } finally {
      await ns.close();
    }
  });
});
