// IpCore alone (sans-I/O): path MTU learned from Packet Too Big / Fragmentation Needed,
// lowered never raised, floored at the version's minimum, and forgotten at its expiry by
// `now` alone (RFC 1191 §6.1/§6.3, RFC 8201 §4/§5.3).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { IpAction } from '../src/host/core.ts';
import { ICMPV4_UNREACH } from '../src/icmp.ts';
import { decodeIpv6 } from '../src/ipv6.ts';
import { A4, A6, B4, B6, icmp4, icmp6, ipv4, ipv6, makeCore, transmits } from './core-harness.ts';

const UDP = 17;
const ROUTER6 = 'fd00:5757::fe';
const ROUTER4 = '198.18.0.254';

/** The start of a datagram we sent (UDP, `length` bytes long), as a router quotes it. */
function quote6(length: number): Uint8Array {
  return ipv6({ src: A6, dst: B6, nextHeader: UDP, payload: new Uint8Array(length - 40) }).subarray(
    0,
    48 + 8,
  );
}

function quote4(length: number): Uint8Array {
  return ipv4({
    src: A4,
    dst: B4,
    protocol: UDP,
    dontFragment: true,
    payload: new Uint8Array(length - 20),
  }).subarray(0, 28);
}

function tooBig6(mtu: number, now: number, core: ReturnType<typeof makeCore>['core']): IpAction[] {
  const out: IpAction[] = [];
  const msg = icmp6({ kind: 'packet-too-big', code: 0, mtu, original: quote6(1500) }, ROUTER6, A6);
  core.receive(ipv6({ src: ROUTER6, nextHeader: 58, payload: msg }), undefined, now, out);
  return out;
}

describe('IpCore path MTU (sans-I/O)', () => {
  it('IPv6: Packet Too Big lowers the estimate until it expires 10 min later (RFC 8201 §5.3)', () => {
    const { core } = makeCore();
    core.registerProtocol(UDP);
    expect(core.mtuFor(B6, 0)).toBe(1500);
    const out = tooBig6(1400, 5_000, core);
    // The transport hears of it too, as a packet-too-big report with the MTU.
    expect(out).toContainEqual({
      kind: 'icmp-error',
      report: expect.objectContaining({ kind: 'packet-too-big', mtu: 1400, dst: B6, reporter: ROUTER6 }),
    });
    expect(core.mtuFor(B6, 5_000)).toBe(1400);
    expect(core.pmtuExpiry(B6)).toBe(605_000);
    expect(core.mtuFor(B6, 604_999)).toBe(1400);
    expect(core.mtuFor(B6, 605_000)).toBe(1500);
    expect(core.stats.pmtuEntries).toBe(0);
  });

  it('sends fragments that fit the learned MTU, and whole datagrams again after expiry', () => {
    const { core } = makeCore();
    tooBig6(1280, 0, core);
    const out: IpAction[] = [];
    expect(core.send({ dst: B6, protocol: UDP, payload: new Uint8Array(1400) }, 1, out)).toEqual({
      ok: true,
    });
    const sent = transmits(out);
    expect(sent.length).toBe(2);
    for (const t of sent) {
      expect(t.packet.length).toBeLessThanOrEqual(1280);
      expect(decodeIpv6(t.packet).extensionHeaders[0]?.kind).toBe('fragment');
    }
    const later: IpAction[] = [];
    core.send({ dst: B6, protocol: UDP, payload: new Uint8Array(1400) }, 600_000, later);
    expect(transmits(later).map((t) => t.packet.length)).toEqual([1440]);
  });

  it('IPv4: Fragmentation Needed with Next-Hop MTU 0 falls to the next plateau below the quoted length (RFC 1191 §5)', () => {
    const { core } = makeCore();
    const msg = icmp4({
      kind: 'destination-unreachable',
      code: ICMPV4_UNREACH.fragmentationNeeded,
      nextHopMtu: 0,
      original: quote4(1500),
    });
    core.receive(ipv4({ src: ROUTER4, protocol: 1, payload: msg }), undefined, 0, []);
    expect(core.mtuFor(B4, 0)).toBe(1492);
  });

  it('never raises the estimate and never goes below 1280 (IPv6) whatever routers report', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 70_000 }), { minLength: 1, maxLength: 12 }),
        (reports) => {
          const { core } = makeCore();
          let expected = 1500;
          reports.forEach((mtu, i) => {
            tooBig6(mtu, i, core);
            expected = Math.min(expected, Math.max(1280, mtu));
            expect(core.mtuFor(B6, i)).toBe(expected);
          });
        },
      ),
    );
  });

  it('believes no error about a datagram it did not send (RFC 5927 §4.1)', () => {
    const { core } = makeCore();
    const forged = ipv6({ src: 'fd00:5757::99', dst: B6, nextHeader: UDP, payload: new Uint8Array(8) });
    const msg = icmp6({ kind: 'packet-too-big', code: 0, mtu: 1280, original: forged }, ROUTER6, A6);
    const out: IpAction[] = [];
    core.receive(ipv6({ src: ROUTER6, nextHeader: 58, payload: msg }), undefined, 0, out);
    expect(core.mtuFor(B6, 0)).toBe(1500);
    expect(core.counters.get('icmpv6.drop.error-not-ours')).toBe(1);
  });
});
