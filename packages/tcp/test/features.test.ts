import { utf8 } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { TcpConnection } from '../src/connection.ts';
import { A, B, bytes, client, deliver, established, kinds, lines } from './scenario.ts';

const COOKIE = utf8('cookie-8');
const tfoServer = (valid = true) => ({
  validate: (c: Uint8Array) => valid && c.length === COOKIE.length && c.every((x, i) => x === COOKIE[i]),
  generate: () => COOKIE,
});
const serverOpts = (valid = true) => ({
  local: B,
  remote: A,
  iss: 5000,
  timestamps: false,
  receiveBuffer: 65535,
  fastOpenServer: tfoServer(valid),
});

describe('TCP Fast Open (RFC 7413)', () => {
  it('a client without a cookie asks for one; the server puts it in the SYN-ACK', () => {
    const a = client({ fastOpen: {} });
    const syn = a.open(0);
    expect(lines(syn)).toEqual(['SYN seq=1000 win=65535 mss=1460 ws=0 sack tfo=req']);
    const { conn: b, output } = TcpConnection.accept(syn.segments[0]!, serverOpts(), 1);
    expect(lines(output)).toEqual(['SYN,ACK seq=5000 ack=1001 win=65535 mss=1460 ws=0 sack tfo=8B']);
    const done = deliver(a, output, 2);
    expect(kinds(done)).toEqual(['fastopen-cookie', 'connected']);
    expect(done.events[0]).toEqual({ type: 'fastopen-cookie', cookie: COOKIE });
    expect(b.state).toBe('SYN-RECEIVED');
  });

  it('with a valid cookie the data rides in the SYN and the server can read it before the handshake ends', () => {
    const a = client({ fastOpen: { cookie: COOKIE } });
    const syn = a.open(0, utf8('GET / HTTP/1.1\r\n\r\n'));
    expect(lines(syn)).toEqual(['SYN seq=1000 win=65535 len=18 mss=1460 ws=0 sack tfo=8B']);
    const { conn: b, output } = TcpConnection.accept(syn.segments[0]!, serverOpts(), 1);
    expect(b.state).toBe('SYN-RECEIVED');
    expect(kinds(output)).toEqual(['data-readable']);
    expect(lines(output)).toEqual(['SYN,ACK seq=5000 ack=1019 win=65517 mss=1460 ws=0 sack']);
    expect(b.read(1).data).toEqual(utf8('GET / HTTP/1.1\r\n\r\n'));
    const ack = deliver(a, output, 2);
    expect(lines(ack)).toEqual(['ACK seq=1019 ack=5001 win=65535']);
    expect(a.stats.sndUna).toBe(1019);
  });

  it('when the server acknowledges only the SYN, the client sends the data again after the handshake', () => {
    const a = client({ fastOpen: { cookie: utf8('stale-ck') } });
    const syn = a.open(0, utf8('hello'));
    const { conn: b, output } = TcpConnection.accept(syn.segments[0]!, serverOpts(), 1);
    // Invalid cookie: data ignored, only the SYN acknowledged, a fresh cookie offered.
    expect(lines(output)).toEqual(['SYN,ACK seq=5000 ack=1001 win=65535 mss=1460 ws=0 sack tfo=8B']);
    expect(b.readable).toBe(0);
    const resend = deliver(a, output, 2);
    expect(kinds(resend)).toEqual(['fastopen-cookie', 'connected']);
    expect(lines(resend)).toEqual(['PSH,ACK seq=1001 ack=5001 win=65535 len=5']);
    deliver(b, resend, 3);
    expect(b.read(4).data).toEqual(utf8('hello'));
  });

  it('a server without TFO ignores SYN data (acks only the SYN); the client drops the cookie (RFC 7413 §4.1.3)', () => {
    const a = client({ fastOpen: { cookie: COOKIE } });
    const syn = a.open(0, utf8('hi'));
    const { conn: b, output } = TcpConnection.accept(
      syn.segments[0]!,
      { ...serverOpts(), fastOpenServer: undefined },
      1,
    );
    expect(lines(output)).toEqual(['SYN,ACK seq=5000 ack=1001 win=65535 mss=1460 ws=0 sack']);
    // No data taken and no fresh cookie: the cookie is worthless to this server.
    const resend = deliver(a, output, 2);
    expect(kinds(resend)).toEqual(['fastopen-rejected', 'connected']);
    expect(lines(resend)).toEqual(['PSH,ACK seq=1001 ack=5001 win=65535 len=2']);
    deliver(b, resend, 3);
    expect(b.read(4).data).toEqual(utf8('hi'));
  });

  it('keeps the cookie when the SYN carrying it was lost: the retransmitted SYN had no cookie', () => {
    const a = client({ fastOpen: { cookie: COOKIE } });
    a.open(0, utf8('hi'));
    const again = a.onTimeout(a.nextTimeout()!);
    expect(lines(again)).toEqual(['SYN seq=1000 win=65535 mss=1460 ws=0 sack']);
    const { output } = TcpConnection.accept(again.segments[0]!, serverOpts(), 1001);
    expect(kinds(deliver(a, output, 1002))).toEqual(['connected']);
  });
});

describe('keepalive (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6)', () => {
  it('is off by default', () => {
    const { a } = established();
    expect(a.nextTimeout()).toBeUndefined();
  });

  it('probes after the idle time, is satisfied by an answer, and gives up after `count` silent probes', () => {
    const { a, b } = established({ keepalive: { idle: 10_000, interval: 1000, count: 3 } });
    expect(a.nextTimeout()).toBe(10_000);
    const probe = a.onTimeout(10_000);
    expect(lines(probe)).toEqual(['ACK seq=1000 ack=5001 win=65535']);
    const answer = deliver(b, probe, 10_001);
    expect(lines(answer)).toEqual(['ACK seq=5001 ack=1001 win=65535']);
    deliver(a, answer, 10_002);
    expect(a.nextTimeout()).toBe(20_002);
    // Now the peer is gone: three probes a second apart, then ETIMEDOUT.
    const times: number[] = [];
    let out = a.onTimeout(20_002);
    times.push(20_002);
    for (let i = 0; i < 3; i++) {
      const t = a.nextTimeout()!;
      times.push(t);
      out = a.onTimeout(t);
    }
    expect(times).toEqual([20_002, 21_002, 22_002, 23_002]);
    expect(kinds(out)).toEqual(['error:ETIMEDOUT', 'closed']);
    expect(a.stats.keepalivesSent).toBe(4);
  });
});

describe('out-of-order data cap', () => {
  it('holds out-of-order bytes up to the cap and drops (and counts) what does not fit', () => {
    const { a, b } = established({ noDelay: true }, { maxOutOfOrder: 3000 });
    const segs = a.send(bytes(3 * 1460), 0).segments;
    expect(segs.length).toBe(3);
    // The first is lost. The second is held (1460 <= 3000); the third would make 2920
    // (fits); a fourth beyond the cap is dropped.
    b.receive(segs[1]!, 1);
    b.receive(segs[2]!, 1);
    expect(b.stats.outOfOrderBytes).toBe(2920);
    const extra = { ...segs[2]!, seq: segs[2]!.seq + 1460, payload: bytes(1000) };
    const out = b.receive(extra, 2);
    expect(b.stats.outOfOrderDropped).toBe(1);
    expect(b.stats.outOfOrderBytes).toBe(2920);
    // It still ACKs (with what it holds) so the sender learns.
    expect(lines(out)).toEqual(['ACK seq=5001 ack=1001 win=65535 sack=2461-5381']);
    b.receive(segs[0]!, 3);
    expect(b.readable).toBe(3 * 1460);
    expect(b.stats.outOfOrderBytes).toBe(0);
  });
});

describe('MSS (RFC 9293 §3.7.1)', () => {
  it('shrinks to a smaller path MTU and resends what was too big (RFC 8201 §4)', () => {
    const { a } = established();
    const sent = a.send(bytes(2920), 0);
    expect(sent.segments.map((x) => x.payload.length)).toEqual([1460, 1460]);
    const again = a.setMss(1240, 5);
    expect(lines(again)).toEqual([
      'ACK seq=1001 ack=5001 win=65535 len=1240',
      'ACK seq=2241 ack=5001 win=65535 len=1240',
      'PSH,ACK seq=3481 ack=5001 win=65535 len=440',
    ]);
    expect(a.stats.mss).toBe(1240);
    expect(a.setMss(1400, 6).segments).toEqual([]); // never raised
    expect(a.stats.mss).toBe(1240);
  });

  it('toggles Nagle and keepalive on a live connection', () => {
    const { a } = established();
    a.send(bytes(10), 0);
    expect(a.send(bytes(10), 1).segments).toEqual([]);
    a.setNoDelay(true);
    expect(lines(a.send(bytes(10), 2))).toEqual(['PSH,ACK seq=1011 ack=5001 win=65535 len=20']);
    a.setKeepalive({ idle: 5000 }, 3);
    const { a: idle } = established();
    idle.setKeepalive({ idle: 5000, interval: 100, count: 1 }, 3);
    expect(idle.nextTimeout()).toBe(5003);
    idle.setKeepalive(false, 4);
    expect(idle.nextTimeout()).toBeUndefined();
  });

  it('sends segments no larger than the smaller MSS, less the timestamp option', () => {
    const { a } = established({ mss: 1460, timestamps: true }, { mss: 1220, timestamps: true });
    expect(a.stats.mss).toBe(1220 - 12);
    const segs = a.send(bytes(5000), 0).segments;
    expect(segs.map((s) => s.payload.length)).toEqual([1208, 1208, 1208]);
  });

  it('leaves out SACK blocks that would push a full-sized segment past the MSS', () => {
    // RFC 9293 §3.7.1: options count against the MSS. B's first segment is lost, its second
    // reaches A out of order, so A has a SACK block to report while it sends data itself.
    const { a, b } = established({ noDelay: true }, { noDelay: true });
    const fromB = b.send(bytes(2920, 0x62), 0).segments;
    expect(fromB).toHaveLength(2);
    const dupAck = a.receive(fromB[1]!, 1);
    expect(dupAck.segments[0]!.options.sack).toEqual([{ left: 6461, right: 7921 }]);
    // A full-sized segment has no room: no blocks (20 + 1460 bytes on the wire).
    const full = a.send(bytes(1460), 2).segments;
    expect(full.map((x) => x.payload.length)).toEqual([1460]);
    expect(full[0]!.options.sack).toBeUndefined();
    // A smaller one has room for the block again (4 + 8 bytes of option).
    const small = a.send(bytes(1000), 3).segments;
    expect(small[0]!.options.sack).toEqual([{ left: 6461, right: 7921 }]);
  });

  it('assumes 536 (IPv4) when the peer sends no MSS option', () => {
    const a = client();
    a.open(0);
    a.receive(
      {
        srcPort: 80,
        dstPort: 40000,
        seq: 5000,
        ack: 1001,
        flags: 0x12,
        window: 65535,
        urgentPointer: 0,
        options: {},
        payload: new Uint8Array(0),
      },
      1,
    );
    expect(a.stats.mss).toBe(536);
  });
});

describe('send buffer marks', () => {
  it("emits 'writable' once the queue drains to the low-water mark after passing the high one", () => {
    const { a, b } = established({ sendHighWater: 2000, sendLowWater: 1000, noDelay: true });
    const out = a.send(bytes(2920), 0);
    expect(a.sendQueued).toBe(2920);
    const ack = deliver(b, out, 1); // two segments: ACK at once
    const ev = deliver(a, ack, 2);
    expect(a.sendQueued).toBe(0);
    expect(kinds(ev)).toEqual(['writable', 'acked']);
  });
});

describe('SYN-RECEIVED corners (RFC 9293 §3.10.4, §3.10.7.4)', () => {
  it('a close in SYN-RECEIVED sends the FIN once the handshake completes', () => {
    const a = client();
    const syn = a.open(0).segments[0]!;
    const { conn: b, output } = TcpConnection.accept(
      syn,
      { local: B, remote: A, iss: 5000, timestamps: false },
      1,
    );
    expect(b.close(2).segments).toEqual([]);
    const ack = deliver(a, output, 3);
    const fin = deliver(b, ack, 4);
    expect(b.state).toBe('FIN-WAIT-1');
    expect(lines(fin)).toEqual(['FIN,ACK seq=5001 ack=1001 win=32768']); // 256 KiB >> 3
  });

  it('a RST at RCV.NXT in SYN-RECEIVED of a passive open just closes it (the listener stays)', () => {
    const a = client();
    const syn = a.open(0).segments[0]!;
    const { conn: b } = TcpConnection.accept(syn, { local: B, remote: A, iss: 5000, timestamps: false }, 1);
    const rst = { ...syn, flags: 0x04, seq: 1001, options: {} };
    expect(kinds(b.receive(rst, 2))).toEqual(['closed']);
  });
});
