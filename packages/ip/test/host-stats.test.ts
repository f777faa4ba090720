import { VirtualClock } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { Host } from '../src/host.ts';
import { encodeIcmpv4 } from '../src/icmp.ts';
import { encodeIpv4 } from '../src/ipv4.ts';
import { pipe } from './pipe.ts';

function pair(prefix = 24) {
  const clock = new VirtualClock();
  const [la, lb] = pipe(clock);
  const a = new Host({ name: 'A', clock });
  const b = new Host({ name: 'B', clock });
  a.addInterface({ link: la, ipv4: `198.18.0.1/${prefix}`, ipv6: 'fd00:5757::1/64' });
  b.addInterface({ link: lb, ipv4: `198.18.0.2/${prefix}`, ipv6: 'fd00:5757::2/64' });
  return { clock, a, b, la };
}

// Issue 15: what a host holds (timers, pings, reassembly, path-MTU hints) is visible and
// returns to idle; nothing a peer sends grows it without bound.
describe('Host stats', () => {
  it('counts ping and reassembly timers while armed and returns to idle', async () => {
    const { clock, a } = pair();
    const idle = a.stats;
    expect(idle.timersArmed).toBe(0);
    const answered = a.ping('198.18.0.2');
    const lost = a.ping('198.18.0.77', { timeoutMs: 500 }).catch((e: Error) => e);
    expect(a.stats.pendingPings).toBe(2);
    expect(a.stats.timersArmed).toBe(2);
    clock.runUntilIdle();
    await answered;
    expect(await lost).toBeInstanceOf(Error);
    expect(a.stats).toEqual(idle);
    // A first fragment alone waits in reassembly with one timer, then expires (RFC 791).
    const frag = encodeIpv4({
      dscp: 0,
      ecn: 0,
      identification: 9,
      reservedFlag: false,
      dontFragment: false,
      moreFragments: true,
      fragmentOffset: 0,
      ttl: 64,
      protocol: 17,
      src: '198.18.0.2',
      dst: '198.18.0.1',
      options: [],
      payload: new Uint8Array(64),
    });
    a.receive(frag);
    expect(a.stats.reassemblyDatagrams).toBe(1);
    expect(a.stats.reassemblyBytes).toBe(64);
    expect(a.stats.timersArmed).toBe(1);
    clock.runUntilIdle();
    expect(a.stats).toEqual(idle);
  });

  it('keeps at most 4096 path-MTU hints however many destinations a flood of ICMP names', () => {
    const { a } = pair(15);
    a.registerProtocol(17, { receive: () => {} });
    for (let i = 0; i < 5000; i++) {
      const dst = `198.19.${i >> 8}.${i & 255}`;
      // Each error quotes a full-size datagram to another destination (RFC 1191 §4).
      const quoted = encodeIpv4({
        dscp: 0,
        ecn: 0,
        identification: i,
        reservedFlag: false,
        dontFragment: true,
        moreFragments: false,
        fragmentOffset: 0,
        ttl: 64,
        protocol: 17,
        src: '198.18.0.1',
        dst,
        options: [],
        payload: new Uint8Array(1472),
      }).subarray(0, 28);
      const err = encodeIcmpv4({
        kind: 'destination-unreachable',
        code: 4,
        nextHopMtu: 1400,
        original: quoted,
      });
      a.receive(
        encodeIpv4({
          dscp: 0,
          ecn: 0,
          identification: i,
          reservedFlag: false,
          dontFragment: false,
          moreFragments: false,
          fragmentOffset: 0,
          ttl: 64,
          protocol: 1,
          src: '198.18.0.254',
          dst: '198.18.0.1',
          options: [],
          payload: err,
        }),
      );
    }
    expect(a.mtuFor('198.19.19.135')).toBe(1400); // the latest is kept
    expect(a.mtuFor('198.19.0.0')).toBe(1500); // the oldest made room
    expect(a.stats.pmtuEntries).toBe(4096);
  });
});
