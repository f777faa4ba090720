import { IPPROTO_TCP, type IpDelivery, parseIp } from '@stepwire/ip';
import { Counters, Prng, TraceBus } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import {
  ACK,
  describeSegment,
  encodeSegment,
  FIN,
  RST,
  SYN,
  type Tcb,
  type TcpConnectionOptions,
  TcpEndpoint,
  type TcpEvent,
  type TcpListener,
  type TcpSegment,
} from '../src/index.ts';

// The sans-I/O TcpEndpoint alone: no clock, no timer, no IP stack. Every call gets an
// explicit `now`; what it sends, the wake-ups it asks for and the accept notices it gives
// are recorded by the sink below.

const A = '198.18.0.1';
const B = '198.18.0.2';

interface Sent {
  src: string;
  dst: string;
  seg: TcpSegment;
}

function endpoint(name: string, addr: string, connection: Partial<TcpConnectionOptions> = {}) {
  const sent: Sent[] = [];
  const wakes: number[] = [];
  const ready: TcpListener[] = [];
  const counters = new Counters();
  const ip = {
    name,
    counters,
    trace: new TraceBus(),
    prng: new Prng(7),
    isLocalAddress: (a: string) => a === addr,
    sourceFor: () => addr,
    mtuFor: () => 1500,
  };
  const ep = new TcpEndpoint(
    ip,
    {
      transmit: (src, dst, seg) => sent.push({ src, dst, seg }),
      wake: (_tcb, at) => wakes.push(at),
      cancelWake: () => {},
      acceptReady: (l) => ready.push(l),
    },
    {
      connection,
      isnSecret: new Uint8Array(16).fill(1),
      synCookieSecret: new Uint8Array(16).fill(2),
    },
  );
  /** Take what was sent since the last call. */
  const take = () => sent.splice(0);
  return { ep, counters, wakes, ready, take };
}

function segment(p: Partial<TcpSegment>): TcpSegment {
  return {
    srcPort: 40000,
    dstPort: 80,
    seq: 1000,
    ack: 0,
    flags: SYN,
    window: 65535,
    urgentPointer: 0,
    options: { mss: 1460 },
    payload: new Uint8Array(0),
    ...p,
  };
}

function delivery(src: string, dst: string, seg: TcpSegment): IpDelivery {
  return {
    version: 4,
    src,
    dst,
    protocol: IPPROTO_TCP,
    ttl: 64,
    srcBytes: parseIp(src),
    dstBytes: parseIp(dst),
    payload: encodeSegment(seg, { src, dst }),
    original: new Uint8Array(0),
  };
}

const fromA = (seg: Partial<TcpSegment>) => delivery(A, B, segment(seg));
const flagsOf = (s: Sent) => s.seg.flags & (SYN | ACK | RST | FIN);

/** Deliver each side's segments to the other until both are quiet (bounded). */
function pump(x: ReturnType<typeof endpoint>, y: ReturnType<typeof endpoint>, now: number): string[] {
  const ladder: string[] = [];
  for (let round = 0; round < 50; round++) {
    const fromX = x.take();
    const fromY = y.take();
    if (fromX.length === 0 && fromY.length === 0) return ladder;
    for (const s of fromX) {
      ladder.push(`${s.src} > ${describeSegment(s.seg)}`);
      y.ep.receive(delivery(s.src, s.dst, s.seg), now);
    }
    for (const s of fromY) {
      ladder.push(`${s.src} > ${describeSegment(s.seg)}`);
      x.ep.receive(delivery(s.src, s.dst, s.seg), now);
    }
  }
  throw new Error('pump: no quiet after 50 rounds');
}

const owner = (events: TcpEvent[]) => ({ onTcpEvent: (e: TcpEvent) => events.push(e) });

describe('TcpEndpoint (sans-I/O)', () => {
  it('a SYN to a listener gets a SYN-ACK; the final ACK moves it to the accept queue (RFC 9293 §3.10.7.2)', () => {
    const b = endpoint('B', B);
    const l = b.ep.listen({ address: '0.0.0.0', port: 80 }, 0);
    if (!('acceptQueue' in l)) throw l;
    b.ep.receive(fromA({ seq: 1000 }), 5);
    const out = b.take();
    expect(out).toHaveLength(1);
    const synAck = out[0] as Sent;
    expect(flagsOf(synAck)).toBe(SYN | ACK);
    expect(synAck.seg.ack).toBe(1001);
    expect([synAck.src, synAck.dst, synAck.seg.srcPort, synAck.seg.dstPort]).toEqual([B, A, 80, 40000]);
    expect(l.stats).toMatchObject({ synQueue: 1, acceptQueue: 0 });
    // The SYN-ACK's retransmission timer is a deadline handed to the driver (RFC 6298 §2.1: 1 s).
    expect(b.wakes).toEqual([1005]);
    expect(b.ready).toEqual([]);
    b.ep.receive(fromA({ seq: 1001, ack: (synAck.seg.seq + 1) >>> 0, flags: ACK, options: {} }), 6);
    expect(b.take()).toEqual([]);
    expect(b.ready).toEqual([l]);
    expect(l.stats).toMatchObject({ synQueue: 0, acceptQueue: 1 });
    const tcb = b.ep.accept(l, 7) as Tcb;
    expect(tcb.conn.state).toBe('ESTABLISHED');
    expect(tcb.remote).toEqual({ addr: A, port: 40000 });
    expect(l.stats.accepted).toBe(1);
  });

  it('a segment for no connection and no listener gets a RST (RFC 9293 §3.10.7.1)', () => {
    const b = endpoint('B', B);
    b.ep.receive(fromA({ seq: 1000 }), 0);
    const [rst] = b.take();
    expect(rst && flagsOf(rst)).toBe(RST | ACK);
    expect(rst?.seg.ack).toBe(1001);
    expect(b.counters.get('tcp.drop.no-port')).toBe(1);
    // A RST is never answered.
    b.ep.receive(fromA({ flags: RST, seq: 5 }), 0);
    expect(b.take()).toEqual([]);
  });

  it('a SYN flood past the backlog gets SYN cookies, and a returned cookie rebuilds the connection (RFC 4987 §3.6)', () => {
    const b = endpoint('B', B);
    const l = b.ep.listen({ address: B, port: 80, backlog: 4 }, 0);
    if (!('acceptQueue' in l)) throw l;
    const answers: Sent[] = [];
    for (let i = 0; i < 10; i++) {
      b.ep.receive(fromA({ srcPort: 50000 + i, seq: 7000 * i }), 10);
      answers.push(...b.take());
    }
    // Every SYN is answered; only the first four hold state.
    expect(answers.map(flagsOf)).toEqual(Array(10).fill(SYN | ACK));
    expect(b.ep.conns.size).toBe(4);
    expect(l.stats).toMatchObject({ synQueue: 4, synCookiesSent: 6, synDropped: 0 });
    expect(b.counters.get('tcp.syncookie.sent')).toBe(6);

    // A forged ACK (a wrong cookie) is refused with a RST.
    const cookieAnswer = answers[9] as Sent;
    b.ep.receive(
      fromA({ srcPort: 50009, seq: 63001, ack: (cookieAnswer.seg.seq + 2) >>> 0, flags: ACK, options: {} }),
      20,
    );
    expect(b.take().map(flagsOf)).toEqual([RST]);
    expect(l.stats.synCookiesRejected).toBe(1);

    // The right one builds the connection straight into the accept queue.
    b.ep.receive(
      fromA({ srcPort: 50009, seq: 63001, ack: (cookieAnswer.seg.seq + 1) >>> 0, flags: ACK, options: {} }),
      20,
    );
    expect(b.take()).toEqual([]);
    expect(l.stats).toMatchObject({ synCookiesValidated: 1, acceptQueue: 1, synQueue: 4 });
    const tcb = b.ep.accept(l, 21) as Tcb;
    expect(tcb.remote.port).toBe(50009);
    expect(tcb.conn.state).toBe('ESTABLISHED');
    expect(tcb.conn.sndUna).toBe((cookieAnswer.seg.seq + 1) >>> 0);
  });

  it('without SYN cookies a full SYN queue drops the SYN (RFC 4987 §3.1)', () => {
    const b = endpoint('B', B);
    const l = b.ep.listen({ address: B, port: 80, backlog: 2, synCookies: false }, 0);
    if (!('acceptQueue' in l)) throw l;
    for (let i = 0; i < 5; i++) b.ep.receive(fromA({ srcPort: 50000 + i }), 0);
    expect(b.take()).toHaveLength(2);
    expect(l.stats).toMatchObject({ synQueue: 2, synDropped: 3 });
  });

  it('a connection between two endpoints opens and closes, and TIME-WAIT gives way to a newer SYN (RFC 6191)', () => {
    const a = endpoint('A', A);
    const b = endpoint('B', B);
    const l = b.ep.listen({ address: B, port: 80 }, 0);
    if (!('acceptQueue' in l)) throw l;
    const aEvents: TcpEvent[] = [];
    const client = a.ep.open(owner(aEvents), { addr: B, port: 80 }, { localPort: 40000 }, 0);
    if (!('conn' in client)) throw client;
    const open = pump(a, b, 0);
    expect(open.map((x) => x.split(' ')[2])).toEqual(['SYN', 'SYN,ACK', 'ACK']);
    expect(aEvents.map((e) => e.type)).toContain('connected');
    const server = b.ep.accept(l, 1) as Tcb;
    const bEvents: TcpEvent[] = [];
    server.owner = owner(bEvents);
    // B closes first, so B holds TIME-WAIT (RFC 9293 §3.10.4, §3.10.7.4).
    server.handle(server.conn.close(2), 2);
    pump(a, b, 2);
    client.handle(client.conn.close(3), 3);
    pump(a, b, 3);
    expect(server.conn.state).toBe('TIME-WAIT');
    expect(b.ep.stats.byState).toEqual({ 'TIME-WAIT': 1 });
    // A new SYN on the same 4-tuple beyond the old RCV.NXT opens a new incarnation.
    b.ep.receive(fromA({ seq: (server.conn.rcvNxt + 100_000) >>> 0 }), 4);
    expect(b.counters.get('tcp.timewait.reuse')).toBe(1);
    expect(server.closed).toBe(true);
    expect(b.take().map(flagsOf)).toEqual([SYN | ACK]);
    expect(b.ep.stats.byState).toEqual({ 'SYN-RECEIVED': 1 });
  });

  it('Fast Open: the first SYN gets a cookie into the cache, the second carries data the listener hands over before the handshake ends (RFC 7413 §4.1, §4.2)', () => {
    const a = endpoint('A', A);
    const b = endpoint('B', B);
    const l = b.ep.listen({ address: B, port: 80, fastOpen: true }, 0);
    if (!('acceptQueue' in l)) throw l;
    const hello = new TextEncoder().encode('hello');
    let asked = 0;
    const takeSynData = () => {
      asked++;
      return hello;
    };
    const first = a.ep.open(
      owner([]),
      { addr: B, port: 80 },
      { localPort: 40000, fastOpen: true, takeSynData },
      0,
    );
    if (!('conn' in first)) throw first;
    // No cookie yet: the SYN asks for one (an empty option) and carries no data.
    const [syn1] = a.take();
    expect(syn1?.seg.options.fastOpen).toEqual(new Uint8Array(0));
    expect(syn1?.seg.payload.length).toBe(0);
    expect(asked).toBe(0);
    b.ep.receive(delivery(A, B, (syn1 as Sent).seg), 0);
    pump(a, b, 0);
    expect(a.counters.get('tcp.fastopen.cookie-cached')).toBe(1);
    const cookie = a.ep.fastOpenCache.get(B)?.cookie;
    expect(cookie?.length).toBeGreaterThan(0);
    b.ep.accept(l, 1);

    const second = a.ep.open(
      owner([]),
      { addr: B, port: 80 },
      { localPort: 40001, fastOpen: true, takeSynData },
      2,
    );
    if (!('conn' in second)) throw second;
    const [syn2] = a.take();
    expect(asked).toBe(1);
    expect(syn2?.seg.options.fastOpen).toEqual(cookie);
    expect(new TextDecoder().decode(syn2?.seg.payload)).toBe('hello');
    b.ep.receive(delivery(A, B, (syn2 as Sent).seg), 2);
    // The data is readable at once: the connection is in the accept queue while still SYN-RECEIVED.
    expect(l.stats).toMatchObject({ synQueue: 0, acceptQueue: 1 });
    const tcb = b.ep.accept(l, 2) as Tcb;
    expect(tcb.conn.state).toBe('SYN-RECEIVED');
    expect(tcb.conn.readable).toBe(5);
  });

  describe('the RFC 5961 §7 ACK limit is applied once, in the connection', () => {
    function established(connection: Partial<TcpConnectionOptions>) {
      // No timestamps: the forged segments below would otherwise be dropped by PAWS rules
      // (RFC 7323 §3.2) before the sequence check.
      const a = endpoint('A', A, { timestamps: false });
      const b = endpoint('B', B, { timestamps: false, ...connection });
      const l = b.ep.listen({ address: B, port: 80 }, 0);
      if (!('acceptQueue' in l)) throw l;
      const client = a.ep.open(owner([]), { addr: B, port: 80 }, { localPort: 40000 }, 0);
      if (!('conn' in client)) throw client;
      pump(a, b, 0);
      const server = b.ep.accept(l, 0) as Tcb;
      server.owner = owner([]);
      return { b, server, client };
    }

    it('in-window RSTs draw challenge ACKs up to challengeAckLimit per second, no fewer (RFC 5961 §3.2, §7)', () => {
      const { b, server, client } = established({ challengeAckLimit: 3 });
      const rcvNxt = server.conn.rcvNxt;
      for (let i = 1; i <= 5; i++) {
        b.ep.receive(fromA({ flags: RST, seq: (rcvNxt + 100 * i) >>> 0, ack: 0, options: {} }), 100);
      }
      const acks = b.take();
      expect(acks.map(flagsOf)).toEqual([ACK, ACK, ACK]);
      expect(acks.every((s) => s.seg.ack === rcvNxt && s.seg.seq === client.conn.rcvNxt)).toBe(true);
      expect(server.conn.stats.challengeAcks).toBe(3);
      expect(server.conn.state).toBe('ESTABLISHED');
      // A second later the window is open again.
      b.ep.receive(fromA({ flags: RST, seq: (rcvNxt + 1) >>> 0, ack: 0, options: {} }), 1100);
      expect(b.take().map(flagsOf)).toEqual([ACK]);
    });

    it('unacceptable segments without data get one ACK per invalidAckInterval, counted by the connection (RFC 5961 §7)', () => {
      const { b, server } = established({});
      const far = (server.conn.rcvNxt + 1_000_000) >>> 0;
      for (let i = 0; i < 4; i++) {
        b.ep.receive(fromA({ flags: ACK, seq: far, ack: server.conn.sndNxt, options: {} }), 200);
      }
      expect(b.take().map(flagsOf)).toEqual([ACK]);
      expect(server.conn.stats.oowAcksSuppressed).toBe(3);
    });

    it('with the connection limit off, every unacceptable segment is answered: the endpoint edits nothing', () => {
      const { b, server } = established({ invalidAckInterval: 0 });
      const far = (server.conn.rcvNxt + 1_000_000) >>> 0;
      for (let i = 0; i < 4; i++) {
        b.ep.receive(fromA({ flags: ACK, seq: far, ack: server.conn.sndNxt, options: {} }), 200);
      }
      expect(b.take().map(flagsOf)).toEqual([ACK, ACK, ACK, ACK]);
      expect(server.conn.stats.oowAcksSuppressed).toBe(0);
    });
  });

  it('an orphan in FIN-WAIT-2 asks to be woken at the FIN timeout and is forgotten then (Linux tcp_fin_timeout)', () => {
    const a = endpoint('A', A);
    const b = endpoint('B', B);
    const l = b.ep.listen({ address: B, port: 80 }, 0);
    if (!('acceptQueue' in l)) throw l;
    const client = a.ep.open(owner([]), { addr: B, port: 80 }, { localPort: 40000 }, 0);
    if (!('conn' in client)) throw client;
    pump(a, b, 0);
    a.ep.orphan(client, 10);
    client.handle(client.conn.close(10), 10);
    pump(a, b, 10);
    expect(client.conn.state).toBe('FIN-WAIT-2');
    // Run the endpoint from deadline to deadline (its own timers first), as a one-timer driver would.
    let at = 10;
    for (let i = 0; i < 20 && !client.closed; i++) {
      at = a.ep.nextTimeout() ?? Number.NaN;
      a.ep.runDue(at);
      a.take();
    }
    expect(client.closed).toBe(true);
    expect(at).toBe(60_010);
    expect(a.ep.nextTimeout()).toBeUndefined();
    expect(a.counters.get('tcp.orphan.fin-timeout')).toBe(1);
    expect(a.ep.conns.size).toBe(0);
  });
});
