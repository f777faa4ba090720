// IpCore alone (sans-I/O): ping's bookkeeping (RFC 792 Echo, RFC 4443 §4.1-4.2) — the
// request goes out as a transmit action, its deadline comes back from nextTimeout(), and
// it ends as one `echo` action: reply, ICMP error about it, or timeout.
import { describe, expect, it } from 'vitest';
import type { IpAction } from '../src/host/core.ts';
import { decodeIcmpv4, ICMPV4_UNREACH } from '../src/icmp.ts';
import { decodeIpv4 } from '../src/ipv4.ts';
import { A4, B4, icmp4, ipv4, makeCore, sentIcmp4, transmits } from './core-harness.ts';

function startPing(core: ReturnType<typeof makeCore>['core'], now: number, timeoutMs = 1000) {
  const out: IpAction[] = [];
  const s = core.startEcho(B4, { id: 7, seq: 1, size: 8, timeoutMs }, now, out);
  if (!s.ok) throw new Error(s.message);
  return { s, out };
}

describe('IpCore echo (sans-I/O)', () => {
  it('a reply ends the request with its rtt measured on the `now` values given', () => {
    const { core } = makeCore();
    const { s, out } = startPing(core, 100);
    const req = sentIcmp4(out);
    expect(req).toHaveLength(1);
    expect(req[0]?.icmp).toMatchObject({ kind: 'echo-request', identifier: 7, sequence: 1 });
    expect(s.deadline).toBe(1100);
    expect(core.nextTimeout()).toBe(1100);
    const data = req[0]?.icmp.kind === 'echo-request' ? req[0].icmp.data : new Uint8Array(0);
    const reply = ipv4({
      protocol: 1,
      ttl: 61,
      payload: icmp4({ kind: 'echo-reply', code: 0, identifier: 7, sequence: 1, data }),
    });
    const back: IpAction[] = [];
    core.receive(reply, undefined, 142, back);
    expect(back).toEqual([
      {
        kind: 'echo',
        echo: s.echo,
        outcome: { kind: 'reply', result: { rtt: 42, ttl: 61, bytes: 16, from: B4, id: 7, seq: 1 } },
      },
    ]);
    expect(core.nextTimeout()).toBeUndefined();
    expect(core.stats.pendingEchoes).toBe(0);
  });

  it('times out at its deadline and not before', () => {
    const { core } = makeCore();
    const { s } = startPing(core, 0, 500);
    const early: IpAction[] = [];
    core.handleTimeout(499, early);
    expect(early).toEqual([]);
    const late: IpAction[] = [];
    core.handleTimeout(500, late);
    expect(late).toEqual([
      {
        kind: 'echo',
        echo: s.echo,
        outcome: { kind: 'timeout', message: `no echo reply from ${B4} within 500 ms` },
      },
    ]);
    // A reply after that matches nothing.
    core.receive(
      ipv4({
        protocol: 1,
        payload: icmp4({ kind: 'echo-reply', code: 0, identifier: 7, sequence: 1, data: new Uint8Array(8) }),
      }),
      undefined,
      600,
      late,
    );
    expect(core.counters.get('icmpv4.echo.unmatched-reply')).toBe(1);
  });

  it('an ICMP error quoting the request ends it with the report', () => {
    const { core } = makeCore();
    const { s, out } = startPing(core, 0);
    const request = transmits(out)[0]?.packet ?? new Uint8Array(0);
    const err = icmp4({
      kind: 'destination-unreachable',
      code: ICMPV4_UNREACH.host,
      original: request.subarray(0, 28),
    });
    const back: IpAction[] = [];
    core.receive(ipv4({ src: '198.18.0.254', protocol: 1, payload: err }), undefined, 3, back);
    expect(back).toEqual([
      {
        kind: 'echo',
        echo: s.echo,
        outcome: expect.objectContaining({
          kind: 'icmp-error',
          report: expect.objectContaining({ kind: 'unreachable', reporter: '198.18.0.254', dst: B4 }),
        }),
      },
    ]);
  });

  it('answers an echo request with a reply carrying the same data, traced when someone listens', () => {
    const { core } = makeCore({ trace: { enabled: true } });
    const data = new Uint8Array([1, 2, 3, 4]);
    const out: IpAction[] = [];
    core.receive(
      ipv4({
        protocol: 1,
        payload: icmp4({ kind: 'echo-request', code: 0, identifier: 9, sequence: 3, data }),
      }),
      undefined,
      50,
      out,
    );
    expect(out.map((a) => a.kind)).toEqual(['trace', 'trace', 'transmit']);
    const sent = transmits(out)[0]?.packet ?? new Uint8Array(0);
    const ip = decodeIpv4(sent);
    expect(ip).toMatchObject({ src: A4, dst: B4 });
    expect(decodeIcmpv4(ip.payload)).toEqual({
      kind: 'echo-reply',
      code: 0,
      identifier: 9,
      sequence: 3,
      data,
    });
    expect(out[1]).toEqual({
      kind: 'trace',
      event: expect.objectContaining({ t: 50, host: 'A', layer: 'ipv4', dir: 'out' }),
    });
  });
});
