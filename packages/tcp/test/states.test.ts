import { TraceBus, type TraceEvent } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { resetFor, TcpConnection } from '../src/connection.ts';
import { ACK, RST, SYN } from '../src/segment.ts';
import { A, B, bytes, client, deliver, established, kinds, lines, server } from './scenario.ts';

// Each scenario reads like the ladder diagrams of RFC 9293 §3.5-§3.6: client A (ISS 1000)
// and server B (ISS 5000), timestamps off, a 65535-byte receive buffer (window scale 0).

describe('connection establishment (RFC 9293 §3.5)', () => {
  it('three-way handshake: CLOSED -> SYN-SENT -> ESTABLISHED and LISTEN -> SYN-RECEIVED -> ESTABLISHED', () => {
    const a = client();
    const b = server();
    expect(a.state).toBe('CLOSED');
    b.listen(0);
    expect(b.state).toBe('LISTEN');
    const syn = a.open(0);
    expect(a.state).toBe('SYN-SENT');
    expect(lines(syn)).toEqual(['SYN seq=1000 win=65535 mss=1460 ws=0 sack']);
    const synAck = deliver(b, syn, 1);
    expect(b.state).toBe('SYN-RECEIVED');
    expect(lines(synAck)).toEqual(['SYN,ACK seq=5000 ack=1001 win=65535 mss=1460 ws=0 sack']);
    const ack = deliver(a, synAck, 2);
    expect(a.state).toBe('ESTABLISHED');
    expect(kinds(ack)).toEqual(['connected']);
    expect(lines(ack)).toEqual(['ACK seq=1001 ack=5001 win=65535']);
    const done = deliver(b, ack, 3);
    expect(b.state).toBe('ESTABLISHED');
    expect(kinds(done)).toEqual(['connected']);
    expect(lines(done)).toEqual([]);
  });

  it('passive open through TcpConnection.accept, as a listener does', () => {
    const a = client();
    const syn = a.open(0).segments[0]!;
    const { conn, output } = TcpConnection.accept(
      syn,
      { local: B, remote: A, iss: 5000, timestamps: false },
      1,
    );
    expect(conn.state).toBe('SYN-RECEIVED');
    expect(lines(output)).toEqual(['SYN,ACK seq=5000 ack=1001 win=65535 mss=1460 ws=3 sack']);
  });

  it('simultaneous open: SYNs cross, both go SYN-SENT -> SYN-RECEIVED -> ESTABLISHED (RFC 9293 Figure 8)', () => {
    const a = client();
    const b = new TcpConnection({ local: B, remote: A, iss: 5000, timestamps: false, receiveBuffer: 65535 });
    const synA = a.open(0);
    const synB = b.open(0);
    expect(lines(synB)).toEqual(['SYN seq=5000 win=65535 mss=1460 ws=0 sack']);
    const aAns = deliver(a, synB, 1);
    const bAns = deliver(b, synA, 1);
    expect(a.state).toBe('SYN-RECEIVED');
    expect(b.state).toBe('SYN-RECEIVED');
    expect(lines(aAns)).toEqual(['SYN,ACK seq=1000 ack=5001 win=65535 mss=1460 ws=0 sack']);
    expect(lines(bAns)).toEqual(['SYN,ACK seq=5000 ack=1001 win=65535 mss=1460 ws=0 sack']);
    const aDone = deliver(a, bAns, 2);
    const bDone = deliver(b, aAns, 2);
    expect(a.state).toBe('ESTABLISHED');
    expect(b.state).toBe('ESTABLISHED');
    expect(kinds(aDone)).toEqual(['connected']);
    expect(kinds(bDone)).toEqual(['connected']);
  });

  it('a RST answering the SYN refuses the connection (RFC 9293 §3.10.7.3)', () => {
    const a = client();
    const syn = a.open(0).segments[0]!;
    const rst = resetFor(syn)!;
    expect(lines([rst])).toEqual(['RST,ACK seq=0 ack=1001 win=0']);
    const out = a.receive({ ...rst, srcPort: B.port, dstPort: A.port }, 1);
    expect(kinds(out)).toEqual(['error:ECONNREFUSED', 'closed']);
    expect(a.state).toBe('CLOSED');
  });

  it('a SYN-ACK with an unacceptable ACK is answered with RST and dropped', () => {
    const a = client();
    a.open(0);
    const out = a.receive(
      {
        srcPort: 80,
        dstPort: 40000,
        seq: 9,
        ack: 777,
        flags: SYN | ACK,
        window: 100,
        urgentPointer: 0,
        options: {},
        payload: new Uint8Array(0),
      },
      1,
    );
    expect(lines(out)).toEqual(['RST seq=777 win=0']);
    expect(a.state).toBe('SYN-SENT');
  });

  it('a duplicate SYN in SYN-RECEIVED gets the SYN-ACK again', () => {
    const a = client();
    const b = server();
    b.listen(0);
    const syn = a.open(0);
    deliver(b, syn, 1);
    expect(lines(deliver(b, syn, 2))).toEqual(['SYN,ACK seq=5000 ack=1001 win=65535 mss=1460 ws=0 sack']);
  });

  it('the SYN is retransmitted with RTO back-off and the attempt ends in ETIMEDOUT', () => {
    const a = client({ synRetries: 3 });
    a.open(0);
    const times: number[] = [];
    let out = a.onTimeout(0);
    expect(out.segments).toEqual([]);
    for (let i = 0; i < 4; i++) {
      const at = a.nextTimeout()!;
      times.push(at);
      out = a.onTimeout(at);
      if (i < 3) expect(lines(out)).toEqual(['SYN seq=1000 win=65535 mss=1460 ws=0 sack']);
    }
    // RFC 6298 §2.1 initial RTO 1 s, §5.5 doubled at each expiry.
    expect(times).toEqual([1000, 3000, 7000, 15000]);
    expect(kinds(out)).toEqual(['error:ETIMEDOUT', 'closed']);
  });

  it('a segment for no connection is answered per RFC 9293 §3.10.7.1', () => {
    const seg = {
      srcPort: 1,
      dstPort: 2,
      seq: 100,
      ack: 200,
      flags: ACK,
      window: 0,
      urgentPointer: 0,
      options: {},
      payload: bytes(5),
    };
    expect(lines([resetFor(seg)!])).toEqual(['RST seq=200 win=0']);
    expect(lines([resetFor({ ...seg, flags: SYN })!])).toEqual(['RST,ACK seq=0 ack=106 win=0']);
    expect(resetFor({ ...seg, flags: RST })).toBeUndefined();
    const closed = client();
    expect(lines(closed.receive(seg, 0))).toEqual(['RST seq=200 win=0']);
  });
});

describe('connection termination (RFC 9293 §3.6)', () => {
  it('normal close: FIN-WAIT-1 -> FIN-WAIT-2 -> TIME-WAIT -> CLOSED after 2*MSL; CLOSE-WAIT -> LAST-ACK -> CLOSED', () => {
    const { a, b } = established({ msl: 500 }, {});
    const fin = a.close(10);
    expect(a.state).toBe('FIN-WAIT-1');
    expect(lines(fin)).toEqual(['FIN,ACK seq=1001 ack=5001 win=65535']);
    const ack = deliver(b, fin, 11);
    expect(b.state).toBe('CLOSE-WAIT');
    expect(kinds(ack)).toEqual(['peer-fin']);
    // The FIN took one sequence number of the window; receiver SWS avoidance (RFC 9293
    // §3.8.6.2.2) keeps the right edge where it was rather than move it by one byte.
    expect(lines(ack)).toEqual(['ACK seq=5001 ack=1002 win=65534']);
    deliver(a, ack, 12);
    expect(a.state).toBe('FIN-WAIT-2');
    const finB = b.close(20);
    expect(b.state).toBe('LAST-ACK');
    expect(lines(finB)).toEqual(['FIN,ACK seq=5001 ack=1002 win=65534']);
    const lastAck = deliver(a, finB, 21);
    expect(a.state).toBe('TIME-WAIT');
    expect(kinds(lastAck)).toEqual(['peer-fin']);
    expect(lines(lastAck)).toEqual(['ACK seq=1002 ack=5002 win=65534']);
    expect(kinds(deliver(b, lastAck, 22))).toEqual(['acked', 'closed']);
    expect(b.state).toBe('CLOSED');
    // TIME-WAIT lasts 2*MSL (RFC 9293 §3.4.2) from the moment it was entered.
    expect(a.nextTimeout()).toBe(21 + 1000);
    expect(kinds(a.onTimeout(1021))).toEqual(['closed']);
    expect(a.state).toBe('CLOSED');
  });

  it('a FIN retransmitted into TIME-WAIT is ACKed again and restarts the 2*MSL timer', () => {
    const { a, b } = established({ msl: 500 }, {});
    deliver(a, deliver(b, a.close(0), 1), 2);
    const finB = b.close(3);
    deliver(a, finB, 4);
    expect(a.state).toBe('TIME-WAIT');
    const again = deliver(a, finB, 300);
    expect(lines(again)).toEqual(['ACK seq=1002 ack=5002 win=65534']);
    expect(a.nextTimeout()).toBe(1300);
  });

  it('simultaneous close: FIN-WAIT-1 -> CLOSING -> TIME-WAIT on both sides', () => {
    const { a, b } = established({ msl: 100 }, { msl: 100 });
    const finA = a.close(0);
    const finB = b.close(0);
    expect(lines(finB)).toEqual(['FIN,ACK seq=5001 ack=1001 win=65535']);
    const ansA = deliver(a, finB, 1);
    const ansB = deliver(b, finA, 1);
    expect(a.state).toBe('CLOSING');
    expect(b.state).toBe('CLOSING');
    expect(lines(ansA)).toEqual(['ACK seq=1002 ack=5002 win=65534']);
    deliver(a, ansB, 2);
    deliver(b, ansA, 2);
    expect(a.state).toBe('TIME-WAIT');
    expect(b.state).toBe('TIME-WAIT');
    expect(kinds(a.onTimeout(202))).toEqual(['closed']);
    expect(kinds(b.onTimeout(202))).toEqual(['closed']);
  });

  it('half-close: the side that sent FIN keeps receiving until the peer closes', () => {
    const { a, b } = established();
    deliver(a, deliver(b, a.close(0), 1), 2);
    expect(a.state).toBe('FIN-WAIT-2');
    const data = b.send(bytes(100, 0x42), 3);
    expect(lines(data)).toEqual(['PSH,ACK seq=5001 ack=1002 win=65534 len=100']);
    const got = deliver(a, data, 4);
    expect(kinds(got)).toEqual(['data-readable']);
    expect(a.read(5).data).toEqual(bytes(100, 0x42));
    expect(() => a.send(bytes(1), 6)).toThrow(/after close/);
  });

  it('abort sends RST and the peer reports ECONNRESET', () => {
    const { a, b } = established();
    const rst = a.abort(0);
    expect(lines(rst)).toEqual(['RST seq=1001 win=0']);
    expect(kinds(rst)).toEqual(['closed']);
    expect(kinds(deliver(b, rst, 1))).toEqual(['error:ECONNRESET', 'closed']);
  });

  it('abort before the handshake completes goes straight to CLOSED, silently', () => {
    const a = client();
    a.open(0);
    const out = a.abort(1);
    expect(kinds(out)).toEqual(['closed']);
    expect(out.segments).toEqual([]);
    expect(a.nextTimeout()).toBeUndefined();
  });

  it('close in SYN-SENT is a half-close: the queued data and then the FIN follow the handshake', () => {
    const a = client();
    const b = server();
    b.listen(0);
    const syn = a.open(0);
    a.send(bytes(3, 0x78), 0);
    expect(a.close(0).segments).toEqual([]);
    expect(a.state).toBe('SYN-SENT');
    const synAck = deliver(b, syn, 1);
    const out = deliver(a, synAck, 2);
    expect(a.state).toBe('FIN-WAIT-1');
    expect(lines(out)).toEqual(['FIN,PSH,ACK seq=1001 ack=5001 win=65535 len=3']);
    deliver(b, out, 3);
    expect(b.state).toBe('CLOSE-WAIT');
    expect(b.read(4).data).toEqual(bytes(3, 0x78));
  });
});

describe('sequence numbers across 2^32 (RFC 9293 §3.4)', () => {
  it('transfers and closes with both ISS just below 2^32', () => {
    const { a, b } = established({ iss: 0xfffffff0 }, { iss: 0xffffffff });
    const data = a.send(bytes(40, 0x7a), 0);
    expect(lines(data)).toEqual(['PSH,ACK seq=4294967281 ack=0 win=65535 len=40']);
    expect(deliver(b, data, 1).segments).toEqual([]); // one segment: B delays its ACK
    expect(b.read(1).data).toEqual(bytes(40, 0x7a));
    expect(b.stats.rcvNxt).toBe(25);
    const fin = a.close(50);
    expect(lines(fin)).toEqual(['FIN,ACK seq=25 ack=0 win=65535']);
    deliver(a, deliver(b, fin, 51), 52);
    expect(a.state).toBe('FIN-WAIT-2');
    expect(a.stats.sndUna).toBe(26);
  });
});

describe('tracing', () => {
  it('emits one event per segment and per state change, with RFC citations', () => {
    const trace = new TraceBus();
    const events: TraceEvent[] = [];
    trace.on((e) => events.push(e));
    const a = client({ trace, hostName: 'A', peerName: 'B', timestamps: true });
    a.open(0);
    expect(events.map((e) => `${e.dir} ${e.summary} ${e.rfc ?? ''}`.trim())).toEqual([
      `out SYN seq=1000 win=65535 mss=1460 ws=0 sack ts`,
      'local CLOSED -> SYN-SENT RFC 9293 §3.10.1',
    ]);
    expect(events[1]!.state).toEqual({ from: 'CLOSED', to: 'SYN-SENT' });
    expect(events[0]!.layer).toBe('tcp');
    expect(events[0]!.peer).toBe('B');
  });
});

describe('a whole exchange as the trace shows it', () => {
  it('reads as a ladder: segments out and in, and every state change with its rule', () => {
    const trace = new TraceBus();
    const lines: string[] = [];
    trace.on((e) => {
      if (e.dir === 'local') lines.push(`${e.host}   ${e.summary}  (${e.rfc})`);
      else if (e.dir === 'out') lines.push(`${e.host} > ${e.summary}`);
    });
    const a = client({ trace, hostName: 'A', msl: 10 });
    const b = server({ trace, hostName: 'B', msl: 10 });
    b.listen(0);
    const synAck = deliver(b, a.open(0), 1);
    deliver(b, deliver(a, synAck, 2), 3);
    const data = a.send(bytes(5, 0x68), 4);
    deliver(a, deliver(b, data, 5), 6);
    const fin = a.close(50);
    deliver(a, deliver(b, fin, 51), 52);
    deliver(a, b.close(60), 61);
    expect(lines).toEqual([
      'B   CLOSED -> LISTEN  (RFC 9293 §3.10.1)',
      'A > SYN seq=1000 win=65535 mss=1460 ws=0 sack',
      'A   CLOSED -> SYN-SENT  (RFC 9293 §3.10.1)',
      'B   LISTEN -> SYN-RECEIVED  (RFC 9293 §3.10.7.2)',
      'B > SYN,ACK seq=5000 ack=1001 win=65535 mss=1460 ws=0 sack',
      'A   SYN-SENT -> ESTABLISHED  (RFC 9293 §3.10.7.3)',
      'A > ACK seq=1001 ack=5001 win=65535',
      'B   SYN-RECEIVED -> ESTABLISHED  (RFC 9293 §3.10.7.4)',
      'A > PSH,ACK seq=1001 ack=5001 win=65535 len=5',
      'A   ESTABLISHED -> FIN-WAIT-1  (RFC 9293 §3.10.4)',
      'A > FIN,ACK seq=1006 ack=5001 win=65535',
      'B   ESTABLISHED -> CLOSE-WAIT  (RFC 9293 §3.10.7.4)',
      'B > ACK seq=5001 ack=1007 win=65529',
      'A   FIN-WAIT-1 -> FIN-WAIT-2  (RFC 9293 §3.10.7.4)',
      'B   CLOSE-WAIT -> LAST-ACK  (RFC 9293 §3.10.4)',
      'B > FIN,ACK seq=5001 ack=1007 win=65529',
      'A   FIN-WAIT-2 -> TIME-WAIT  (RFC 9293 §3.10.7.4)',
      'A > ACK seq=1007 ack=5002 win=65534',
    ]);
  });
});
