import { Counters, Prng, VirtualClock } from '@stepwire/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fragmentIpv4, fragmentIpv6, Reassembler, type ReassemblyLimits } from '../src/fragment.ts';
import { decodeIpv4, encodeIpv4, type Ipv4Option, type Ipv4Packet } from '../src/ipv4.ts';
import { decodeIpv6, decodeIpv6ExtensionChain, encodeIpv6, type Ipv6ExtensionHeader } from '../src/ipv6.ts';
import { arbitraryIpv4Options, arbitraryIpv6Address } from '../src/testing.ts';

const limits = (timeoutMs: number): ReassemblyLimits => ({
  timeoutMs,
  maxFragmentsPerSource: 4096,
  maxBytesPerSource: 1 << 20,
  maxDatagramsPerSource: 64,
  maxBytesTotal: 4 << 20,
});

/** Shuffle, duplicate and lose packets with a seeded PRNG, as an impaired network would. */
function impair(packets: Uint8Array[], seed: number, loss: number, dup: number): Uint8Array[] {
  const prng = new Prng(seed);
  const out: Uint8Array[] = [];
  for (const p of packets) {
    if (prng.chance(loss)) continue;
    out.push(p);
    if (prng.chance(dup)) out.push(p);
  }
  for (let i = out.length - 1; i > 0; i--) {
    const j = prng.int(0, i);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function v4Fragment(b: Uint8Array) {
  const p = decodeIpv4(b);
  return {
    key: `${p.src}|${p.dst}|${p.protocol}|${p.identification}`,
    source: p.src,
    offset: p.fragmentOffset * 8,
    more: p.moreFragments,
    data: p.payload,
    header: { ...p, payload: new Uint8Array(0) },
    quote: b.subarray(0, 28),
  };
}

describe('IPv4 fragmentation and reassembly (RFC 791, RFC 815)', () => {
  const datagram = fc.record({
    payload: fc.uint8Array({ minLength: 0, maxLength: 3000, size: 'max' }),
    options: fc.oneof(fc.constant<Ipv4Option[]>([]), arbitraryIpv4Options),
    identification: fc.integer({ min: 0, max: 0xffff }),
    protocol: fc.integer({ min: 0, max: 255 }),
  });

  it('any datagram at any MTU, shuffled, duplicated or partly lost, reassembles exactly or times out cleanly', () => {
    fc.assert(
      fc.property(
        datagram,
        fc.integer({ min: 68, max: 1600 }),
        fc.integer(),
        fc.constantFrom(0, 0, 0.1, 0.5),
        fc.constantFrom(0, 0.3),
        (d, mtu, seed, loss, dup) => {
          const p: Ipv4Packet = {
            dscp: 0,
            ecn: 0,
            reservedFlag: false,
            dontFragment: false,
            moreFragments: false,
            fragmentOffset: 0,
            ttl: 64,
            src: '198.18.0.1',
            dst: '198.18.0.2',
            ...d,
          };
          const frags = fragmentIpv4(p, mtu).map((f) => encodeIpv4(f));
          for (const f of frags) expect(f.length).toBeLessThanOrEqual(mtu);
          const arrivals = impair(frags, seed, loss, dup);
          const complete = new Set(arrivals).size === frags.length;
          const clock = new VirtualClock();
          const counters = new Counters();
          const r = new Reassembler<Ipv4Packet>(limits(30_000), counters);
          let delivered = 0;
          for (const a of arrivals) {
            clock.advance(1);
            const f = v4Fragment(a);
            if (!f.more && f.offset === 0) continue; // unfragmented: nothing to reassemble
            const out = r.add(f, clock.now());
            if (out) {
              delivered++;
              expect(out.payload).toEqual(p.payload);
              expect(out.header.options).toEqual(p.options);
              expect(out.header.identification).toBe(p.identification);
            }
          }
          if (frags.length > 1) {
            if (complete) expect(delivered).toBeGreaterThanOrEqual(1);
            else expect(delivered).toBe(0);
          }
          clock.advance(30_000);
          r.expire(clock.now());
          expect(r.size).toBe(0);
          expect(r.bufferedBytes).toBe(0);
          expect(r.nextTimeout()).toBeUndefined();
        },
      ),
      // Shrinking a failure over kilobyte payloads can take long: report what was found after 20 s.
      { numRuns: 300, interruptAfterTimeLimit: 20_000, markInterruptAsFailure: true },
    );
  });

  it('copies only options with the copied flag into later fragments (RFC 791 §3.1)', () => {
    const p: Ipv4Packet = {
      dscp: 0,
      ecn: 0,
      identification: 9,
      reservedFlag: false,
      dontFragment: false,
      moreFragments: false,
      fragmentOffset: 0,
      ttl: 64,
      protocol: 17,
      src: '198.18.0.1',
      dst: '198.18.0.2',
      options: [
        { type: 7, data: new Uint8Array([4, 0, 0, 0, 0]) },
        { type: 0x83, data: new Uint8Array([4, 1, 2, 3, 4]) },
      ],
      payload: new Uint8Array(200),
    };
    const frags = fragmentIpv4(p, 100);
    expect(frags[0]!.options.map((o) => o.type)).toEqual([7, 0x83]);
    for (const f of frags.slice(1)) expect(f.options.map((o) => o.type)).toEqual([0x83]);
    expect(frags.map((f) => f.moreFragments)).toEqual([...frags.slice(1).map(() => true), false]);
    expect(() => fragmentIpv4({ ...p, dontFragment: true }, 100)).toThrow(RangeError);
  });

  it('overlaps discard the datagram and later fragments; exact duplicates are dropped alone', () => {
    const counters = new Counters();
    const r = new Reassembler<string>(limits(30_000), counters);
    const base = { key: 'k', source: 's', header: 'h' };
    expect(r.add({ ...base, offset: 0, more: true, data: new Uint8Array(16) }, 0)).toBeUndefined();
    expect(r.add({ ...base, offset: 0, more: true, data: new Uint8Array(16) }, 0)).toBeUndefined();
    expect(counters.get('reasm.drop.duplicate')).toBe(1);
    expect(r.add({ ...base, offset: 8, more: true, data: new Uint8Array(16) }, 0)).toBeUndefined();
    expect(counters.get('reasm.drop.overlap')).toBe(1);
    // The rest would complete it, but the datagram is gone (RFC 5722 §4).
    expect(r.add({ ...base, offset: 16, more: false, data: new Uint8Array(8) }, 1)).toBeUndefined();
    expect(counters.get('reasm.drop.discarded')).toBe(1);
    expect(r.bufferedBytes).toBe(0);
    expect(r.expire(30_000)).toEqual([]);
    expect(r.size).toBe(0);
    expect(counters.get('reasm.drop.timeout')).toBe(0);
  });

  it('reports a timed-out datagram with its first fragment, and enforces per-source limits', () => {
    const counters = new Counters();
    const r = new Reassembler<string>(
      {
        timeoutMs: 100,
        maxFragmentsPerSource: 3,
        maxBytesPerSource: 1000,
        maxDatagramsPerSource: 2,
        maxBytesTotal: 10_000,
      },
      counters,
    );
    r.add(
      {
        key: 'a',
        source: 's',
        header: 'A',
        offset: 0,
        more: true,
        data: new Uint8Array(8),
        quote: new Uint8Array([1]),
      },
      0,
    );
    r.add({ key: 'b', source: 's', header: 'B', offset: 8, more: true, data: new Uint8Array(8) }, 10);
    r.add({ key: 'c', source: 's', header: 'C', offset: 8, more: true, data: new Uint8Array(8) }, 10);
    expect(counters.get('reasm.drop.limit')).toBe(1); // a third datagram from s
    r.add({ key: 'x', source: 't', header: 'X', offset: 8, more: true, data: new Uint8Array(8) }, 10);
    r.add({ key: 'b', source: 's', header: 'B', offset: 16, more: true, data: new Uint8Array(8) }, 10);
    r.add({ key: 'b', source: 's', header: 'B', offset: 24, more: true, data: new Uint8Array(8) }, 10);
    expect(counters.get('reasm.drop.limit')).toBe(2); // the fourth fragment from s
    expect(r.nextTimeout()).toBe(100);
    const expired = r.expire(100);
    expect(expired).toEqual([{ key: 'a', source: 's', header: 'A', quote: new Uint8Array([1]) }]);
    expect(r.expire(110).map((e) => e.key)).toEqual(['x']);
    expect(r.size).toBe(0);
    expect(r.bufferedBytes).toBe(0);
  });

  it('refuses a non-last fragment whose length is not a multiple of 8, and one past 65535', () => {
    const counters = new Counters();
    const r = new Reassembler<string>(limits(100), counters);
    r.add({ key: 'a', source: 's', header: 'A', offset: 0, more: true, data: new Uint8Array(9) }, 0);
    r.add({ key: 'a', source: 's', header: 'A', offset: 65528, more: false, data: new Uint8Array(9) }, 0);
    expect(counters.get('reasm.drop.bad-length')).toBe(1);
    expect(counters.get('reasm.drop.too-long')).toBe(1);
    expect(r.size).toBe(0);
  });
});

describe('IPv6 fragmentation and reassembly (RFC 8200 §4.5, RFC 5722)', () => {
  interface V6Head {
    perFragment: Ipv6ExtensionHeader[];
    nextHeader: number;
  }
  it('any packet at any MTU >= 1280, shuffled, duplicated or partly lost, reassembles exactly or times out', () => {
    const dstOpts: Ipv6ExtensionHeader = {
      kind: 'destination',
      options: [{ type: 0x1e, data: new Uint8Array(5) }],
    };
    const hbh: Ipv6ExtensionHeader = { kind: 'hop-by-hop', options: [{ type: 5, data: new Uint8Array(2) }] };
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 6000, size: 'max' }),
        fc.integer({ min: 1280, max: 2000 }),
        fc.constantFrom<Ipv6ExtensionHeader[]>([], [hbh], [dstOpts], [hbh, dstOpts]),
        arbitraryIpv6Address,
        fc.integer(),
        fc.constantFrom(0, 0, 0.1, 0.5),
        fc.constantFrom(0, 0.3),
        (payload, mtu, ext, src, seed, loss, dup) => {
          const p = {
            trafficClass: 0,
            flowLabel: 7,
            hopLimit: 64,
            src,
            dst: 'fd00::2',
            extensionHeaders: ext,
            nextHeader: 17,
            payload,
          };
          const frags = fragmentIpv6(p, mtu, 0x12345678).map((f) => encodeIpv6(f));
          for (const f of frags) expect(f.length).toBeLessThanOrEqual(mtu);
          if (frags.length === 1) return;
          const arrivals = impair(frags, seed, loss, dup);
          const complete = new Set(arrivals).size === frags.length;
          const counters = new Counters();
          const r = new Reassembler<V6Head>(limits(60_000), counters);
          let now = 0;
          let delivered = 0;
          for (const a of arrivals) {
            now += 1;
            const d = decodeIpv6(a);
            const fh = d.extensionHeaders[d.extensionHeaders.length - 1]!;
            if (fh.kind !== 'fragment') throw new Error('expected a fragment header');
            const out = r.add(
              {
                key: `${d.src}|${d.dst}|${fh.identification}`,
                source: d.src,
                offset: fh.fragmentOffset * 8,
                more: fh.moreFragments,
                data: d.payload,
                header: { perFragment: d.extensionHeaders.slice(0, -1), nextHeader: d.nextHeader },
              },
              now,
            );
            if (out) {
              delivered++;
              const chain = decodeIpv6ExtensionChain(out.header.nextHeader, out.payload);
              expect([...out.header.perFragment, ...chain.headers]).toEqual(ext);
              expect(chain.nextHeader).toBe(17);
              expect(out.payload.subarray(chain.payloadOffset)).toEqual(payload);
            }
          }
          if (complete) expect(delivered).toBeGreaterThanOrEqual(1);
          else expect(delivered).toBe(0);
          r.expire(now + 60_000);
          expect(r.size).toBe(0);
          expect(r.bufferedBytes).toBe(0);
        },
      ),
      { numRuns: 200, interruptAfterTimeLimit: 20_000, markInterruptAsFailure: true },
    );
  });

  it('keeps Hop-by-Hop and Routing headers in every fragment and the rest in the first', () => {
    const rt: Ipv6ExtensionHeader = {
      kind: 'routing',
      routingType: 4,
      segmentsLeft: 0,
      data: new Uint8Array(4),
    };
    const d1: Ipv6ExtensionHeader = { kind: 'destination', options: [] };
    const frags = fragmentIpv6(
      {
        trafficClass: 0,
        flowLabel: 0,
        hopLimit: 64,
        src: 'fd00::1',
        dst: 'fd00::2',
        extensionHeaders: [{ kind: 'hop-by-hop', options: [] }, d1, rt, d1],
        nextHeader: 6,
        payload: new Uint8Array(3000),
      },
      1280,
      5,
    );
    expect(frags.length).toBe(3);
    for (const f of frags) {
      expect(f.extensionHeaders.map((h) => h.kind)).toEqual([
        'hop-by-hop',
        'destination',
        'routing',
        'fragment',
      ]);
      expect(f.nextHeader).toBe(60);
    }
  });
});
