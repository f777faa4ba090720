// IpCore alone (sans-I/O): reassembly deadlines come back from nextTimeout(), and a
// datagram given up at its deadline is answered with Time Exceeded code 1 only when its
// first fragment arrived (RFC 792; RFC 8200 §4.5). No clock: every call says `now`.
import { describe, expect, it } from 'vitest';
import type { IpAction } from '../src/host/core.ts';
import { A4, A6, B4, B6, ipv4, ipv6, makeCore, sentIcmp4, sentIcmp6, transmits } from './core-harness.ts';

const UDP = 17;

function fragments4(id: number) {
  const payload = new Uint8Array(24).map((_, i) => i);
  return {
    payload,
    first: ipv4({ protocol: UDP, identification: id, moreFragments: true, payload: payload.subarray(0, 16) }),
    last: ipv4({ protocol: UDP, identification: id, fragmentOffset: 2, payload: payload.subarray(16) }),
  };
}

describe('IpCore reassembly (sans-I/O)', () => {
  it('IPv4: a lone first fragment waits 30 s, then draws Time Exceeded code 1 quoting it (RFC 792)', () => {
    const { core } = makeCore();
    core.registerProtocol(UDP);
    const { first } = fragments4(0x4242);
    const out: IpAction[] = [];
    core.receive(first, undefined, 1000, out);
    expect(out).toEqual([]);
    expect(core.nextTimeout()).toBe(31_000);
    expect(core.stats.reassemblyDatagrams).toBe(1);

    const early: IpAction[] = [];
    core.handleTimeout(30_999, early);
    expect(early).toEqual([]);
    expect(core.nextTimeout()).toBe(31_000);

    const late: IpAction[] = [];
    core.handleTimeout(31_000, late);
    const errs = sentIcmp4(late);
    expect(errs).toHaveLength(1);
    const e = errs[0];
    expect(e?.ip).toMatchObject({ src: A4, dst: B4, protocol: 1 });
    expect(e?.icmp).toMatchObject({ kind: 'time-exceeded', code: 1 });
    // The quote is the first fragment as it arrived: its header, then its first data bytes.
    const original = e?.icmp.kind === 'time-exceeded' ? e.icmp.original : undefined;
    expect(original).toEqual(first);
    expect(core.nextTimeout()).toBeUndefined();
    expect(core.stats.reassemblyDatagrams).toBe(0);
    expect(core.counters.get('reasm.drop.timeout')).toBe(1);
  });

  it('IPv4: without fragment zero the timeout is silent (no Time Exceeded)', () => {
    const { core } = makeCore();
    const { last } = fragments4(7);
    const out: IpAction[] = [];
    core.receive(last, undefined, 0, out);
    expect(core.nextTimeout()).toBe(30_000);
    core.handleTimeout(30_000, out);
    expect(transmits(out)).toEqual([]);
    expect(core.counters.get('reasm.drop.timeout')).toBe(1);
    expect(core.nextTimeout()).toBeUndefined();
  });

  it('IPv4: the pieces in any order deliver one datagram and leave no deadline', () => {
    const { core } = makeCore();
    core.registerProtocol(UDP);
    const { payload, first, last } = fragments4(9);
    const out: IpAction[] = [];
    core.receive(last, undefined, 0, out);
    core.receive(first, undefined, 5, out);
    const delivered = out.filter((a) => a.kind === 'deliver');
    expect(delivered).toHaveLength(1);
    expect(delivered[0]?.kind === 'deliver' && delivered[0].delivery.payload).toEqual(payload);
    expect(core.nextTimeout()).toBeUndefined();
  });

  it('IPv6: a lone first fragment waits 60 s, then draws ICMPv6 Time Exceeded code 1 (RFC 8200 §4.5)', () => {
    const { core } = makeCore({ reassemblyTimeoutV6Ms: 60_000 });
    // UDP header and some data: the whole chain is in the first fragment (RFC 7112).
    const first = ipv6({
      nextHeader: UDP,
      extensionHeaders: [
        { kind: 'fragment', fragmentOffset: 0, moreFragments: true, identification: 0x1234 },
      ],
      payload: new Uint8Array(16),
    });
    const out: IpAction[] = [];
    core.receive(first, undefined, 0, out);
    expect(out).toEqual([]);
    expect(core.nextTimeout()).toBe(60_000);
    core.handleTimeout(59_999, out);
    expect(out).toEqual([]);
    core.handleTimeout(60_000, out);
    const errs = sentIcmp6(out);
    expect(errs).toHaveLength(1);
    expect(errs[0]?.ip).toMatchObject({ src: A6, dst: B6 });
    expect(errs[0]?.icmp).toMatchObject({ kind: 'time-exceeded', code: 1 });
  });

  it('the earliest of the IPv4 and IPv6 deadlines is the one returned', () => {
    const { core } = makeCore({ reassemblyTimeoutV4Ms: 30_000, reassemblyTimeoutV6Ms: 60_000 });
    const out: IpAction[] = [];
    core.receive(
      ipv6({
        nextHeader: UDP,
        extensionHeaders: [{ kind: 'fragment', fragmentOffset: 0, moreFragments: true, identification: 1 }],
        payload: new Uint8Array(16),
      }),
      undefined,
      0,
      out,
    );
    expect(core.nextTimeout()).toBe(60_000);
    core.receive(fragments4(3).first, undefined, 10_000, out);
    expect(core.nextTimeout()).toBe(40_000);
    core.handleTimeout(40_000, out);
    expect(core.nextTimeout()).toBe(60_000);
  });
});
