/**
 * What the kernel sends on a fresh link without being asked — IPv6 router solicitations,
 * MLD reports, neighbour solicitations for duplicate address detection — and neighbour
 * discovery aimed at us: a raw-IP TUN link has no neighbours and no routers, so the stack
 * drops all of it, counts each packet, and answers none (RFC 4443 §2.4(e): no ICMP error
 * about an ICMP error or a multicast; ND and MLD are informational messages we do not run).
 *
 * This namespace keeps the kernel's IPv6 chatter on (quietIpv6: false). Root only; fails
 * (never skips) without it. Namespace 'sw-tun-unsol-<pid>', removed in afterAll.
 */
import { type Netns, netnsExists } from '@stepwire/link';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRootAndPrograms, waitUntil } from '../packages/cli/src/tun/kernel.ts';
import { dropCount, TunSession } from '../packages/cli/src/tun/session.ts';

// The PID in the name: two runs of this file at once (two checkouts, a loop) must not
// remove each other's namespace.
const NS = `sw-tun-unsol-${process.pid}`;
let s: TunSession;
let ns: Netns;
const seen: string[] = [];
const trace: string[] = [];

/** Make the kernel send MLD reports (join a group) and ND messages to us (raw ICMPv6 socket). */
const CHATTER = `
import socket, struct, time
ifindex = socket.if_nametoindex('sw0')
g = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
# Joining a group makes the kernel send unsolicited MLD reports (RFC 3810 §6.1).
g.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, socket.inet_pton(socket.AF_INET6, 'ff12::5757') + struct.pack('@I', ifindex))
r = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
r.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
us = socket.inet_pton(socket.AF_INET6, 'fd00:5757::2')
# Neighbour solicitation (RFC 4861 §4.3) and neighbour advertisement (§4.4) sent to us;
# the kernel fills in the checksum of a raw ICMPv6 socket.
r.sendto(struct.pack('!BBHI', 135, 0, 0, 0) + us, ('fd00:5757::2', 0))
r.sendto(struct.pack('!BBHI', 136, 0, 0, 0x60000000) + socket.inet_pton(socket.AF_INET6, 'fd00:5757::1'), ('fd00:5757::2', 0))
# A router solicitation (§4.1) and an MLD query (RFC 3810 §5.1) sent to us.
r.sendto(struct.pack('!BBHI', 133, 0, 0, 0), ('fd00:5757::2', 0))
time.sleep(1.5)
print('done', flush=True)
`;

beforeAll(() => {
  requireRootAndPrograms(['ip', '/usr/bin/python3']);
  s = TunSession.open({
    netns: NS,
    replace: true,
    quietIpv6: false,
    pollTimeoutMs: 50,
    tap: (dir, p) => {
      if (dir === 'in')
        seen.push(p[0]! >> 4 === 6 ? `v6 nh=${p[6]} dst=${p.subarray(24, 26).join('.')}` : `v${p[0]! >> 4}`);
    },
  });
  s.trace.on((e) => {
    trace.push(`${e.dir} ${e.layer} ${e.summary}`);
  });
  ns = s.namespace!;
});

afterAll(async () => {
  await s?.close();
  expect(netnsExists(NS)).toBe(false);
});

describe('unsolicited IPv6 traffic from the kernel', () => {
  it('router solicitations, MLD reports and neighbour discovery are dropped, counted, never answered', async () => {
    const r = await ns.run('/usr/bin/python3', ['-c', CHATTER], { timeoutMs: 15_000 });
    expect(r.stdout.trim(), r.stderr).toBe('done');
    const c = s.host.counters;
    // The kernel solicits routers on its own after the link comes up (RFC 4861 §6.3.7:
    // within MAX_RTR_SOLICITATION_DELAY, 1 s): wait for one, and for the rest to land.
    expect(
      await waitUntil(() => c.get('ipv6.drop.multicast') >= 2 && c.get('icmpv6.drop.ndp') >= 3, 8000),
    ).toBe(true);
    const rx = s.tun.counters.get('rx');
    expect(rx).toBe(seen.length);
    // Every packet that arrived is a drop in some counter: nothing was delivered to a socket or answered.
    expect(dropCount(c)).toBe(rx);
    expect(c.get('icmpv6.drop.ndp')).toBeGreaterThanOrEqual(3);
    expect(c.get('ipv6.drop.multicast')).toBeGreaterThanOrEqual(2);
    expect(s.tun.counters.get('tx')).toBe(0);
    expect(c.get('ipv6.tx') + c.get('ipv4.tx')).toBe(0);
    expect(c.total('icmpv6.tx')).toBe(0);
    expect(s.tun.counters.get('error.handler')).toBe(0);
    // Nothing went out, not even in the trace (the stack drops this chatter quietly).
    expect(trace.filter((t) => t.startsWith('out '))).toEqual([]);
    // The stack is still fine afterwards.
    expect((await s.host.ping(s.kernel.v6, { timeoutMs: 2000 })).from).toBe(s.kernel.v6);
  });
});
