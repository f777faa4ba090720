// IpCore alone (sans-I/O): the ICMP errors a host sends are limited by a token bucket
// refilled by `now` (RFC 1812 §4.3.2.8, RFC 4443 §2.4(f)), and never sent where RFC 1122
// §3.2.2 / RFC 4443 §2.4(e) forbid.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { IpAction } from '../src/host/core.ts';
import { IcmpTokenBucket } from '../src/host/icmp-rate.ts';
import { ipv4, makeCore, sentIcmp4 } from './core-harness.ts';

/** Protocol 253 (RFC 3692 experimentation): nobody registered, so protocol unreachable. */
const UNKNOWN = 253;

function unknownProtocol(id: number, dst = '198.18.0.1'): Uint8Array {
  return ipv4({ protocol: UNKNOWN, identification: id, dst, payload: new Uint8Array(8) });
}

describe('IpCore ICMP error rate limit (sans-I/O)', () => {
  it('sends a burst, then one error per refilled token', () => {
    const { core } = makeCore({ icmpErrorsPerSecond: 1, icmpErrorBurst: 3 });
    const at0: IpAction[] = [];
    for (let i = 0; i < 5; i++) core.receive(unknownProtocol(i), undefined, 0, at0);
    expect(sentIcmp4(at0).map((e) => e.icmp)).toEqual(
      Array(3).fill(expect.objectContaining({ kind: 'destination-unreachable', code: 2 })),
    );
    expect(core.counters.get('icmpv4.error.rate-limited')).toBe(2);
    const at999: IpAction[] = [];
    core.receive(unknownProtocol(5), undefined, 999, at999);
    expect(sentIcmp4(at999)).toHaveLength(0);
    const at1999: IpAction[] = [];
    core.receive(unknownProtocol(6), undefined, 1999, at1999);
    expect(sentIcmp4(at1999)).toHaveLength(1);
  });

  it('in any run, errors sent by time T never exceed burst + rate·T', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 1, max: 10 }),
        fc.array(fc.integer({ min: 0, max: 500 }), { minLength: 1, maxLength: 60 }),
        (rate, burst, gaps) => {
          const bucket = new IcmpTokenBucket(rate, burst, 0);
          let now = 0;
          let sent = 0;
          for (const g of gaps) {
            now += g;
            if (bucket.take(now)) sent++;
            expect(sent).toBeLessThanOrEqual(burst + (rate * now) / 1000);
          }
        },
      ),
    );
  });

  it('a datagram to a broadcast address draws no error (RFC 1122 §3.2.2) and costs no token', () => {
    const { core } = makeCore({ icmpErrorsPerSecond: 1, icmpErrorBurst: 1 });
    const out: IpAction[] = [];
    // To the subnet's directed broadcast: no error (RFC 1122 §3.2.2).
    core.receive(unknownProtocol(1, '198.18.0.255'), undefined, 0, out);
    expect(sentIcmp4(out)).toHaveLength(0);
    // The one token is still there for a unicast datagram.
    core.receive(unknownProtocol(2), undefined, 0, out);
    expect(sentIcmp4(out)).toHaveLength(1);
    expect(core.counters.get('icmpv4.error.rate-limited')).toBe(0);
  });
});
