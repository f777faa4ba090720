import { IPPROTO_TCP, type IpDelivery, parseIp } from '@stepwire/ip';
import { ipDelivery } from '@stepwire/ip/testing';
import { Sim } from '@stepwire/sim';
import type { TraceEvent } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import {
  ACK,
  decodeSegment,
  encodeSegment,
  SYN,
  SynCookies,
  Tcp,
  type TcpSegment,
  type TcpSocket,
} from '../src/index.ts';
import { collect, drive, once, tcpSim } from './net.ts';

const A = '198.18.0.1';
const B = '198.18.0.2';

function segment(p: Partial<TcpSegment>): TcpSegment {
  return {
    srcPort: 20000,
    dstPort: 80,
    seq: 0,
    ack: 0,
    flags: SYN,
    window: 65535,
    urgentPointer: 0,
    options: {},
    payload: new Uint8Array(0),
    ...p,
  };
}

/**
 * Host A without a TCP: a raw sender of hand-made segments that records what comes back,
 * the way a SYN flood's spoofed sources never answer.
 */
function rawHostA(sim: Sim) {
  const got: TcpSegment[] = [];
  sim.a.host.registerProtocol(IPPROTO_TCP, {
    receive(d: IpDelivery) {
      got.push(decodeSegment(d.payload, d));
    },
  });
  const send = (s: Partial<TcpSegment>) =>
    sim.a.host.send({
      src: A,
      dst: B,
      protocol: IPPROTO_TCP,
      payload: encodeSegment(segment(s), { src: A, dst: B }),
    });
  return { got, send };
}

describe('listener queues', () => {
  it('SYN queue -> accept queue -> accepted, with the queues in the stats and the trace', async () => {
    const { a, b, run, sim } = tcpSim();
    const notes: string[] = [];
    sim.trace.on((e: TraceEvent) => {
      if (e.host === 'B' && e.summary.startsWith('listen ')) notes.push(e.summary);
    });
    const server = b.createServer({ synCookies: false }, (s: TcpSocket) => s.pipe(s));
    server.listen(80, B, 2);
    server.pauseAccepting();
    await run(once(server, 'listening'));
    const clients = [0, 1, 2, 3, 4].map(() => a.connect({ host: B, port: 80 }));
    await new Promise((r) => setImmediate(r));
    sim.clock.advance(1);
    await new Promise((r) => setImmediate(r));
    // Two SYNs fit the SYN queue, three were dropped; the two handshakes completed.
    expect(server.queues).toMatchObject({ backlog: 2, synQueue: 0, acceptQueue: 2, synDropped: 3 });
    expect(sim.b.host.counters.get('tcp.listen.syn-drop')).toBe(3);
    expect(b.stats.connections).toBe(2);
    // The clients retry at 1 s (RFC 6298 §2.1); the accept queue is still full.
    sim.clock.advance(1_500);
    await new Promise((r) => setImmediate(r));
    expect(server.queues!.acceptQueue).toBe(2);
    expect(sim.b.host.counters.get('tcp.listen.overflow')).toBe(3);
    server.resumeAccepting();
    const replies = clients.map((c, i) => {
      const got = collect(c);
      c.end(`client ${i}`);
      return got;
    });
    const all = await run(Promise.all(replies));
    expect(all.map((r) => r.toString())).toEqual(clients.map((_, i) => `client ${i}`));
    expect(server.queues).toMatchObject({ synQueue: 0, acceptQueue: 0, accepted: 5 });
    const first = notes.filter((n) => n.includes(`:${clients[0]!.localPort} `));
    expect(first.map((n) => n.replace(/ \(syn.*$/, '').replace(/^.*\d+ /, ''))).toEqual([
      'SYN-RECEIVED: into the SYN queue',
      'ESTABLISHED: SYN queue -> accept queue',
      'accepted: accept queue -> application',
    ]);
  });

  it('a full accept queue drops the final ACK of a handshake; the peer retransmits and gets in later', async () => {
    const { a, b, run, sim } = tcpSim();
    const server = b.createServer({ synCookies: false }, (s: TcpSocket) => s.pipe(s));
    server.listen(80, B, 2);
    server.pauseAccepting();
    const c0 = a.connect({ host: B, port: 80 });
    await run(once(c0, 'connect'));
    sim.clock.advance(1);
    expect(server.queues!.acceptQueue).toBe(1);
    const c1 = a.connect({ host: B, port: 80 });
    const c2 = a.connect({ host: B, port: 80 });
    await run(Promise.all([once(c1, 'connect'), once(c2, 'connect')]));
    sim.clock.advance(1);
    // Both SYNs found room in the SYN queue; only one final ACK found room in the accept queue.
    expect(server.queues).toMatchObject({ synQueue: 1, acceptQueue: 2, acceptOverflows: 1 });
    expect(sim.b.host.counters.get('tcp.listen.overflow')).toBe(1);
    const pending = b.connections().filter((c) => c.state === 'SYN-RECEIVED');
    expect(pending.length).toBe(1);
    server.resumeAccepting();
    const got = [c0, c1, c2].map((c, i) => {
      const p = collect(c);
      c.end(`#${i}`);
      return p;
    });
    expect((await run(Promise.all(got))).map(String)).toEqual(['#0', '#1', '#2']);
  });

  it('a SYN flood fills the SYN queue, then SYN cookies answer; state stays bounded and a cookie ACK opens a connection', async () => {
    const sim = new Sim();
    const b = new Tcp(sim.b.host, { synCookieSecret: new Uint8Array(32).fill(7) });
    const { got, send } = rawHostA(sim);
    const accepted: TcpSocket[] = [];
    const server = b.createServer((s: TcpSocket) => accepted.push(s));
    server.listen(80, B, 8);
    const FLOOD = 200;
    for (let i = 0; i < FLOOD; i++) send({ srcPort: 20000 + i, seq: i * 1000, options: { mss: 1460 } });
    sim.clock.advance(1);
    expect(server.queues).toMatchObject({ synQueue: 8, acceptQueue: 0, synCookiesSent: FLOOD - 8 });
    expect(b.stats.connections).toBe(8);
    const synAcks = got.filter((s) => s.flags === (SYN | ACK));
    expect(synAcks.length).toBe(FLOOD);
    // A cookie SYN-ACK offers only what a cookie remembers: the MSS.
    const cookieAck = synAcks.find((s) => s.dstPort === 20100)!;
    expect(cookieAck.options).toEqual({ mss: 1460 });
    expect(cookieAck.ack).toBe(100 * 1000 + 1);
    // Its ISS is the cookie of RFC 4987 §3.6.
    const cookies = new SynCookies(new Uint8Array(32).fill(7));
    expect(
      cookies.validate(
        { addr: B, port: 80 },
        { addr: A, port: 20100 },
        100_000,
        cookieAck.seq,
        sim.clock.now(),
      ),
    ).toBe(1460);

    // A forged ACK is refused with a RST; the true answer to the cookie opens a connection.
    send({ srcPort: 20101, flags: ACK, seq: 101_001, ack: (cookieAck.seq + 77) >>> 0 });
    send({
      srcPort: 20100,
      flags: ACK,
      seq: 100_001,
      ack: (cookieAck.seq + 1) >>> 0,
      payload: new TextEncoder().encode('GET'),
    });
    sim.clock.advance(1);
    await new Promise((r) => setImmediate(r));
    expect(sim.b.host.counters.get('tcp.syncookie.invalid')).toBe(1);
    expect(sim.b.host.counters.get('tcp.syncookie.valid')).toBe(1);
    expect(got.some((s) => s.dstPort === 20101 && s.flags & 0x04)).toBe(true);
    expect(accepted.length).toBe(1);
    const s = accepted[0]!;
    expect(s.remotePort).toBe(20100);
    expect(s.connection!.state).toBe('ESTABLISHED');
    expect(s.connection!.mss).toBe(1460);
    const data = await drive(sim, once<Buffer>(s, 'data'));
    expect(data.toString()).toBe('GET');

    // The spoofed half-open connections retransmit their SYN-ACKs and give up (RFC 9293 §3.8.3).
    sim.clock.advance(200_000);
    expect(server.queues!.synQueue).toBe(0);
    const retransmitted = got.filter((x) => x.flags === (SYN | ACK)).length - FLOOD;
    expect(retransmitted).toBe(8 * 6);
  });

  it('a real client whose SYN meets a full SYN queue connects through a SYN cookie', async () => {
    const { a, b, run, sim } = tcpSim();
    const server = b.createServer((s: TcpSocket) => s.pipe(s));
    server.listen(80, B, 1);
    // A half-open connection from an address that will never answer fills the SYN queue.
    const spoofed = encodeSegment(segment({ srcPort: 999, seq: 1, options: { mss: 1460 } }), {
      src: '198.18.0.77',
      dst: B,
    });
    b.receive(
      ipDelivery({
        version: 4,
        src: '198.18.0.77',
        dst: B,
        protocol: 6,
        ttl: 64,
        payload: spoofed,
        original: spoofed,
      }),
    );
    expect(server.queues!.synQueue).toBe(1);
    const c = a.connect({ host: B, port: 80 });
    const got = collect(c);
    c.end('through a cookie');
    expect((await run(got)).toString()).toBe('through a cookie');
    expect(server.queues).toMatchObject({ synCookiesSent: 1, synCookiesValidated: 1 });
    // Timestamps survive the cookie (and carry window scale and SACK): 1460 - 12 per segment.
    expect(c.connection!.mss).toBe(1448);
    expect(sim.b.host.counters.get('tcp.syncookie.valid')).toBe(1);
  });

  it('a cookie keeps window scale, SACK and timestamps in the low bits of its TSval (RFC 4987 §3.6, as Linux)', async () => {
    const sim = new Sim();
    const b = new Tcp(sim.b.host, { synCookieSecret: new Uint8Array(32).fill(9) });
    const { got, send } = rawHostA(sim);
    const accepted: TcpSocket[] = [];
    b.createServer((s: TcpSocket) => accepted.push(s)).listen(80, B, 1);
    send({ srcPort: 30000, seq: 1, options: { mss: 1460 } }); // fills the SYN queue
    const synOptions = {
      mss: 1460,
      windowScale: 7,
      sackPermitted: true,
      timestamps: { value: 4242, echo: 0 },
    };
    send({ srcPort: 30001, seq: 7000, options: synOptions });
    // A SYN without timestamps: nothing but the MSS can be remembered.
    send({ srcPort: 30002, seq: 9000, options: { mss: 1460, windowScale: 7, sackPermitted: true } });
    sim.clock.advance(1);
    const synAck = got.find((s) => s.dstPort === 30001)!;
    expect(synAck.flags).toBe(SYN | ACK);
    const ts = synAck.options.timestamps!;
    expect(synAck.options).toEqual({ mss: 1460, sackPermitted: true, timestamps: ts, windowScale: 3 });
    expect(ts.echo).toBe(4242);
    expect(ts.value & 0x3f).toBe(7 | 0x10); // shift 7, SACK; ECN bit clear
    expect(SynCookies.optionsFrom(ts.value)).toEqual({ windowScale: 7, sackPermitted: true });
    expect(got.find((s) => s.dstPort === 30002)!.options).toEqual({ mss: 1460 });

    // The client's ACK echoes the TSval; then a segment past a hole, to be SACKed.
    const iss = synAck.seq;
    const ack = (n: number) => ({
      srcPort: 30001,
      flags: ACK,
      ack: (iss + 1) >>> 0,
      window: 512,
      seq: 7001 + n,
    });
    send({ ...ack(0), options: { timestamps: { value: 4250, echo: ts.value } } });
    send({
      ...ack(100),
      options: { timestamps: { value: 4251, echo: ts.value } },
      payload: new Uint8Array(10),
    });
    sim.clock.advance(1);
    await new Promise((r) => setImmediate(r));
    expect(sim.b.host.counters.get('tcp.syncookie.valid')).toBe(1);
    expect(accepted.length).toBe(1);
    const conn = accepted[0]!.connection!;
    expect(conn.mss).toBe(1448); // timestamps on: 1460 - 12
    expect(conn.sndWnd).toBe(512 << 7); // the client's window, scaled by its shift
    const answer = got.filter((s) => s.dstPort === 30001 && s.flags === ACK).at(-1)!;
    expect(answer.options.timestamps!.echo).toBe(4250); // TS.Recent (RFC 7323 §4.3)
    expect(answer.options.sack).toEqual([{ left: 7101, right: 7111 }]);
    expect(answer.window).toBe((256 * 1024) >> 3); // our shift, 3 for 256 KiB
  });

  it('RFC 9293 §3.10.7.2: an ACK or a lone segment to a listener; RSTs to it are dropped quietly', async () => {
    const sim = new Sim();
    const b = new Tcp(sim.b.host);
    const { got, send } = rawHostA(sim);
    b.createServer().listen(80, B);
    send({ flags: ACK, seq: 5, ack: 1234 });
    send({ flags: 0x04, seq: 5 });
    send({ flags: 0, seq: 5, payload: new Uint8Array([1]) });
    sim.clock.advance(1);
    expect(got.length).toBe(1);
    expect(got[0]).toMatchObject({ flags: 0x04, seq: 1234 });
    expect(sim.b.host.counters.get('tcp.listen.bad-ack')).toBe(1);
    expect(sim.b.host.counters.get('tcp.listen.rst')).toBe(1);
    expect(sim.b.host.counters.get('tcp.listen.no-syn')).toBe(1);
  });

  it('a corrupted segment is counted and traced as a checksum drop, and never answered', async () => {
    const sim = new Sim();
    const b = sim.b.tcp;
    const drops: TraceEvent[] = [];
    sim.trace.on((e) => {
      if (e.layer === 'tcp' && e.dir === 'drop') drops.push(e);
    });
    b.createServer().listen(80, B);
    const bytes = encodeSegment(segment({ seq: 1 }), { src: A, dst: B });
    bytes[19]! ^= 0x01; // one bit of the urgent pointer
    b.receive(
      ipDelivery({ version: 4, src: A, dst: B, protocol: 6, ttl: 64, payload: bytes, original: bytes }),
    );
    b.receive(
      ipDelivery({
        version: 4,
        src: A,
        dst: B,
        protocol: 6,
        ttl: 64,
        payload: bytes.subarray(0, 9),
        original: bytes,
      }),
    );
    expect(sim.b.host.counters.get('tcp.drop.checksum')).toBe(1);
    expect(sim.b.host.counters.get('tcp.drop.malformed')).toBe(1);
    expect(sim.b.host.counters.get('tcp.rst.sent')).toBe(0);
    expect(drops.map((d) => d.reason)).toEqual(['tcp.drop.checksum', 'tcp.drop.malformed']);
    b.shutdown();
    expect(b.stats).toEqual({
      connections: 0,
      byState: {},
      listeners: [],
      timersArmed: 0,
      sendBuffered: 0,
      receiveBuffered: 0,
    });
  });

  it('closing a server resets connections still in its queues', async () => {
    const { a, b, run, sim } = tcpSim();
    const server = b.createServer();
    server.listen(80, B);
    server.pauseAccepting();
    const c = a.connect({ host: B, port: 80 });
    await run(once(c, 'connect'));
    sim.clock.advance(1);
    expect(server.queues!.acceptQueue).toBe(1);
    const err = once<Error & { code: string }>(c, 'error');
    c.resume();
    server.close();
    expect((await run(err)).code).toBe('ECONNRESET');
    expect(b.stats.connections).toBe(0);
  });
});

describe('TCP Fast Open (RFC 7413)', () => {
  it('first connection gets a cookie, the next carries data in its SYN', async () => {
    const { a, b, run, sim } = tcpSim();
    const synsOut: TraceEvent[] = [];
    sim.trace.on((e) => {
      if (e.layer === 'tcp' && e.dir === 'out' && e.host === 'A' && e.summary.startsWith('SYN '))
        synsOut.push(e);
    });
    const server = b.createServer({ fastOpen: true }, (s: TcpSocket) => s.pipe(s));
    server.listen(80, B);
    const c1 = a.connect({ host: B, port: 80, fastOpen: true });
    const r1 = collect(c1);
    c1.end('first');
    expect((await run(r1)).toString()).toBe('first');
    expect(a.fastOpenCache.size).toBe(1);
    expect(sim.a.host.counters.get('tcp.fastopen.cookie-cached')).toBe(1);
    const cookie = a.fastOpenCache.get(B)!.cookie;
    expect(cookie.length).toBe(8);
    // The first SYN asked for a cookie (an empty option) and carried nothing.
    expect((synsOut[0]!.fields!.options as { fastOpen?: Uint8Array }).fastOpen).toEqual(new Uint8Array(0));
    expect(synsOut[0]!.fields!.len).toBe(0);

    const c2 = a.connect({ host: B, port: 80, fastOpen: true });
    const r2 = collect(c2);
    c2.end('second');
    expect((await run(r2)).toString()).toBe('second');
    // The second SYN carried the cookie and the data (RFC 7413 §3).
    expect((synsOut[1]!.fields!.options as { fastOpen?: Uint8Array }).fastOpen).toEqual(cookie);
    expect(synsOut[1]!.fields!.len).toBe(6);
    // The server took the data with the SYN: B's ACK of the SYN-ACK covers it.
    expect(sim.b.host.counters.get('tcp.rx')).toBeGreaterThan(0);
  });

  it('a bad cookie: the server ignores the SYN data, sends a fresh cookie, and the data goes again', async () => {
    const { a, b, run } = tcpSim();
    const server = b.createServer({ fastOpen: true }, (s: TcpSocket) => s.pipe(s));
    server.listen(80, B);
    a.fastOpenCache.set(B, { cookie: new Uint8Array(8).fill(1) });
    const c = a.connect({ host: B, port: 80, fastOpen: true });
    const r = collect(c);
    c.end('payload');
    expect((await run(r)).toString()).toBe('payload');
    expect(a.fastOpenCache.get(B)!.cookie).toEqual(b.fastOpenKeys.cookieFor(A));
  });
});

describe('Fast Open cookie rejected (RFC 7413 §4.1.3)', () => {
  it('a server that stopped doing TFO: the client forgets its cookie and asks afresh next time', async () => {
    const { a, b, run, sim } = tcpSim();
    b.createServer((s: TcpSocket) => s.pipe(s)).listen(80, B);
    a.fastOpenCache.set(B, { cookie: new Uint8Array(8).fill(7) });
    const c = a.connect({ host: B, port: 80, fastOpen: true });
    const r = collect(c);
    c.end('payload');
    expect((await run(r)).toString()).toBe('payload');
    expect(a.fastOpenCache.get(B)).toBeUndefined();
    expect(sim.a.host.counters.get('tcp.fastopen.cookie-rejected')).toBe(1);
  });
});

describe('ICMP errors for established connections', () => {
  it('packet too big lowers the MSS; soft errors do not abort; errors outside the window are ignored', async () => {
    const { a, b, run, sim } = tcpSim();
    b.createServer((s: TcpSocket) => s.resume()).listen(80, B);
    const c = a.connect({ host: B, port: 80 });
    await run(once(c, 'connect'));
    const conn = c.connection!;
    expect(conn.mss).toBe(1448);
    c.write(Buffer.alloc(20_000));
    expect(conn.sndMax).not.toBe(conn.sndUna);
    const quoted = (seq: number) => {
      const q = new Uint8Array(8);
      new DataView(q.buffer).setUint16(0, c.localPort!);
      new DataView(q.buffer).setUint16(2, 80);
      new DataView(q.buffer).setUint32(4, seq);
      return q;
    };
    const base = { version: 4 as const, reporter: '198.18.0.254', src: A, dst: B, protocol: 6 };
    const bytes = { srcBytes: parseIp(A), dstBytes: parseIp(B) };
    a.receiveIcmpError({
      ...base,
      ...bytes,
      kind: 'packet-too-big',
      code: 4,
      mtu: 1280,
      quoted: quoted(conn.sndUna),
    });
    expect(conn.mss).toBe(1280 - 40 - 12);
    a.receiveIcmpError({ ...base, ...bytes, kind: 'unreachable', code: 1, quoted: quoted(conn.sndUna) });
    a.receiveIcmpError({ ...base, ...bytes, kind: 'unreachable', code: 3, quoted: quoted(conn.sndUna) });
    a.receiveIcmpError({
      ...base,
      ...bytes,
      kind: 'unreachable',
      code: 3,
      quoted: quoted((conn.sndUna - 5000) >>> 0),
    });
    expect(sim.a.host.counters.get('tcp.icmp.pmtu')).toBe(1);
    expect(sim.a.host.counters.get('tcp.icmp.soft')).toBe(2);
    expect(sim.a.host.counters.get('tcp.icmp.out-of-window')).toBe(1);
    expect(conn.state).toBe('ESTABLISHED');
    const closed = once(c, 'close');
    c.resume();
    c.end();
    await run(closed);
    expect(conn.stats.sendQueued).toBe(0);
    expect(conn.stats.bytesOut).toBeGreaterThanOrEqual(20_000);
  });
});

describe('ACK storms', () => {
  it('two ends that disagree about the sequence space do not answer each other forever (RFC 5961 §5)', async () => {
    const { a, b, run, sim } = tcpSim();
    let server: TcpSocket | undefined;
    b.createServer((s: TcpSocket) => {
      server = s;
      s.resume();
    }).listen(80, B);
    const c = a.connect({ host: B, port: 80 });
    c.on('error', () => {});
    await run(once(c, 'connect'));
    sim.clock.advance(100);
    const sconn = server!.connection!;
    // A byte "from A" that A never sent: B now acknowledges one byte past A's SND.NXT.
    const forged = encodeSegment(
      {
        srcPort: c.localPort!,
        dstPort: 80,
        seq: sconn.rcvNxt,
        ack: sconn.sndUna,
        flags: ACK,
        window: 1000,
        urgentPointer: 0,
        options: { timestamps: { value: 0x7fffffff, echo: 0 } },
        payload: new Uint8Array([0x58]),
      },
      { src: A, dst: B },
    );
    b.receive(
      ipDelivery({ version: 4, src: A, dst: B, protocol: 6, ttl: 64, payload: forged, original: forged }),
    );
    // Without a limit, A's "ACK of unsent data" answer and B's "unacceptable segment" answer
    // would ping-pong at one instant and advance() would never return.
    sim.clock.advance(2_000);
    const sent = sim.a.host.counters.get('tcp.tx') + sim.b.host.counters.get('tcp.tx');
    expect(sent).toBeLessThan(60);
    expect(sim.clock.now()).toBeGreaterThan(2_000);
  });
});
