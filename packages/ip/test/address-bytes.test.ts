// Addresses travel as text (the identity) and bytes (for headers and checksums) side by side
// (types.ts). These properties hold the two forms to each other: what IpCore delivers and
// reports carries bytes naming the very addresses of its text, and a datagram sent with the
// bytes leaves byte for byte as one sent with the text alone (IP parsing it).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatIp, formatIpv4, formatIpv6, ipv4BytesAt, ipv6BytesAt, parseIp } from '../src/address.ts';
import { fragmentIpv4, fragmentIpv6 } from '../src/fragment.ts';
import type { IpAction } from '../src/host/core.ts';
import { encodeIcmpv4, encodeIcmpv6 } from '../src/icmp.ts';
import { encodeIpv4, type Ipv4Packet } from '../src/ipv4.ts';
import { encodeIpv6, type Ipv6Packet } from '../src/ipv6.ts';
import {
  arbitraryIpv4Address,
  arbitraryIpv4Packet,
  arbitraryIpv6Address,
  arbitraryIpv6Packet,
} from '../src/testing.ts';
import type { IcmpErrorReport, IpDelivery, SendOptions } from '../src/types.ts';
import { A4, A6, makeCore } from './core-harness.ts';

const UDP = 17;

/** The deliveries among a core's actions. */
function deliveries(out: IpAction[]): IpDelivery[] {
  return out.flatMap((a) => (a.kind === 'deliver' ? [a.delivery] : []));
}

function reports(out: IpAction[]): IcmpErrorReport[] {
  return out.flatMap((a) => (a.kind === 'icmp-error' ? [a.report] : []));
}

/** Bytes and text name one address: the bytes format to the text and the text parses to them. */
function sameAddress(bytes: Uint8Array, text: string): void {
  expect(bytes.length).toBe(text.includes(':') ? 16 : 4);
  expect(formatIp(bytes)).toBe(text);
  expect([...bytes]).toEqual([...parseIp(text)]);
}

// A source a host accepts (RFC 1122 §3.2.1.3, RFC 4291 §2.7): not multicast, not loopback,
// not unspecified, not a broadcast of the test prefix.
const v4Source = arbitraryIpv4Address.filter((a) => {
  const b = parseIp(a);
  return b[0]! < 224 && b[0] !== 127 && a !== '198.18.0.255' && a !== A4;
});
const v6Source = arbitraryIpv6Address.filter((a) => {
  const b = parseIp(a);
  return b[0] !== 0xff && a !== '::' && a !== '::1' && a !== A6;
});

/** A datagram to the core from an arbitrary source, whole or in fragments (then reassembled). */
const arbitraryV4Input = fc.record({
  p: arbitraryIpv4Packet(600),
  src: v4Source,
  dst: fc.constantFrom(A4, '198.18.0.255', '255.255.255.255'),
  fragmentTo: fc.option(fc.integer({ min: 68, max: 400 }), { nil: undefined }),
});
const arbitraryV6Input = fc.record({
  p: arbitraryIpv6Packet(3000),
  src: v6Source,
  dst: fc.constantFrom(A6, 'ff02::1'),
  fragmentTo: fc.option(fc.constant(1280), { nil: undefined }),
});

describe('IpDelivery: srcBytes/dstBytes name src/dst', () => {
  it('for arbitrary IPv4 datagrams, whole, to a broadcast, or reassembled', () => {
    let seen = 0;
    fc.assert(
      fc.property(arbitraryV4Input, ({ p, src, dst, fragmentTo }) => {
        const { core } = makeCore();
        core.registerProtocol(UDP);
        const whole: Ipv4Packet = {
          ...p,
          src,
          dst,
          protocol: UDP,
          options: [],
          moreFragments: false,
          fragmentOffset: 0,
          dontFragment: fragmentTo === undefined,
        };
        const pieces = fragmentTo === undefined ? [whole] : fragmentIpv4(whole, fragmentTo);
        const out: IpAction[] = [];
        for (const f of pieces) core.receive(encodeIpv4(f), undefined, 0, out);
        const ds = deliveries(out);
        expect(ds).toHaveLength(1);
        for (const d of ds) {
          sameAddress(d.srcBytes, d.src);
          sameAddress(d.dstBytes, d.dst);
          expect(d.src).toBe(src);
          expect(d.dst).toBe(dst);
          seen++;
        }
      }),
      { numRuns: 300 },
    );
    expect(seen).toBe(300);
  });

  it('for arbitrary IPv6 datagrams, whole, to all-nodes, or reassembled', () => {
    fc.assert(
      fc.property(arbitraryV6Input, ({ p, src, dst, fragmentTo }) => {
        const { core } = makeCore();
        core.registerProtocol(UDP);
        const whole: Ipv6Packet = { ...p, src, dst, nextHeader: UDP, extensionHeaders: [] };
        const pieces =
          fragmentTo === undefined || IPV6_HEADER + whole.payload.length <= fragmentTo
            ? [whole]
            : fragmentIpv6(whole, fragmentTo, 7);
        const out: IpAction[] = [];
        for (const f of pieces) core.receive(encodeIpv6(f), undefined, 0, out);
        const ds = deliveries(out);
        expect(ds).toHaveLength(1);
        for (const d of ds) {
          sameAddress(d.srcBytes, d.src);
          sameAddress(d.dstBytes, d.dst);
          expect(d.src).toBe(src);
          expect(d.dst).toBe(dst);
        }
      }),
      { numRuns: 300 },
    );
  });
});

const IPV6_HEADER = 40;

describe('IcmpErrorReport: srcBytes/dstBytes name the quoted src/dst', () => {
  it('for errors quoting arbitrary datagrams this host sent (IPv4 and IPv6)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.record({ v: fc.constant(4 as const), peer: v4Source, reporter: v4Source }),
          fc.record({ v: fc.constant(6 as const), peer: v6Source, reporter: v6Source }),
        ),
        fc.uint8Array({ minLength: 8, maxLength: 40 }),
        ({ v, peer, reporter }, transport) => {
          const { core } = makeCore();
          core.registerProtocol(UDP);
          const out: IpAction[] = [];
          if (v === 4) {
            const quoted = encodeIpv4({
              ...{ dscp: 0, ecn: 0, identification: 9, reservedFlag: false, dontFragment: false },
              ...{ moreFragments: false, fragmentOffset: 0, ttl: 64, options: [] },
              protocol: UDP,
              src: A4,
              dst: peer,
              payload: transport,
            });
            const icmp = encodeIcmpv4({ kind: 'destination-unreachable', code: 3, original: quoted });
            core.receive(
              encodeIpv4({
                ...{ dscp: 0, ecn: 0, identification: 1, reservedFlag: false, dontFragment: false },
                ...{ moreFragments: false, fragmentOffset: 0, ttl: 64, options: [] },
                protocol: 1,
                src: reporter,
                dst: A4,
                payload: icmp,
              }),
              undefined,
              0,
              out,
            );
          } else {
            const quoted = encodeIpv6({
              ...{ trafficClass: 0, flowLabel: 0, hopLimit: 64, extensionHeaders: [] },
              nextHeader: UDP,
              src: A6,
              dst: peer,
              payload: transport,
            });
            const icmp = encodeIcmpv6(
              { kind: 'destination-unreachable', code: 4, original: quoted },
              reporter,
              A6,
            );
            core.receive(
              encodeIpv6({
                ...{ trafficClass: 0, flowLabel: 0, hopLimit: 64, extensionHeaders: [] },
                nextHeader: 58,
                src: reporter,
                dst: A6,
                payload: icmp,
              }),
              undefined,
              0,
              out,
            );
          }
          const rs = reports(out);
          expect(rs).toHaveLength(1);
          for (const r of rs) {
            expect(r.src).toBe(v === 4 ? A4 : A6);
            expect(r.dst).toBe(peer);
            sameAddress(r.srcBytes, r.src);
            sameAddress(r.dstBytes, r.dst);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

/** Transmitted packets as arrays, to compare two runs. */
function sent(out: IpAction[]): number[][] {
  return out.flatMap((a) => (a.kind === 'transmit' ? [[...a.packet]] : []));
}

describe('SendOptions: bytes beside the text change nothing on the wire', () => {
  it('a datagram sent with srcBytes/dstBytes equals one sent with text only (IP parsing it)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.record({ v: fc.constant(4 as const), dst: v4Source }),
          fc.record({ v: fc.constant(6 as const), dst: v6Source }),
        ),
        fc.uint8Array({ maxLength: 3000 }),
        fc.boolean(),
        fc.boolean(),
        ({ v, dst }, payload, giveSrc, dontFragment) => {
          const run = (bytes: boolean) => {
            // Two cores from one seed: the same IPv4 identifications, fragment ids.
            const { core, eth } = makeCore();
            core.routing.addRoute(v === 4 ? '0.0.0.0/0' : '::/0', eth);
            const src = v === 4 ? A4 : A6;
            const opts: SendOptions = { dst, protocol: UDP, payload: payload.slice(), dontFragment };
            if (giveSrc) opts.src = src;
            if (bytes) {
              opts.dstBytes = parseIp(dst);
              if (giveSrc) opts.srcBytes = parseIp(src);
            }
            const out: IpAction[] = [];
            const r = core.send(opts, 0, out);
            return { r, packets: sent(out) };
          };
          const text = run(false);
          const bytes = run(true);
          expect(bytes).toEqual(text);
          if (payload.length < 1200) expect(text.packets.length).toBe(1);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a source that is not ours is refused with bytes as with text', () => {
    const { core } = makeCore();
    const opts: SendOptions = {
      src: '198.18.0.9',
      dst: '198.18.0.2',
      protocol: UDP,
      payload: new Uint8Array(4),
    };
    expect(core.send(opts, 0, [])).toEqual({ ok: false, error: 'no-source' });
    expect(
      core.send({ ...opts, srcBytes: parseIp('198.18.0.9'), dstBytes: parseIp('198.18.0.2') }, 0, []),
    ).toEqual({ ok: false, error: 'no-source' });
    // Of the other family than the destination: refused too (RFC 1122 §3.3.4.2).
    expect(
      core.send({ ...opts, src: A6, srcBytes: parseIp(A6), dstBytes: parseIp('198.18.0.2') }, 0, []),
    ).toEqual({
      ok: false,
      error: 'no-source',
    });
  });

  it('sourceAddressFor gives the interface address as text and bytes, a local destination itself', () => {
    const { core, eth } = makeCore();
    core.routing.addRoute('0.0.0.0/0', eth);
    for (const [dst, want] of [
      ['203.0.113.5', A4],
      ['198.18.0.7', A4],
      [A4, A4],
      ['127.0.0.1', '127.0.0.1'],
      ['fd00:5757::9', A6],
    ] as const) {
      const own = core.sourceAddressFor(dst, parseIp(dst));
      expect(own?.address).toBe(want);
      expect(own && formatIp(own.addressBytes)).toBe(want);
      expect(core.sourceFor(dst)).toBe(want);
    }
    expect(core.sourceAddressFor('2001:db8::1')).toBeUndefined();
  });
});

describe('ipv4BytesAt / ipv6BytesAt: the address cache hands out bytes beside the text', () => {
  it('gives the address at the offset in an array of its own, the same one while cached', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 40, maxLength: 60 }), fc.nat(20), (buf, at) => {
        for (const [n, bytesAt, format] of [
          [4, ipv4BytesAt, formatIpv4],
          [16, ipv6BytesAt, formatIpv6],
        ] as const) {
          const want = [...buf.subarray(at, at + n)];
          const a = bytesAt(buf, at);
          expect([...a]).toEqual(want);
          expect(a.length).toBe(n);
          // Not a view: the packet's buffer may be reused, the address must not change.
          expect(a.buffer).not.toBe(buf.buffer);
          expect(bytesAt(buf, at)).toBe(a);
          expect(format(buf, at)).toBe(formatIp(a));
          buf.fill(0xee, at, at + n);
          expect([...a]).toEqual(want);
        }
      }),
      { numRuns: 300 },
    );
  });
});
