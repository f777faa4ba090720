import { fc, test as fcTest } from '@fast-check/vitest';
import { Prng, type TraceEvent, utf8, VirtualClock } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { encodeUdp } from '../src/datagram.ts';
import { udpEcho } from '../src/echo.ts';
import type { UdpSystemError } from '../src/errors.ts';
import {
  EPHEMERAL_PORT_MAX,
  EPHEMERAL_PORT_MIN,
  type RemoteInfo,
  Udp,
  type UdpSocket,
} from '../src/socket.ts';
import { FakeStack } from './fake-stack.ts';

const A4 = '198.18.0.1';
const B4 = '198.18.0.2';
const A6 = 'fd00:5757::1';
const B6 = 'fd00:5757::2';

function pair(seed = 1) {
  const clock = new VirtualClock();
  const a = new FakeStack('A', clock, [A4, A6], seed);
  const b = new FakeStack('B', clock, [B4, B6], seed + 1);
  FakeStack.wire(a, b);
  return { clock, a, b, ua: new Udp(a), ub: new Udp(b) };
}

type Msg = { msg: Buffer; rinfo: RemoteInfo };
function collect(s: UdpSocket): Msg[] {
  const out: Msg[] = [];
  s.on('message', (msg, rinfo) => out.push({ msg: Buffer.from(msg), rinfo }));
  return out;
}
function errors(s: UdpSocket): UdpSystemError[] {
  const out: UdpSystemError[] = [];
  s.on('error', (e) => out.push(e as UdpSystemError));
  return out;
}

describe('UDP sockets over a fake IpStack', () => {
  it('registers protocol 17 on the stack', () => {
    const { a, ua } = pair();
    expect(a.handlers.get(17)).toBe(ua);
  });

  for (const [type, server, family] of [
    ['udp4', B4, 'IPv4'],
    ['udp6', B6, 'IPv6'],
  ] as const) {
    it(`echoes a datagram (${type}, RFC 862) and reports rinfo like node:dgram`, () => {
      const { clock, ua, ub } = pair();
      const echo = udpEcho(ub, 7);
      const c = ua.createSocket(type);
      const got = collect(c);
      let listening = false;
      c.on('listening', () => (listening = true));
      let sentBytes: number | undefined;
      c.send('hello', 7, server, (err, n) => {
        expect(err).toBeNull();
        sentBytes = n;
      });
      const port = c.address().port;
      clock.runUntilIdle();
      expect(listening).toBe(true);
      expect(sentBytes).toBe(5);
      expect(got).toHaveLength(1);
      expect(got[0]!.msg.toString()).toBe('hello');
      expect(got[0]!.rinfo).toEqual({ address: server, family, port: 7, size: 5 });
      expect(port).toBeGreaterThanOrEqual(EPHEMERAL_PORT_MIN);
      expect(echo.echoed).toBe(1);
      echo.close();
    });
  }

  it('the echo service ignores a datagram from source port 0 (RFC 768: no reply wanted)', () => {
    const { clock, a, b, ub } = pair();
    const echo = udpEcho(ub, 7, ['udp4']);
    const payload = encodeUdp({ srcPort: 0, dstPort: 7, payload: utf8('q') }, { src: A4, dst: B4 });
    expect(() =>
      b.deliver({ version: 4, src: A4, dst: B4, protocol: 17, ttl: 64, payload, original: payload }),
    ).not.toThrow();
    clock.runUntilIdle();
    expect(echo.echoed).toBe(0);
    expect(b.counters.get('udp.echo.no-reply')).toBe(1);
    expect(b.sent).toHaveLength(0);
    expect(a.delivered).toHaveLength(0);
  });

  it('two echo services never bounce a datagram between them forever (loop guard)', () => {
    const { clock, a, b, ua, ub } = pair();
    udpEcho(ua, 7, ['udp4']);
    udpEcho(ub, 7, ['udp4']);
    // A datagram forged as coming from A's echo port reaches B's echo service.
    const payload = encodeUdp({ srcPort: 7, dstPort: 7, payload: utf8('loop') }, { src: A4, dst: B4 });
    b.deliver({ version: 4, src: A4, dst: B4, protocol: 17, ttl: 64, payload, original: payload });
    expect(clock.runUntilIdle(Number.POSITIVE_INFINITY, 1000)).toBeLessThan(1000);
    expect(b.counters.get('udp.echo.loop-guard')).toBe(1);
    expect(a.delivered).toHaveLength(0);
  });

  it('hands the message as a view of the received packet, not a copy', () => {
    const { clock, a, ua, ub } = pair();
    const s = ua.createSocket('udp4');
    s.bind(5000);
    let seen: Buffer | undefined;
    s.on('message', (m) => (seen = m));
    ub.createSocket('udp4').send(utf8('abc'), 5000, A4);
    clock.runUntilIdle();
    const packet = a.delivered.at(-1)!.payload;
    expect(seen!.buffer).toBe(packet.buffer);
    expect(seen!.byteOffset).toBe(packet.byteOffset + 8);
  });

  it('emits trace events per datagram with a ladder summary', () => {
    const { clock, a, b, ua, ub } = pair();
    udpEcho(ub, 7, ['udp4']);
    const ta: TraceEvent[] = [];
    const tb: TraceEvent[] = [];
    a.trace.on((e) => ta.push(e));
    b.trace.on((e) => tb.push(e));
    const c = ua.createSocket('udp4');
    c.bind(49152);
    c.send('hello', 7, B4);
    clock.runUntilIdle();
    expect(ta.map((e) => [e.dir, e.summary])).toEqual([
      ['out', 'UDP 49152→7 len=5'],
      ['in', 'UDP 7→49152 len=5'],
    ]);
    expect(tb.map((e) => [e.dir, e.summary])).toEqual([
      ['in', 'UDP 49152→7 len=5'],
      ['out', 'UDP 7→49152 len=5'],
    ]);
    expect(ta[0]).toMatchObject({ layer: 'udp', host: 'A', fields: { length: 13, src: A4, dst: B4 } });
    expect(a.counters.get('udp.tx')).toBe(1);
    expect(a.counters.get('udp.rx')).toBe(1);
  });

  it('sends the offset/length form, arrays of chunks, typed arrays and DataViews', () => {
    const { clock, ua, ub } = pair();
    const s = ub.createSocket('udp6');
    s.bind(9);
    const got = collect(s);
    const c = ua.createSocket('udp6');
    c.send(Buffer.from('xxhelloxx'), 2, 5, 9, B6);
    c.send(['ab', utf8('cd'), new Uint16Array([0x6565])], 9, B6);
    c.send(new DataView(utf8('dv').buffer), 9, B6);
    // node:dgram accepts a numeric string as the port.
    (c.send as (...a: unknown[]) => void)('str', '9', B6);
    clock.runUntilIdle();
    expect(got.map((m) => m.msg.toString())).toEqual(['hello', 'abcdee', 'dv', 'str']);
    expect(() => (c.send as (...a: unknown[]) => void)('x', 'nine', B6)).toThrow(
      expect.objectContaining({ code: 'ERR_SOCKET_BAD_PORT' }),
    );
    expect(() => c.send(Buffer.from('abc'), 2, 5, 9, B6)).toThrow(
      expect.objectContaining({ code: 'ERR_BUFFER_OUT_OF_BOUNDS' }),
    );
    expect(() => c.send('x', 0, B6)).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_BAD_PORT' }));
    expect(() => c.send('x', 70000, B6)).toThrow(RangeError);
  });

  it('picks ephemeral ports from 49152–65535 with the stack Prng, skipping ports in use (RFC 6056 §3.3.1)', () => {
    const seed = 77;
    const clock = new VirtualClock();
    const a = new FakeStack('A', clock, [A4, A6], seed);
    const udp = new Udp(a);
    // The same seed tells which port Algorithm 1 starts from; take that one first.
    const first = EPHEMERAL_PORT_MIN + new Prng(seed).int(0, EPHEMERAL_PORT_MAX - EPHEMERAL_PORT_MIN);
    udp.createSocket('udp4').bindSync(first);
    const s = udp.createSocket('udp4');
    s.bind();
    expect(s.address()).toEqual({
      address: '0.0.0.0',
      family: 'IPv4',
      port: first === 65535 ? 49152 : first + 1,
    });
    const ports = new Set<number>();
    for (let i = 0; i < 300; i++) ports.add(udp.createSocket('udp6').bindSync(0).port);
    expect(ports.size).toBe(300);
    for (const p of ports) expect(p >= EPHEMERAL_PORT_MIN && p <= EPHEMERAL_PORT_MAX).toBe(true);
  });

  it('fails with EADDRINUSE once every ephemeral port is taken', () => {
    const { clock, ua } = pair();
    const n = EPHEMERAL_PORT_MAX - EPHEMERAL_PORT_MIN + 1;
    for (let i = 0; i < n; i++) ua.createSocket('udp4').bindSync(0);
    const s = ua.createSocket('udp4');
    const errs = errors(s);
    s.bind(0);
    clock.runUntilIdle();
    expect(errs.map((e) => e.code)).toEqual(['EADDRINUSE']);
    // The other family has its own table.
    expect(ua.createSocket('udp6').bindSync(0).port).toBeGreaterThanOrEqual(EPHEMERAL_PORT_MIN);
  });

  it('refuses a second bind of a taken port with a Node-shaped EADDRINUSE', () => {
    const { clock, ua } = pair();
    ua.createSocket('udp4').bind(5353);
    const s = ua.createSocket('udp4');
    const errs = errors(s);
    let listening = false;
    s.bind(5353, () => (listening = true));
    clock.runUntilIdle();
    expect(listening).toBe(false);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatchObject({
      code: 'EADDRINUSE',
      errno: -98,
      syscall: 'bind',
      address: '0.0.0.0',
      port: 5353,
      message: 'bind EADDRINUSE 0.0.0.0:5353',
    });
    expect(() => s.address()).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'getsockname' }));
    // A specific address conflicts with the wildcard too (as on Linux without SO_REUSEADDR).
    expect(() => ua.createSocket('udp4').bindSync(5353, A4)).toThrow(
      expect.objectContaining({ code: 'EADDRINUSE' }),
    );
    // Same port, other family: separate.
    expect(ua.createSocket('udp6').bindSync(5353).port).toBe(5353);
    const t = ua.createSocket('udp4');
    t.bindSync(6000);
    expect(() => t.bind(6001)).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_ALREADY_BOUND' }));
    expect(t.address().port).toBe(6000);
  });

  it('refuses to bind an address the host does not have (EADDRNOTAVAIL), or of the other family', () => {
    const { ua } = pair();
    expect(() => ua.createSocket('udp4').bindSync(1, B4)).toThrow(
      expect.objectContaining({ code: 'EADDRNOTAVAIL' }),
    );
    expect(() => ua.createSocket('udp4').bindSync(1, A6)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(() => ua.createSocket('udp6').bindSync(1, 'no.such.host')).toThrow(
      expect.objectContaining({ code: 'ENOTFOUND' }),
    );
    // Non-canonical text is accepted and canonicalized.
    expect(ua.createSocket('udp6').bindSync(1, 'FD00:5757:0::0001').address).toBe(A6);
  });

  it('prefers the socket bound to the exact local address over the wildcard (reuseAddr)', () => {
    const clock = new VirtualClock();
    const a = new FakeStack('A', clock, [A4, '198.18.0.3'], 1);
    const b = new FakeStack('B', clock, [B4], 2);
    FakeStack.wire(a, b);
    const ua = new Udp(a);
    const ub = new Udp(b);
    const wild = ua.createSocket({ type: 'udp4', reuseAddr: true });
    wild.bind(53);
    const exact = ua.createSocket({ type: 'udp4', reuseAddr: true });
    exact.bind(53, A4);
    const gw = collect(wild);
    const ge = collect(exact);
    const c = ub.createSocket('udp4');
    c.send('to-exact', 53, A4);
    c.send('to-other', 53, '198.18.0.3');
    clock.runUntilIdle();
    expect(ge.map((m) => m.msg.toString())).toEqual(['to-exact']);
    expect(gw.map((m) => m.msg.toString())).toEqual(['to-other']);
    // Closing the exact socket leaves the wildcard to take everything.
    exact.close();
    c.send('again', 53, A4);
    clock.runUntilIdle();
    expect(gw.map((m) => m.msg.toString())).toEqual(['to-other', 'again']);
  });

  it('keeps families apart: a udp6 socket on :: does not receive IPv4', () => {
    const { clock, a, b, ua, ub } = pair();
    const s6 = ua.createSocket('udp6');
    s6.bind(9);
    const got = collect(s6);
    const c = ub.createSocket('udp4');
    const errs = errors(c);
    c.send('v4', 9, A4);
    clock.runUntilIdle();
    expect(got).toHaveLength(0);
    expect(a.counters.get('udp.drop.no-port')).toBe(1);
    expect(a.unreachables).toHaveLength(1);
    expect(errs.map((e) => e.code)).toEqual(['ECONNREFUSED']);
    expect(b.counters.get('udp.icmp.hard')).toBe(1);
  });

  it('port unreachable: answers with sendUnreachable and the unconnected sender gets ECONNREFUSED', () => {
    const { clock, a, b, ua, ub } = pair();
    const c = ub.createSocket('udp4');
    const errs = errors(c);
    c.bind(40000);
    c.send('anyone?', 9, A4);
    clock.runUntilIdle();
    expect(a.unreachables.map((u) => u.reason)).toEqual(['port']);
    expect(a.counters.get('udp.drop.no-port')).toBe(1);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatchObject({
      code: 'ECONNREFUSED',
      errno: -111,
      syscall: 'recvmsg',
      address: A4,
      port: 9,
      icmp: { kind: 'unreachable', code: 3, reporter: A4 },
    });
    // The socket still works after the error.
    const s = ua.createSocket('udp4');
    s.bind(9);
    const got = collect(s);
    c.send('now?', 9, A4);
    clock.runUntilIdle();
    expect(got.map((m) => m.msg.toString())).toEqual(['now?']);
    expect(b.counters.get('udp.icmp.hard')).toBe(1);
  });

  it('port unreachable on a connected socket: ECONNREFUSED (as Linux), over IPv6 too', () => {
    const { clock, ub } = pair();
    const c = ub.createSocket('udp6');
    const errs = errors(c);
    let connected = false;
    c.connect(9, A6, () => (connected = true));
    c.send('x');
    clock.runUntilIdle();
    expect(connected).toBe(true);
    expect(errs.map((e) => [e.code, e.address, e.port])).toEqual([['ECONNREFUSED', A6, 9]]);
    expect(c.remoteAddress()).toEqual({ address: A6, family: 'IPv6', port: 9 });
  });

  it('does not send port unreachable for multicast or broadcast destinations (RFC 1122 §4.1.3.1)', () => {
    const { a } = pair();
    for (const [src, dst] of [
      [B4, '255.255.255.255'],
      [B4, '224.0.0.251'],
      [B6, 'ff02::fb'],
    ] as const) {
      const payload = encodeUdp({ srcPort: 5353, dstPort: 5353, payload: utf8('q') }, { src, dst });
      a.deliver({
        version: src.includes(':') ? 6 : 4,
        src,
        dst,
        protocol: 17,
        ttl: 1,
        payload,
        original: payload,
      });
    }
    expect(a.counters.get('udp.drop.no-port')).toBe(3);
    expect(a.unreachables).toHaveLength(0);
  });

  it('a connected socket sends to its peer only and receives only from it', () => {
    const clock = new VirtualClock();
    const a = new FakeStack('A', clock, [A4], 1);
    const b = new FakeStack('B', clock, [B4], 2);
    const c3 = new FakeStack('C', clock, ['198.18.0.3'], 3);
    FakeStack.wire(a, b, c3);
    const ua = new Udp(a);
    const s = ua.createSocket('udp4');
    s.bind(7000);
    s.connect(8000, B4);
    const got = collect(s);
    const fromB = new Udp(b).createSocket('udp4');
    fromB.bind(8000);
    const gotB = collect(fromB);
    const fromC = new Udp(c3).createSocket('udp4');
    fromC.bind(8000);
    s.send('hi');
    fromB.send('from B', 7000, A4);
    fromC.send('from C', 7000, A4);
    clock.runUntilIdle();
    expect(gotB.map((m) => m.msg.toString())).toEqual(['hi']);
    expect(got.map((m) => m.msg.toString())).toEqual(['from B']);
    expect(a.counters.get('udp.drop.no-port')).toBe(1);
    expect(() => s.send('x', 8000, B4)).toThrow(
      expect.objectContaining({ code: 'ERR_SOCKET_DGRAM_IS_CONNECTED' }),
    );
    expect(() => s.connect(1, B4)).toThrow(
      expect.objectContaining({ code: 'ERR_SOCKET_DGRAM_IS_CONNECTED' }),
    );
    s.disconnect();
    expect(() => s.remoteAddress()).toThrow(
      expect.objectContaining({ code: 'ERR_SOCKET_DGRAM_NOT_CONNECTED' }),
    );
    fromC.send('now C', 7000, A4);
    clock.runUntilIdle();
    expect(got.map((m) => m.msg.toString())).toEqual(['from B', 'now C']);
  });

  it('refuses datagrams above 65507 bytes on IPv4 and 65527 on IPv6 with EMSGSIZE', () => {
    const { clock, a, ua } = pair();
    const s4 = ua.createSocket('udp4');
    const s6 = ua.createSocket('udp6');
    const results: [string, unknown, number | undefined][] = [];
    const cb = (tag: string) => (err: Error | null, n?: number) =>
      results.push([tag, (err as UdpSystemError)?.code, n]);
    s4.send(new Uint8Array(65508), 9, B4, cb('v4 over'));
    s4.send(new Uint8Array(65507), 9, B4, cb('v4 max'));
    s6.send(new Uint8Array(65528), 9, B6, cb('v6 over'));
    s6.send(new Uint8Array(65527), 9, B6, cb('v6 max'));
    clock.runUntilIdle();
    expect(results).toEqual([
      ['v4 over', 'EMSGSIZE', undefined],
      ['v4 max', undefined, 65507],
      ['v6 over', 'EMSGSIZE', undefined],
      ['v6 max', undefined, 65527],
    ]);
    expect(a.sent.map((o) => o.payload.length)).toEqual([65515, 65535]);
  });

  it('reports local send failures to the callback, or as an error event without one', () => {
    const { clock, a, ua } = pair();
    const s = ua.createSocket('udp4');
    const errs = errors(s);
    let cbErr: unknown;
    s.send('x', 9, '198.51.100.1', (e) => (cbErr = e));
    a.failSends = 'too-big';
    s.send('y', 9, B4);
    clock.runUntilIdle();
    expect(cbErr).toMatchObject({ code: 'ENETUNREACH', syscall: 'send', address: '198.51.100.1', port: 9 });
    expect(errs.map((e) => e.code)).toEqual(['EMSGSIZE']);
    expect(a.counters.get('udp.tx.error')).toBe(2);
    expect(a.counters.get('udp.tx')).toBe(0);
  });

  it('sends to the loopback address when the address is omitted, as node:dgram', () => {
    const { clock, a, ua } = pair();
    const s = ua.createSocket('udp6');
    let err: unknown;
    s.send('x', 9, (e) => (err = e));
    clock.runUntilIdle();
    expect(a.sent.map((o) => o.dst)).toEqual(['::1']);
    expect(err).toMatchObject({ code: 'ENETUNREACH', address: '::1' });
  });

  it('close frees the port, emits close once, and later calls throw ERR_SOCKET_DGRAM_NOT_RUNNING', () => {
    const { clock, ua } = pair();
    const s = ua.createSocket('udp4');
    let listening = 0;
    let closed = 0;
    s.on('listening', () => listening++);
    s.bind(1234);
    s.close(() => closed++);
    clock.runUntilIdle();
    expect(listening).toBe(0);
    expect(closed).toBe(1);
    expect(() => s.send('x', 1, B4)).toThrow(
      expect.objectContaining({ code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' }),
    );
    expect(() => s.close()).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' }));
    expect(() => s.bind(1)).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' }));
    expect(() => s.address()).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' }));
    expect(ua.createSocket('udp4').bindSync(1234).port).toBe(1234);
    expect(ua.boundSockets()).toHaveLength(1);
  });

  it('closes on an aborted signal; has no send queue', () => {
    const { clock, ua } = pair();
    const ac = new AbortController();
    const s = ua.createSocket({ type: 'udp4', signal: ac.signal });
    s.bindSync(53);
    expect(s.getSendQueueSize()).toBe(0);
    expect(s.getSendQueueCount()).toBe(0);
    let closed = false;
    s.on('close', () => (closed = true));
    ac.abort();
    clock.runUntilIdle();
    expect(closed).toBe(true);
    expect(s.isClosed).toBe(true);
    expect(ua.createSocket('udp4').bindSync(53).port).toBe(53);
    const pre = ua.createSocket({ type: 'udp6', signal: AbortSignal.abort() });
    expect(pre.isClosed).toBe(true);
  });

  it('uses the socket TTL for its datagrams', () => {
    const { a, ua } = pair();
    const s = ua.createSocket('udp4');
    s.setTTL(3);
    s.send('x', 9, B4);
    expect(a.sent[0]!.ttl).toBe(3);
    expect(() => s.setTTL(0)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('drops datagrams with a bad checksum or length, counted and traced, without a message', () => {
    const { a, ua } = pair();
    const s = ua.createSocket('udp4');
    s.bind(9);
    const got = collect(s);
    const drops: TraceEvent[] = [];
    a.trace.on((e) => e.dir === 'drop' && drops.push(e));
    const good = encodeUdp({ srcPort: 1, dstPort: 9, payload: utf8('abc') }, { src: B4, dst: A4 });
    const badSum = good.slice();
    badSum[8] = badSum[8]! ^ 0xff;
    const badLen = good.slice();
    badLen[5] = 99;
    for (const payload of [badSum, badLen, good.subarray(0, 5), good]) {
      a.deliver({ version: 4, src: B4, dst: A4, protocol: 17, ttl: 64, payload, original: payload });
    }
    expect(got.map((m) => m.msg.toString())).toEqual(['abc']);
    expect(a.counters.get('udp.drop.checksum')).toBe(1);
    expect(a.counters.get('udp.drop.malformed')).toBe(2);
    expect(drops.map((e) => e.reason)).toEqual([
      'udp.drop.checksum',
      'udp.drop.malformed',
      'udp.drop.malformed',
    ]);
    expect(a.unreachables).toHaveLength(0);
  });

  it('does not report soft ICMP errors, nor errors to a socket without an error listener', () => {
    const { a, ua } = pair();
    const s = ua.createSocket('udp4');
    const port = s.bindSync(0).port;
    const errs = errors(s);
    const quoted = encodeUdp({ srcPort: port, dstPort: 9, payload: new Uint8Array() }, { src: A4, dst: B4 });
    const base = { version: 4 as const, reporter: '198.18.0.9', src: A4, dst: B4, protocol: 17, quoted };
    a.icmpError({ ...base, kind: 'time-exceeded', code: 0 });
    a.icmpError({ ...base, kind: 'packet-too-big', code: 4, mtu: 1280 });
    a.icmpError({ ...base, kind: 'unreachable', code: 1 });
    a.icmpError({ ...base, kind: 'parameter-problem', code: 0 });
    expect(errs.map((e) => e.code)).toEqual(['EPROTO']);
    expect(a.counters.get('udp.icmp.soft')).toBe(3);
    const quiet = ua.createSocket('udp4');
    const qport = quiet.bindSync(0).port;
    const q = encodeUdp({ srcPort: qport, dstPort: 9, payload: new Uint8Array() }, { src: A4, dst: B4 });
    expect(() => a.icmpError({ ...base, quoted: q, kind: 'unreachable', code: 3 })).not.toThrow();
    expect(a.counters.get('udp.icmp.unreported')).toBe(1);
    a.icmpError({ ...base, quoted: q.subarray(0, 3), kind: 'unreachable', code: 3 });
    expect(a.counters.get('udp.icmp.malformed')).toBe(1);
    a.icmpError({
      ...base,
      quoted: encodeUdp({ srcPort: 1, dstPort: 9, payload: new Uint8Array() }, { src: A4, dst: B4 }),
      kind: 'unreachable',
      code: 3,
    });
    expect(a.counters.get('udp.icmp.no-socket')).toBe(1);
  });

  fcTest.prop([fc.uint8Array({ maxLength: 100 }), fc.boolean()], { numRuns: 400 })(
    'arbitrary bytes as a protocol-17 payload never throw and are counted',
    (payload, v6) => {
      const { a, ua } = pair();
      ua.createSocket(v6 ? 'udp6' : 'udp4').bind(payload.length > 3 ? (payload[2]! << 8) | payload[3]! : 9);
      const [src, dst] = v6 ? [B6, A6] : [B4, A4];
      a.deliver({ version: v6 ? 6 : 4, src, dst, protocol: 17, ttl: 64, payload, original: payload });
      expect(a.counters.total('udp.drop.') + a.counters.get('udp.rx')).toBe(1);
    },
  );
});

describe('demultiplexing against a model', () => {
  const LOCALS = ['198.18.0.1', '198.18.0.3'];
  const PEERS = ['198.18.0.2', '198.18.0.4'];
  const PORTS = [53, 54];
  type Op =
    | { op: 'bind'; port: number; addr: string | undefined; reuse: boolean }
    | { op: 'connect'; i: number; peer: string; port: number }
    | { op: 'close'; i: number }
    | { op: 'dgram'; dst: string; dport: number; src: string; sport: number };
  // Weighted toward binds and datagrams so that shared ports (reuseAddr ties) come up often.
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({
        op: fc.constant('bind' as const),
        port: fc.constantFrom(...PORTS),
        addr: fc.constantFrom(undefined, ...LOCALS),
        reuse: fc.boolean(),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant('connect' as const),
        i: fc.nat(20),
        peer: fc.constantFrom(...PEERS),
        port: fc.constantFrom(...PORTS),
      }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('close' as const), i: fc.nat(20) }) },
    {
      weight: 3,
      arbitrary: fc.record({
        op: fc.constant('dgram' as const),
        dst: fc.constantFrom(...LOCALS),
        dport: fc.constantFrom(...PORTS),
        src: fc.constantFrom(...PEERS),
        sport: fc.constantFrom(...PORTS),
      }),
    },
  );

  fcTest.prop([fc.array(opArb, { minLength: 10, maxLength: 60 })], { numRuns: 300 })(
    'each datagram goes to the most specific matching socket (latest among equals), or none matches',
    (ops) => {
      const clock = new VirtualClock();
      const a = new FakeStack('A', clock, LOCALS, 1);
      const udp = new Udp(a);
      type M = {
        s: UdpSocket;
        addr: string;
        port: number;
        reuse: boolean;
        remote?: [string, number];
        got: number;
      };
      const live: M[] = [];
      const all: M[] = [];
      for (const o of ops) {
        if (o.op === 'bind') {
          const s = udp.createSocket({ type: 'udp4', reuseAddr: o.reuse });
          const addr = o.addr ?? '0.0.0.0';
          // Linux without SO_REUSEADDR on both: same port conflicts when either side is the wildcard or both equal.
          const conflict = live.some(
            (m) =>
              m.port === o.port &&
              !(o.reuse && m.reuse) &&
              (m.addr === addr || m.addr === '0.0.0.0' || addr === '0.0.0.0'),
          );
          if (conflict) {
            expect(() => s.bindSync(o.port, o.addr)).toThrow(expect.objectContaining({ code: 'EADDRINUSE' }));
            continue;
          }
          s.bindSync(o.port, o.addr);
          const m: M = { s, addr, port: o.port, reuse: o.reuse, got: 0 };
          s.on('message', () => m.got++);
          live.push(m);
          all.push(m);
        } else if (o.op === 'connect') {
          const m = live[o.i % Math.max(1, live.length)];
          if (!m || m.remote) continue;
          m.s.connect(o.port, o.peer);
          m.remote = [o.peer, o.port];
        } else if (o.op === 'close') {
          const k = o.i % Math.max(1, live.length);
          const m = live[k];
          if (!m) continue;
          m.s.close();
          live.splice(k, 1);
        } else {
          const before = all.map((m) => m.got);
          const noPort = a.counters.get('udp.drop.no-port');
          const payload = encodeUdp(
            { srcPort: o.sport, dstPort: o.dport, payload: utf8('m') },
            { src: o.src, dst: o.dst },
          );
          a.deliver({
            version: 4,
            src: o.src,
            dst: o.dst,
            protocol: 17,
            ttl: 64,
            payload,
            original: payload,
          });
          const score = (m: M): number => {
            if (m.port !== o.dport) return -1;
            if (m.addr !== '0.0.0.0' && m.addr !== o.dst) return -1;
            if (m.remote && (m.remote[0] !== o.src || m.remote[1] !== o.sport)) return -1;
            return (m.remote ? 4 : 0) + (m.addr !== '0.0.0.0' ? 2 : 0);
          };
          let want: M | undefined;
          for (const m of live) if (score(m) >= 0 && (!want || score(m) >= score(want))) want = m;
          const changed = all.filter((m, i) => m.got !== before[i]);
          expect(changed).toEqual(want ? [want] : []);
          expect(a.counters.get('udp.drop.no-port')).toBe(noPort + (want ? 0 : 1));
        }
      }
    },
  );
});
