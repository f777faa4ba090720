import { type TraceEvent, VirtualClock } from '@stepwire/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Host, PingError } from '../src/host.ts';
import { decodeIcmpv6, encodeIcmpv4, encodeIcmpv6 } from '../src/icmp.ts';
import { decodeIpv4, encodeIpv4 } from '../src/ipv4.ts';
import { decodeIpv6, encodeIpv6, type Ipv6ExtensionHeader } from '../src/ipv6.ts';
import { arbitraryIpv4Packet, arbitraryIpv6Packet, ipv4Packet } from '../src/testing.ts';
import type { IcmpErrorReport, IpDelivery } from '../src/types.ts';
import { pipe } from './pipe.ts';

function pair(opts: { mtu?: number; delay?: number } = {}) {
  const clock = new VirtualClock();
  const [la, lb] = pipe(clock, opts.mtu, opts.delay);
  const a = new Host({ name: 'A', clock });
  const b = new Host({ name: 'B', clock });
  a.addInterface({ link: la, ipv4: '198.18.0.1/24', ipv6: 'fd00:5757::1/64' });
  b.addInterface({ link: lb, ipv4: '198.18.0.2/24', ipv6: 'fd00:5757::2/64' });
  return { clock, a, b, la, lb };
}

async function settle<T>(clock: VirtualClock, p: Promise<T>): Promise<T> {
  clock.runUntilIdle();
  return p;
}

describe('Host: ping', () => {
  it('pings over IPv4 both ways and traces each packet with a one-line summary', async () => {
    const { clock, a, b } = pair();
    const events: TraceEvent[] = [];
    a.trace.on((e) => events.push(e));
    const r = await settle(clock, a.ping('198.18.0.2', { id: 1, seq: 1 }));
    expect(r).toMatchObject({ rtt: 10, ttl: 64, bytes: 64, from: '198.18.0.2', id: 1, seq: 1 });
    const back = await settle(clock, b.ping('198.18.0.1'));
    expect(back.rtt).toBe(10);
    expect(events[0]).toMatchObject({ host: 'A', layer: 'ipv4', dir: 'out', t: 0 });
    expect(events[0]!.summary).toBe('IPv4 198.18.0.1→198.18.0.2 ICMP echo id=1 seq=1 len=84 ttl=64');
    expect(events[0]!.fields).toMatchObject({ src: '198.18.0.1', dst: '198.18.0.2', protocol: 1, ttl: 64 });
    expect(events[0]!.peer).toBeUndefined();
    expect(events[1]!.summary).toBe('IPv4 198.18.0.2→198.18.0.1 ICMP echo-reply id=1 seq=1 len=84 ttl=64');
    expect(events[1]!.dir).toBe('in');
    expect(b.counters.get('icmpv4.echo.replied')).toBe(1);
    expect(a.counters.get('icmpv4.echo.replied')).toBe(1);
  });

  it('pings over IPv6 both ways', async () => {
    const { clock, a, b } = pair();
    const events: TraceEvent[] = [];
    b.trace.on((e) => events.push(e));
    const r = await settle(clock, a.ping('FD00:5757:0::2', { size: 100, id: 7, seq: 3 }));
    expect(r).toMatchObject({ rtt: 10, ttl: 64, bytes: 108, from: 'fd00:5757::2' });
    expect((await settle(clock, b.ping('fd00:5757::1'))).from).toBe('fd00:5757::1');
    expect(events[0]!.summary).toBe('IPv6 fd00:5757::1→fd00:5757::2 ICMPv6 echo id=7 seq=3 len=148 hlim=64');
    expect(b.counters.get('icmpv6.echo.replied')).toBe(1);
  });

  it('pings with an 8000-byte payload across MTU 1500, fragmented both ways (IPv4 and IPv6)', async () => {
    const { clock, a, b, la, lb } = pair({ mtu: 1500 });
    const r = await settle(clock, a.ping('198.18.0.2', { size: 8000 }));
    expect(r.bytes).toBe(8008);
    expect(a.counters.get('ipv4.tx.fragments')).toBe(6);
    expect(b.counters.get('ipv4.tx.fragments')).toBe(6);
    expect(a.counters.get('reasm.ok')).toBe(1);
    expect(b.counters.get('reasm.ok')).toBe(1);
    for (const p of [...la.sent, ...lb.sent]) expect(p.length).toBeLessThanOrEqual(1500);
    const r6 = await settle(clock, b.ping('fd00:5757::1', { size: 8000 }));
    expect(r6.bytes).toBe(8008);
    expect(b.counters.get('ipv6.tx.fragments')).toBe(6);
    expect(a.counters.get('ipv6.tx.fragments')).toBe(6);
    expect(a.counters.get('reasm.ok') + b.counters.get('reasm.ok')).toBe(4);
    expect(la.counters.get('drop.mtu') + lb.counters.get('drop.mtu')).toBe(0);
  });

  it('rejects on timeout when the network eats the reply, and on an ICMP error', async () => {
    const { clock, a, la } = pair();
    la.filter = () => false;
    const p = a.ping('198.18.0.2', { timeoutMs: 500 });
    clock.runUntilIdle();
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PingError);
    expect((err as PingError).reason).toBe('timeout');
    expect(clock.now()).toBe(500);
    // An unrouted destination fails at once.
    const e2 = await a.ping('203.0.113.9').catch((e: unknown) => e);
    expect((e2 as PingError).reason).toBe('send-failed');
  });

  it('rejects with the report when an ICMP error answers the echo request', async () => {
    const { clock, a, la } = pair();
    const p = a.ping('198.18.0.9', { id: 3, seq: 4 });
    const req = la.sent[0]!;
    const unreachable = encodeIcmpv4({
      kind: 'destination-unreachable',
      code: 1,
      nextHopMtu: 0,
      original: req.subarray(0, 28),
    });
    a.receive(
      encodeIpv4({ ...decodeIpv4(req), src: '198.18.0.254', dst: '198.18.0.1', payload: unreachable }),
    );
    const err = (await p.catch((e: unknown) => e)) as PingError;
    expect(err.reason).toBe('icmp-error');
    expect(err.report).toMatchObject({
      kind: 'unreachable',
      code: 1,
      reporter: '198.18.0.254',
      dst: '198.18.0.9',
    });
    expect(clock.now()).toBe(0);
  });

  it('offers a callback form that runs on the virtual clock', () => {
    const { clock, a } = pair();
    const seen: string[] = [];
    for (let seq = 1; seq <= 3; seq++) {
      a.sendEcho('fd00:5757::2', { seq }, (err, r) =>
        seen.push(err ? err.reason : `seq=${r!.seq} rtt=${r!.rtt}`),
      );
    }
    expect(seen).toEqual([]);
    clock.runUntilIdle();
    expect(seen).toEqual(['seq=1 rtt=10', 'seq=2 rtt=10', 'seq=3 rtt=10']);
  });

  it('answers pings to its own addresses over loopback', async () => {
    const { clock, a } = pair();
    expect((await settle(clock, a.ping('198.18.0.1'))).rtt).toBe(0);
    expect((await settle(clock, a.ping('::1'))).from).toBe('::1');
    expect(a.mtuFor('198.18.0.1')).toBe(65535);
  });
});

describe('Host: ICMP errors', () => {
  it('answers an unknown protocol with protocol unreachable (v4) and parameter problem code 1 (v6)', () => {
    const { clock, a, b } = pair();
    const reports: IcmpErrorReport[] = [];
    a.registerProtocol(253, { receive: () => {}, receiveIcmpError: (e) => reports.push(e) });
    expect(
      a.send({ dst: '198.18.0.2', protocol: 253, payload: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]) }),
    ).toEqual({
      ok: true,
    });
    expect(a.send({ dst: 'fd00:5757::2', protocol: 253, payload: new Uint8Array(12) })).toEqual({ ok: true });
    clock.runUntilIdle();
    expect(b.counters.get('ipv4.drop.unknown-protocol')).toBe(1);
    expect(b.counters.get('ipv6.drop.unknown-next-header')).toBe(1);
    expect(reports).toHaveLength(2);
    expect(reports[0]).toMatchObject({
      version: 4,
      kind: 'unreachable',
      code: 2,
      reporter: '198.18.0.2',
      src: '198.18.0.1',
      dst: '198.18.0.2',
      protocol: 253,
    });
    expect([...reports[0]!.quoted]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(reports[1]).toMatchObject({ version: 6, kind: 'parameter-problem', code: 1, protocol: 253 });
  });

  it('sendUnreachable answers a transport datagram with port unreachable', () => {
    const { clock, a, b } = pair();
    const reports: IcmpErrorReport[] = [];
    a.registerProtocol(17, { receive: () => {}, receiveIcmpError: (e) => reports.push(e) });
    b.registerProtocol(17, { receive: (d) => b.sendUnreachable(d, 'port') });
    a.send({ dst: '198.18.0.2', protocol: 17, payload: new Uint8Array(8) });
    a.send({ dst: 'fd00:5757::2', protocol: 17, payload: new Uint8Array(8) });
    clock.runUntilIdle();
    expect(reports.map((r) => [r.version, r.kind, r.code])).toEqual([
      [4, 'unreachable', 3],
      [6, 'unreachable', 4],
    ]);
  });

  it('rate-limits errors with a token bucket', () => {
    const clock = new VirtualClock();
    const [la, lb] = pipe(clock);
    const a = new Host({ name: 'A', clock });
    const b = new Host({ name: 'B', clock, icmpErrorBurst: 5, icmpErrorsPerSecond: 10 });
    a.addInterface({ link: la, ipv4: '198.18.0.1/24' });
    b.addInterface({ link: lb, ipv4: '198.18.0.2/24' });
    for (let i = 0; i < 100; i++) a.send({ dst: '198.18.0.2', protocol: 253, payload: new Uint8Array(8) });
    clock.runUntilIdle();
    expect(b.counters.get('icmpv4.tx.error')).toBe(5);
    expect(b.counters.get('icmpv4.error.rate-limited')).toBe(95);
    // One second later the bucket holds 10 tokens, capped at the burst of 5.
    clock.advance(1000);
    for (let i = 0; i < 100; i++) a.send({ dst: '198.18.0.2', protocol: 253, payload: new Uint8Array(8) });
    clock.runUntilIdle();
    expect(b.counters.get('icmpv4.tx.error')).toBe(10);
    // 300 ms later: 3 tokens.
    clock.advance(300);
    for (let i = 0; i < 10; i++) a.send({ dst: '198.18.0.2', protocol: 253, payload: new Uint8Array(8) });
    clock.runUntilIdle();
    expect(b.counters.get('icmpv4.tx.error')).toBe(13);
    expect(a.counters.get('icmpv4.rx.error')).toBe(13);
  });

  it('never sends an error about an ICMP error, a broadcast, or a non-first fragment (RFC 1122 §3.2.2)', () => {
    const { clock, b, lb } = pair();
    const base = {
      dscp: 0,
      ecn: 0,
      identification: 1,
      reservedFlag: false,
      dontFragment: false,
      moreFragments: false,
      fragmentOffset: 0,
      ttl: 64,
      src: '198.18.0.1',
      dst: '198.18.0.2',
      options: [],
    };
    const icmpErr = encodeIcmpv4({
      kind: 'destination-unreachable',
      code: 3,
      nextHopMtu: 0,
      original: new Uint8Array(28),
    });
    const deliver = (bytes: Uint8Array): IpDelivery => {
      const p = decodeIpv4(bytes);
      return {
        version: 4,
        src: p.src,
        dst: p.dst,
        srcBytes: bytes.subarray(12, 16),
        dstBytes: bytes.subarray(16, 20),
        protocol: p.protocol,
        ttl: p.ttl,
        payload: p.payload,
        original: bytes,
      };
    };
    b.sendUnreachable(deliver(encodeIpv4({ ...base, protocol: 1, payload: icmpErr })), 'protocol');
    expect(b.counters.get('icmpv4.error.suppressed.icmp-error')).toBe(1);
    b.sendUnreachable(
      deliver(encodeIpv4({ ...base, dst: '198.18.0.255', protocol: 17, payload: new Uint8Array(8) })),
      'port',
    );
    b.sendUnreachable(
      deliver(encodeIpv4({ ...base, dst: '255.255.255.255', protocol: 17, payload: new Uint8Array(8) })),
      'port',
    );
    expect(b.counters.get('icmpv4.error.suppressed.to-group')).toBe(2);
    b.sendUnreachable(
      deliver(encodeIpv4({ ...base, fragmentOffset: 10, protocol: 17, payload: new Uint8Array(8) })),
      'port',
    );
    expect(b.counters.get('icmpv4.error.suppressed.fragment')).toBe(1);
    // An unknown protocol sent to the broadcast address is dropped without an answer.
    b.receive(encodeIpv4({ ...base, dst: '198.18.0.255', protocol: 253, payload: new Uint8Array(8) }));
    expect(b.counters.get('ipv4.drop.unknown-protocol')).toBe(1);
    clock.runUntilIdle();
    expect(lb.sent).toHaveLength(0);
    // An echo request is an ICMP query, not an error: its datagram may be answered.
    const echo = encodeIcmpv4({
      kind: 'echo-request',
      code: 0,
      identifier: 1,
      sequence: 1,
      data: new Uint8Array(0),
    });
    b.sendUnreachable(deliver(encodeIpv4({ ...base, protocol: 1, payload: echo })), 'admin');
    expect(lb.sent).toHaveLength(1);
  });

  it('drops a datagram when DF is set and it exceeds the MTU, and reports too-big locally', () => {
    const { a } = pair();
    expect(
      a.send({ dst: '198.18.0.2', protocol: 17, payload: new Uint8Array(2000), dontFragment: true }),
    ).toEqual({
      ok: false,
      error: 'too-big',
      mtu: 1500,
    });
    expect(
      a.send({ dst: 'fd00:5757::2', protocol: 17, payload: new Uint8Array(1461), dontFragment: true }),
    ).toEqual({
      ok: false,
      error: 'too-big',
      mtu: 1500,
    });
    expect(
      a.send({ dst: 'fd00:5757::2', protocol: 17, payload: new Uint8Array(1460), dontFragment: true }).ok,
    ).toBe(true);
    expect(a.send({ dst: '198.18.0.2', protocol: 17, payload: new Uint8Array(70_000) }).ok).toBe(false);
  });

  it('lowers the path MTU on fragmentation-needed and packet-too-big (RFC 1191, RFC 8201), with floors and expiry', () => {
    const { clock, a, la } = pair();
    const reports: IcmpErrorReport[] = [];
    a.registerProtocol(17, { receive: () => {}, receiveIcmpError: (e) => reports.push(e) });
    a.send({ dst: '198.18.0.9', protocol: 17, payload: new Uint8Array(1472), dontFragment: true });
    a.send({ dst: 'fd00:5757::9', protocol: 17, payload: new Uint8Array(1452), dontFragment: true });
    const [sent4, sent6] = la.sent;
    // A router's fragmentation-needed with Next-Hop MTU 1400.
    const fn = encodeIcmpv4({
      kind: 'destination-unreachable',
      code: 4,
      nextHopMtu: 1400,
      original: sent4!.subarray(0, 28),
    });
    a.receive(
      encodeIpv4({
        ...decodeIpv4(sent4!),
        src: '198.18.0.254',
        dst: '198.18.0.1',
        protocol: 1,
        dontFragment: false,
        payload: fn,
      }),
    );
    expect(a.mtuFor('198.18.0.9')).toBe(1400);
    expect(a.mtuFor('198.18.0.2')).toBe(1500);
    expect(reports[0]).toMatchObject({
      kind: 'packet-too-big',
      code: 4,
      mtu: 1400,
      dst: '198.18.0.9',
      protocol: 17,
    });
    expect(
      a.send({ dst: '198.18.0.9', protocol: 17, payload: new Uint8Array(1400), dontFragment: true }),
    ).toEqual({
      ok: false,
      error: 'too-big',
      mtu: 1400,
    });
    const ptb = (mtu: number) =>
      encodeIpv6({
        trafficClass: 0,
        flowLabel: 0,
        hopLimit: 64,
        src: 'fd00:5757::fe',
        dst: 'fd00:5757::1',
        extensionHeaders: [],
        nextHeader: 58,
        payload: encodeIcmpv6(
          { kind: 'packet-too-big', code: 0, mtu, original: sent6!.subarray(0, 1232) },
          'fd00:5757::fe',
          'fd00:5757::1',
        ),
      });
    a.receive(ptb(1300));
    expect(a.mtuFor('fd00:5757::9')).toBe(1300);
    a.receive(ptb(1400)); // never raised by a PTB
    expect(a.mtuFor('fd00:5757::9')).toBe(1300);
    a.receive(ptb(600)); // RFC 8201 §4: not below the IPv6 minimum
    expect(a.mtuFor('fd00:5757::9')).toBe(1280);
    expect(reports.slice(1).map((r) => r.mtu)).toEqual([1300, 1400, 600]);
    clock.advance(600_000);
    expect(a.mtuFor('fd00:5757::9')).toBe(1500);
    expect(a.mtuFor('198.18.0.9')).toBe(1500);
  });

  it('ignores errors quoting datagrams it did not send', () => {
    const { a } = pair();
    const quoted = encodeIpv4(
      ipv4Packet({
        protocol: 17,
        src: '198.18.0.77',
        dst: '198.18.0.9',
        payload: new Uint8Array(8),
      }),
    );
    const fn = encodeIcmpv4({ kind: 'destination-unreachable', code: 4, nextHopMtu: 600, original: quoted });
    a.receive(
      encodeIpv4({ ...decodeIpv4(quoted), src: '198.18.0.254', dst: '198.18.0.1', protocol: 1, payload: fn }),
    );
    expect(a.counters.get('icmpv4.drop.error-not-ours')).toBe(1);
    expect(a.mtuFor('198.18.0.9')).toBe(1500);
  });
});

describe('Host: reassembly on the wire', () => {
  it('sends Time Exceeded code 1 when reassembly times out with the first fragment present', () => {
    const { clock, a, b, la } = pair();
    const reports: IcmpErrorReport[] = [];
    a.registerProtocol(253, { receive: () => {}, receiveIcmpError: (e) => reports.push(e) });
    const got: IpDelivery[] = [];
    b.registerProtocol(253, { receive: (d) => got.push(d) });
    // Lose the last fragment of each datagram.
    la.filter = (p) => {
      const d = p[0]! >> 4 === 4 ? decodeIpv4(p) : undefined;
      if (d) return d.moreFragments || d.fragmentOffset === 0;
      const v6 = decodeIpv6(p);
      const fh = v6.extensionHeaders.at(-1);
      return fh?.kind !== 'fragment' || fh.moreFragments;
    };
    a.send({ dst: '198.18.0.2', protocol: 253, payload: new Uint8Array(4000) });
    a.send({ dst: 'fd00:5757::2', protocol: 253, payload: new Uint8Array(4000) });
    clock.advance(29_000);
    expect(reports).toHaveLength(0);
    clock.runUntilIdle();
    expect(got).toHaveLength(0);
    expect(b.counters.get('reasm.drop.timeout')).toBe(2);
    expect(reports.map((r) => [r.version, r.kind, r.code])).toEqual([
      [4, 'time-exceeded', 1],
      [6, 'time-exceeded', 1],
    ]);
    expect(clock.now()).toBe(60_000 + 5 + 5);
  });

  it('sends no Time Exceeded when the first fragment never came', () => {
    const { clock, a, b, la } = pair();
    la.filter = (p) => decodeIpv4(p).fragmentOffset !== 0;
    a.send({ dst: '198.18.0.2', protocol: 253, payload: new Uint8Array(4000) });
    clock.runUntilIdle();
    expect(b.counters.get('reasm.drop.timeout')).toBe(1);
    expect(b.counters.get('icmpv4.tx.error')).toBe(0);
  });

  it('delivers a reassembled datagram byte-exact to the protocol handler', () => {
    const { clock, a, b } = pair({ mtu: 576 });
    const got: IpDelivery[] = [];
    b.registerProtocol(17, { receive: (d) => got.push(d) });
    const payload = Uint8Array.from({ length: 5000 }, (_, i) => (i * 7) & 0xff);
    a.send({ dst: '198.18.0.2', protocol: 17, payload });
    a.send({ dst: 'fd00:5757::2', protocol: 17, payload });
    clock.runUntilIdle();
    expect(got.map((d) => d.version)).toEqual([4, 6]);
    for (const d of got) {
      expect(d.payload).toEqual(payload);
      expect(d.protocol).toBe(17);
      expect(d.original.length).toBeGreaterThan(28);
    }
  });
});

describe('Host: reassembly limits', () => {
  it('caps what one source can make it buffer, without starving another source', () => {
    const clock = new VirtualClock();
    const [la, lb] = pipe(clock);
    const a = new Host({ name: 'A', clock });
    const b = new Host({
      name: 'B',
      clock,
      maxReassemblyBytesPerSource: 16_000,
      maxReassemblyFragmentsPerSource: 100,
      maxReassemblyDatagramsPerSource: 4,
    });
    a.addInterface({ link: la, ipv4: '198.18.0.1/24' });
    b.addInterface({ link: lb, ipv4: '198.18.0.2/24' });
    const got: IpDelivery[] = [];
    b.registerProtocol(17, { receive: (d) => got.push(d) });
    const frag = (src: string, id: number, offset: number, more: boolean, len: number) =>
      encodeIpv4({
        dscp: 0,
        ecn: 0,
        identification: id,
        reservedFlag: false,
        dontFragment: false,
        moreFragments: more,
        fragmentOffset: offset / 8,
        ttl: 64,
        protocol: 17,
        src,
        dst: '198.18.0.2',
        options: [],
        payload: new Uint8Array(len),
      });
    // 1000 never-completed datagrams from one source: at most 4 are held, at most 16000 bytes.
    for (let id = 0; id < 1000; id++) b.receive(frag('198.18.0.66', id, 8, true, 1000));
    expect(b.counters.get('reasm.drop.limit')).toBe(996);
    // A second source still gets its datagram through.
    b.receive(frag('198.18.0.1', 1, 0, true, 1000));
    b.receive(frag('198.18.0.1', 1, 1000, false, 500));
    expect(got.map((d) => d.payload.length)).toEqual([1500]);
    // A datagram that would exceed the byte cap is discarded whole.
    for (let i = 0; i < 20; i++) b.receive(frag('198.18.0.77', 5, i * 1000, true, 1000));
    expect(b.counters.get('reasm.drop.limit')).toBe(997);
    expect(b.counters.get('reasm.drop.discarded')).toBe(3);
    // Overlapping pieces of one IPv4 datagram discard it (the RFC 5722 rule, applied to IPv4 too).
    b.receive(frag('198.18.0.1', 2, 0, true, 1000));
    b.receive(frag('198.18.0.1', 2, 992, false, 100));
    expect(b.counters.get('reasm.drop.overlap')).toBe(1);
    clock.runUntilIdle();
    expect(b.counters.get('reasm.drop.timeout')).toBe(4);
    expect(got).toHaveLength(1);
  });
});

describe('Host: addressing and routing', () => {
  it('drops traffic for other hosts and kernel multicast quietly, answers all-nodes', () => {
    const { clock, a, b, lb } = pair();
    const v6 = (dst: string, payload: Uint8Array, nextHeader = 58) =>
      encodeIpv6({
        trafficClass: 0,
        flowLabel: 0,
        hopLimit: 255,
        src: 'fd00:5757::1',
        dst,
        extensionHeaders: [],
        nextHeader,
        payload,
      });
    // A router solicitation (RFC 4861 type 133) to all-routers.
    b.receive(
      v6(
        'ff02::2',
        encodeIcmpv6(
          { kind: 'unknown', type: 133, code: 0, body: new Uint8Array(4) },
          'fd00:5757::1',
          'ff02::2',
        ),
      ),
    );
    // An MLDv2 report (type 143) to ff02::16.
    b.receive(
      v6(
        'ff02::16',
        encodeIcmpv6(
          { kind: 'unknown', type: 143, code: 0, body: new Uint8Array(4) },
          'fd00:5757::1',
          'ff02::16',
        ),
      ),
    );
    b.receive(v6('fd00:5757::99', new Uint8Array(8), 17));
    expect(b.counters.get('ipv6.drop.multicast')).toBe(2);
    expect(b.counters.get('ipv6.drop.not-for-us')).toBe(1);
    expect(lb.sent).toHaveLength(0);
    // A neighbour solicitation sent to our unicast address: ICMPv6 type 135.
    b.receive(
      v6(
        'fd00:5757::2',
        encodeIcmpv6(
          { kind: 'unknown', type: 135, code: 0, body: new Uint8Array(20) },
          'fd00:5757::1',
          'fd00:5757::2',
        ),
      ),
    );
    expect(b.counters.get('icmpv6.drop.ndp')).toBe(1);
    // Echo to all-nodes is answered from a unicast address (RFC 4443 §4.2).
    const seen: string[] = [];
    a.sendEcho('ff02::1', { id: 9, seq: 1, timeoutMs: 100 }, (err) => seen.push(err?.reason ?? 'ok'));
    clock.runUntilIdle();
    expect(b.counters.get('icmpv6.echo.replied')).toBe(1);
    expect(decodeIpv6(lb.sent[0]!).src).toBe('fd00:5757::2');
    // The reply comes from a unicast address, so a ping to the group matches nothing and times out.
    expect(seen).toEqual(['timeout']);
    expect(a.counters.get('icmpv6.echo.unmatched-reply')).toBe(1);
  });

  it('refuses a loopback source from the wire (RFC 1122 §3.2.1.3)', () => {
    const { b } = pair();
    const echo = encodeIcmpv4({
      kind: 'echo-request',
      code: 0,
      identifier: 1,
      sequence: 1,
      data: new Uint8Array(0),
    });
    b.receive(
      encodeIpv4(
        ipv4Packet({
          dontFragment: false,
          protocol: 1,
          src: '127.0.0.1',
          dst: '198.18.0.2',
          payload: echo,
        }),
      ),
    );
    expect(b.counters.get('ipv4.drop.bad-source')).toBe(1);
    expect(b.counters.get('icmpv4.echo.replied')).toBe(0);
  });

  it('processes IPv6 extension headers per RFC 8200 §4: options, routing, misplaced Hop-by-Hop', () => {
    const { clock, a, b, lb } = pair();
    const reports: IcmpErrorReport[] = [];
    const got: IpDelivery[] = [];
    a.registerProtocol(17, { receive: () => {}, receiveIcmpError: (e) => reports.push(e) });
    b.registerProtocol(17, { receive: (d) => got.push(d) });
    const v6 = (extensionHeaders: Ipv6ExtensionHeader[]) =>
      encodeIpv6({
        trafficClass: 0,
        flowLabel: 0,
        hopLimit: 64,
        src: 'fd00:5757::1',
        dst: 'fd00:5757::2',
        extensionHeaders,
        nextHeader: 17,
        payload: new Uint8Array(8),
      });
    // Unknown option with action 00: skipped, the datagram is delivered.
    b.receive(v6([{ kind: 'destination', options: [{ type: 0x1e, data: new Uint8Array(3) }] }]));
    expect(got).toHaveLength(1);
    // Action 01: silently discarded.
    b.receive(v6([{ kind: 'hop-by-hop', options: [{ type: 0x5e, data: new Uint8Array(3) }] }]));
    // Action 10: discarded with Parameter Problem code 2 pointing at the option type.
    b.receive(v6([{ kind: 'destination', options: [{ type: 0x9e, data: new Uint8Array(3) }] }]));
    // A Routing header of a type nobody knows with Segments Left > 0: code 0 at the Routing Type.
    b.receive(v6([{ kind: 'routing', routingType: 0, segmentsLeft: 1, data: new Uint8Array(20) }]));
    // Segments Left 0: ignored (RFC 8200 §4.4).
    b.receive(v6([{ kind: 'routing', routingType: 0, segmentsLeft: 0, data: new Uint8Array(20) }]));
    expect(got).toHaveLength(2);
    // Hop-by-Hop after a Destination Options header is malformed.
    b.receive(
      v6([
        { kind: 'destination', options: [] },
        { kind: 'hop-by-hop', options: [] },
      ]),
    );
    expect(b.counters.get('ipv6.drop.malformed')).toBe(1);
    expect(b.counters.get('ipv6.drop.unknown-option')).toBe(2);
    clock.runUntilIdle();
    expect(reports.map((r) => [r.kind, r.code])).toEqual([
      ['parameter-problem', 2],
      ['parameter-problem', 0],
    ]);
    // Both pointers name byte 42: the option type after the 2-byte header, and the Routing Type.
    const pointers = lb.sent.map((p) => {
      const d = decodeIpv6(p);
      const m = decodeIcmpv6(d.payload, d.src, d.dst);
      return m.kind === 'parameter-problem' ? m.pointer : -1;
    });
    expect(pointers).toEqual([42, 42]);
  });

  it('IPv6 fragments: atomic fragments alone (RFC 6946), overlaps (RFC 5722), an incomplete first chain (RFC 7112)', () => {
    const { clock, a, b, lb } = pair();
    const got: IpDelivery[] = [];
    b.registerProtocol(17, { receive: (d) => got.push(d) });
    const reports: IcmpErrorReport[] = [];
    a.registerProtocol(17, { receive: () => {}, receiveIcmpError: (e) => reports.push(e) });
    const frag = (
      id: number,
      offset: number,
      more: boolean,
      payload: Uint8Array,
      nextHeader = 17,
      pre: Ipv6ExtensionHeader[] = [],
    ) =>
      encodeIpv6({
        trafficClass: 0,
        flowLabel: 0,
        hopLimit: 64,
        src: 'fd00:5757::1',
        dst: 'fd00:5757::2',
        extensionHeaders: [
          ...pre,
          { kind: 'fragment', fragmentOffset: offset / 8, moreFragments: more, identification: id },
        ],
        nextHeader,
        payload,
      });
    // An atomic fragment is delivered at once, even while a datagram with its id is pending.
    b.receive(frag(1, 0, true, new Uint8Array(16)));
    b.receive(frag(1, 0, false, new Uint8Array(5)));
    expect(got.map((d) => d.payload.length)).toEqual([5]);
    expect(b.counters.get('ipv6.atomic-fragment')).toBe(1);
    // Overlap: the whole datagram goes, and so does its late last piece.
    b.receive(frag(1, 8, true, new Uint8Array(16)));
    b.receive(frag(1, 24, false, new Uint8Array(8)));
    expect(b.counters.get('reasm.drop.overlap')).toBe(1);
    expect(b.counters.get('reasm.drop.discarded')).toBe(1);
    expect(got).toHaveLength(1);
    // A first fragment whose Destination Options header runs past its end.
    const dstOpts = new Uint8Array(16);
    dstOpts[0] = 17;
    dstOpts[1] = 3; // claims 32 bytes
    b.receive(frag(2, 0, true, dstOpts, 60));
    expect(b.counters.get('ipv6.drop.incomplete-chain')).toBe(1);
    // A non-last fragment whose length is not a multiple of 8: code 0 at Payload Length.
    b.receive(frag(3, 0, true, new Uint8Array(13)));
    clock.runUntilIdle();
    // The first error quotes a datagram whose transport cannot be found: nobody claims it.
    expect(reports.map((r) => [r.kind, r.code])).toEqual([['parameter-problem', 0]]);
    expect(a.counters.get('icmpv6.error.unclaimed')).toBe(1);
    const sent = lb.sent.map((p) => {
      const d = decodeIpv6(p);
      const m = decodeIcmpv6(d.payload, d.src, d.dst);
      return m.kind === 'parameter-problem' ? [m.code, m.pointer] : [];
    });
    expect(sent).toEqual([
      [3, 0],
      [0, 4],
    ]);
  });

  it('routes by longest prefix, with default routes and no-route / no-source results', () => {
    const clock = new VirtualClock();
    const [l1] = pipe(clock, 1500, 5, ['eth0', 'x']);
    const [l2] = pipe(clock, 1500, 5, ['eth1', 'y']);
    const h = new Host({ name: 'H', clock });
    const i1 = h.addInterface({ link: l1, ipv4: '198.18.0.1/24' });
    const i2 = h.addInterface({ link: l2, ipv4: '198.19.0.1/16', ipv6: 'fd00:1::1/64' });
    expect(h.send({ dst: '203.0.113.1', protocol: 17, payload: new Uint8Array(1) })).toEqual({
      ok: false,
      error: 'no-route',
    });
    expect(h.sourceFor('203.0.113.1')).toBeUndefined();
    h.addRoute('0.0.0.0/0', i1, '198.18.0.254');
    h.addRoute('203.0.113.0/24', 'eth1');
    expect(h.sourceFor('203.0.113.1')).toBe('198.19.0.1');
    expect(h.sourceFor('203.0.114.1')).toBe('198.18.0.1');
    expect(h.lookupRoute('198.19.3.4')?.iface).toBe(i2);
    // The last lookup is remembered: removing its route must forget it too.
    expect(h.lookupRoute('203.0.113.1')?.iface).toBe(i2);
    expect(h.removeRoute('203.0.113.0/24')).toBe(true);
    expect(h.lookupRoute('203.0.113.1')?.iface).toBe(i1);
    expect(h.sourceFor('203.0.113.1')).toBe('198.18.0.1');
    expect(h.send({ dst: 'fd00:2::1', protocol: 17, payload: new Uint8Array(1) }).ok).toBe(false);
    h.addRoute('::/0', i1);
    expect(h.send({ dst: 'fd00:2::1', protocol: 17, payload: new Uint8Array(1) })).toEqual({
      ok: false,
      error: 'no-source',
    });
    expect(
      h.send({ src: '198.18.0.99', dst: '198.18.0.2', protocol: 17, payload: new Uint8Array(1) }),
    ).toEqual({
      ok: false,
      error: 'no-source',
    });
    expect(h.isLocalAddress('198.19.0.1')).toBe(true);
    expect(h.isLocalAddress('fd00:1::1')).toBe(true);
    expect(h.isLocalAddress('fd00:1::2')).toBe(false);
  });
});

describe('Host: hostile input', () => {
  it('never throws on arbitrary bytes and counts every packet', () => {
    const { clock, b } = pair();
    b.registerProtocol(17, { receive: () => {} });
    let before = b.counters.total();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        b.receive(bytes);
        const now = b.counters.total();
        expect(now).toBeGreaterThan(before);
        before = now;
      }),
      { numRuns: 3000 },
    );
    clock.runUntilIdle();
  });

  it('never throws on well-formed headers with arbitrary contents addressed to it', () => {
    const { clock, b } = pair();
    b.registerProtocol(17, { receive: () => {} });
    const v4 = arbitraryIpv4Packet(300).map((p) =>
      encodeIpv4({ ...p, dst: '198.18.0.2', src: '198.18.0.1' }),
    );
    const v6 = arbitraryIpv6Packet(300).map((p) =>
      encodeIpv6({ ...p, dst: 'fd00:5757::2', src: 'fd00:5757::1' }),
    );
    const icmp = fc.uint8Array({ minLength: 0, maxLength: 80 }).map((body) =>
      encodeIpv4(
        ipv4Packet({
          dontFragment: false,
          protocol: 1,
          src: '198.18.0.1',
          dst: '198.18.0.2',
          payload: body,
        }),
      ),
    );
    let before = b.counters.total();
    fc.assert(
      fc.property(fc.oneof(v4, v6, icmp), (bytes) => {
        b.receive(bytes);
        clock.advance(10);
        const now = b.counters.total();
        expect(now).toBeGreaterThan(before);
        before = now;
      }),
      { numRuns: 3000 },
    );
    clock.runUntilIdle();
  });
});
