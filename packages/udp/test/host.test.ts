import { fc, test as fcTest } from '@fast-check/vitest';
import { encodeIpv4, encodeIpv6, Host } from '@stepwire/ip';
import { MemoryLink } from '@stepwire/link';
import { Prng, type TraceEvent, VirtualClock } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { encodeUdp } from '../src/datagram.ts';
import { udpEcho } from '../src/echo.ts';
import type { UdpSystemError } from '../src/errors.ts';
import { EPHEMERAL_PORT_MAX, EPHEMERAL_PORT_MIN, type RemoteInfo, Udp } from '../src/socket.ts';
import { pipe } from './pipe.ts';

const A4 = '198.18.0.1';
const B4 = '198.18.0.2';
const A6 = 'fd00:5757::1';
const B6 = 'fd00:5757::2';

/** Two real Hosts joined by a pipe, each with UDP on top. */
function net(opts: { mtu?: number; seed?: number } = {}) {
  const clock = new VirtualClock();
  const [la, lb] = pipe(clock, opts.mtu ?? 1500, 1);
  const seed = opts.seed ?? 1;
  const a = new Host({ name: 'A', clock, prng: new Prng(seed) });
  const b = new Host({ name: 'B', clock, prng: new Prng(seed + 1) });
  a.addInterface({ link: la, ipv4: `${A4}/24`, ipv6: `${A6}/64` });
  b.addInterface({ link: lb, ipv4: `${B4}/24`, ipv6: `${B6}/64` });
  return { clock, a, b, la, lb, ua: new Udp(a), ub: new Udp(b) };
}

describe('UDP over two real Hosts', () => {
  for (const [type, server] of [
    ['udp4', B4],
    ['udp6', B6],
  ] as const) {
    it(`echoes through the IP layer (${type})`, () => {
      const { clock, a, b, ua, ub } = net();
      const echo = udpEcho(ub, 7);
      const c = ua.createSocket(type);
      const got: [string, RemoteInfo][] = [];
      c.on('message', (m, r) => got.push([m.toString(), r]));
      for (const word of ['one', 'two', 'three']) c.send(word, 7, server);
      clock.runUntilIdle();
      expect(got.map(([m]) => m)).toEqual(['one', 'two', 'three']);
      expect(got[0]![1]).toMatchObject({ address: server, port: 7 });
      expect(echo.echoed).toBe(3);
      expect(a.counters.get('udp.tx')).toBe(3);
      expect(a.counters.get('udp.rx')).toBe(3);
      expect(b.counters.total('udp.drop.')).toBe(0);
    });
  }

  for (const [type, server, v] of [
    ['udp4', B4, 'ipv4'],
    ['udp6', B6, 'ipv6'],
  ] as const) {
    it(`carries a 4000-byte datagram across MTU 1280, fragmented and reassembled (${type})`, () => {
      const { clock, a, b, la, ua, ub } = net({ mtu: 1280 });
      udpEcho(ub, 7);
      const c = ua.createSocket(type);
      const data = new Prng(9).bytes(4000);
      const got: Buffer[] = [];
      c.on('message', (m) => got.push(Buffer.from(m)));
      c.send(data, 7, server);
      clock.runUntilIdle();
      expect(got).toHaveLength(1);
      expect(new Uint8Array(got[0]!)).toEqual(data);
      expect(a.counters.get(`${v}.tx.fragments`)).toBeGreaterThanOrEqual(4);
      expect(b.counters.get(`${v}.tx.fragments`)).toBeGreaterThanOrEqual(4);
      for (const p of la.sent) expect(p.length).toBeLessThanOrEqual(1280);
    });
  }

  for (const [type, server] of [
    ['udp4', B4],
    ['udp6', B6],
  ] as const) {
    it(`port unreachable comes back as ECONNREFUSED on the sender, connected or not (${type})`, () => {
      const { clock, b, ua } = net();
      const s = ua.createSocket(type);
      const errs: UdpSystemError[] = [];
      s.on('error', (e) => errs.push(e as UdpSystemError));
      s.send('knock', 9, server);
      clock.runUntilIdle();
      const c = ua.createSocket(type);
      const cerrs: UdpSystemError[] = [];
      c.on('error', (e) => cerrs.push(e as UdpSystemError));
      c.connect(10, server);
      c.send('knock');
      clock.runUntilIdle();
      expect(b.counters.get('udp.drop.no-port')).toBe(2);
      expect(errs.map((e) => [e.code, e.address, e.port, e.icmp?.reporter])).toEqual([
        ['ECONNREFUSED', server, 9, server],
      ]);
      expect(cerrs.map((e) => [e.code, e.port])).toEqual([['ECONNREFUSED', 10]]);
    });
  }

  it('delivers over the loopback interface to a socket on the same host', () => {
    const { clock, ua } = net();
    const server = ua.createSocket('udp4');
    server.bind(5000, '127.0.0.1');
    const got: [string, RemoteInfo][] = [];
    server.on('message', (m, r) => got.push([m.toString(), r]));
    const c = ua.createSocket('udp4');
    c.send('local', 5000); // no address: 127.0.0.1, as node:dgram
    clock.runUntilIdle();
    expect(got).toEqual([
      ['local', { address: '127.0.0.1', family: 'IPv4', port: c.address().port, size: 5 }],
    ]);
  });

  it('allocates ephemeral ports from the Host Prng, distinct and in range, and refuses a taken port', () => {
    const { clock, ua } = net({ seed: 42 });
    const ports = new Set<number>();
    for (let i = 0; i < 50; i++) {
      const s = ua.createSocket(i % 2 ? 'udp6' : 'udp4');
      s.send('x', 9, i % 2 ? B6 : B4);
      const p = s.address().port;
      expect(p).toBeGreaterThanOrEqual(EPHEMERAL_PORT_MIN);
      expect(p).toBeLessThanOrEqual(EPHEMERAL_PORT_MAX);
      ports.add(p * 2 + (i % 2));
    }
    expect(ports.size).toBe(50);
    // Same seed, same ports: the run is reproducible.
    const again = net({ seed: 42 });
    const first = again.ua.createSocket('udp4');
    first.send('x', 9, B4);
    const { ua: ua1 } = net({ seed: 42 });
    expect(ua1.createSocket('udp4').bindSync(0).port).toBe(first.address().port);
    const taken = ua.createSocket('udp4');
    const errs: UdpSystemError[] = [];
    taken.on('error', (e) => errs.push(e as UdpSystemError));
    ua.createSocket('udp4').bind(7777, A4);
    taken.bind(7777);
    clock.runUntilIdle();
    expect(errs.map((e) => e.code)).toEqual(['EADDRINUSE']);
  });

  it('sends to the limited broadcast only after setBroadcast(true) (SO_BROADCAST), and B receives it', () => {
    const { clock, a, ua, ub } = net();
    const server = ub.createSocket('udp4');
    server.bind(67);
    const got: [string, string][] = [];
    server.on('message', (m, r) => got.push([m.toString(), r.address]));
    const c = ua.createSocket('udp4');
    expect(() => c.setBroadcast(true)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    c.bindSync(0);
    const results: unknown[] = [];
    c.send('no', 67, '255.255.255.255', (e) => results.push((e as UdpSystemError | null)?.code ?? null));
    clock.runUntilIdle();
    c.setBroadcast(true);
    c.send('yes', 67, '255.255.255.255', (e) => results.push((e as UdpSystemError | null)?.code ?? null));
    clock.runUntilIdle();
    expect(results).toEqual(['EACCES', null]);
    expect(got).toEqual([['yes', A4]]);
    expect(a.counters.get('udp.tx')).toBe(1);
  });

  it('traces UDP between the IP lines of the ladder', () => {
    const { clock, a, ua, ub } = net();
    udpEcho(ub, 7, ['udp4']);
    const events: TraceEvent[] = [];
    a.trace.on((e) => events.push(e));
    const c = ua.createSocket('udp4');
    c.bind(49152);
    c.send('hello', 7, B4);
    clock.runUntilIdle();
    const lines = events.map((e) => `${e.layer} ${e.dir} ${e.summary}`);
    const out = lines.indexOf('udp out UDP 49152→7 len=5');
    const back = lines.indexOf('udp in UDP 7→49152 len=5');
    expect(out).toBeGreaterThanOrEqual(0);
    expect(back).toBeGreaterThan(out);
    expect(lines.slice(out + 1).some((l) => l.startsWith('ipv4 out'))).toBe(true);
    expect(lines.slice(0, back).some((l) => l.startsWith('ipv4 in'))).toBe(true);
  });

  fcTest.prop([fc.uint8Array({ maxLength: 120 }), fc.boolean(), fc.boolean()], { numRuns: 300 })(
    'arbitrary bytes as an IP payload with protocol 17 never throw and are counted',
    (payload, v6, listen) => {
      const { clock, b, ub } = net();
      if (listen && payload.length >= 4)
        ub.createSocket(v6 ? 'udp6' : 'udp4').bind((payload[2]! << 8) | payload[3]!);
      const packet = v6
        ? encodeIpv6({
            trafficClass: 0,
            flowLabel: 0,
            hopLimit: 64,
            src: A6,
            dst: B6,
            extensionHeaders: [],
            nextHeader: 17,
            payload,
          })
        : encodeIpv4({
            dscp: 0,
            ecn: 0,
            identification: 7,
            reservedFlag: false,
            dontFragment: false,
            moreFragments: false,
            fragmentOffset: 0,
            ttl: 64,
            protocol: 17,
            src: A4,
            dst: B4,
            options: [],
            payload,
          });
      b.receive(packet);
      clock.runUntilIdle();
      expect(b.counters.get('udp.rx') + b.counters.total('udp.drop.')).toBe(1);
    },
  );

  it('a checksum-valid datagram built outside the stack is delivered; one bit off is dropped', () => {
    const { clock, b, ub } = net();
    const s = ub.createSocket('udp4');
    s.bind(4242);
    const got: string[] = [];
    s.on('message', (m) => got.push(m.toString()));
    const udp = encodeUdp({ srcPort: 1, dstPort: 4242, payload: Buffer.from('ok') }, { src: A4, dst: B4 });
    const ip = (p: Uint8Array) =>
      encodeIpv4({
        dscp: 0,
        ecn: 0,
        identification: 1,
        reservedFlag: false,
        dontFragment: false,
        moreFragments: false,
        fragmentOffset: 0,
        ttl: 64,
        protocol: 17,
        src: A4,
        dst: B4,
        options: [],
        payload: p,
      });
    b.receive(ip(udp));
    const bad = udp.slice();
    bad[9] = bad[9]! ^ 4;
    b.receive(ip(bad));
    clock.runUntilIdle();
    expect(got).toEqual(['ok']);
    expect(b.counters.get('udp.drop.checksum')).toBe(1);
  });
});

describe('UDP over an impaired MemoryLink', () => {
  for (const [type, server] of [
    ['udp4', B4],
    ['udp6', B6],
  ] as const) {
    it(`never delivers a damaged datagram: loss, duplication, reordering, bit flips (${type})`, () => {
      const clock = new VirtualClock();
      const [la, lb] = MemoryLink.pair({
        clock,
        mtu: 1500,
        seed: 5,
        impairments: { loss: 0.1, duplicate: 0.1, reorder: 0.1, reorderDelay: 3, corrupt: 0.3, delay: 1 },
      });
      const a = new Host({ name: 'A', clock, prng: new Prng(1) });
      const b = new Host({ name: 'B', clock, prng: new Prng(2) });
      a.addInterface({ link: la, ipv4: `${A4}/24`, ipv6: `${A6}/64` });
      b.addInterface({ link: lb, ipv4: `${B4}/24`, ipv6: `${B6}/64` });
      const ua = new Udp(a);
      udpEcho(new Udp(b), 7);
      const c = ua.createSocket(type);
      c.on('error', () => {}); // an ICMP error caused by a corrupted port is possible and harmless here
      const rng = new Prng(11);
      const sent = new Map<number, Uint8Array>();
      for (let i = 0; i < 300; i++) {
        const p = rng.bytes(20 + (i % 200));
        p[0] = i >> 8;
        p[1] = i & 0xff;
        sent.set(i, p);
      }
      let received = 0;
      c.on('message', (m) => {
        received++;
        const want = sent.get((m[0]! << 8) | m[1]!);
        expect(want && Buffer.compare(m, want)).toBe(0);
      });
      for (const [, p] of sent) c.send(p, 7, server);
      clock.runUntilIdle();
      const drops = a.counters.get('udp.drop.checksum') + b.counters.get('udp.drop.checksum');
      expect(drops).toBeGreaterThan(5);
      expect(received).toBeGreaterThan(100);
    });
  }
});
