import { concatBytes, Prng } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { QuicConnection } from '../src/connection/connection.ts';
import type { QuicConnectionEvent, TransportConfig } from '../src/connection/types.ts';
import { TransportErrorCode } from '../src/errors.ts';
import { fakeTls, runPair } from './connection-helpers.ts';

/**
 * DATAGRAM frames (RFC 9221) between two of our connections on a virtual clock: negotiated by
 * max_datagram_frame_size, sent once and never again, ack-eliciting and congestion
 * controlled, and the two PROTOCOL_VIOLATIONs of §3.
 */

function pair(seed: number, client: Partial<TransportConfig>, server: Partial<TransportConfig>) {
  const prng = new Prng(seed);
  const random = (n: number) => prng.bytes(n);
  const c = new QuicConnection({
    role: 'client',
    now: 0,
    random,
    tls: (tp) => fakeTls('client', tp, random(32)),
    transport: client,
  });
  const s = new QuicConnection({
    role: 'server',
    now: 0,
    random,
    tls: (tp) => fakeTls('server', tp, random(32)),
    server: { originalDcid: c.remoteCid, initialDcid: c.remoteCid, clientScid: c.initialLocalCid },
    transport: server,
  });
  const got = { client: [] as Uint8Array[], server: [] as Uint8Array[] };
  const events = { client: [] as QuicConnectionEvent[], server: [] as QuicConnectionEvent[] };
  const onEvent = (side: 'a' | 'b', e: QuicConnectionEvent) => {
    const who = side === 'a' ? 'client' : 'server';
    events[who].push(e);
    if (e.type === 'datagram') got[who].push(e.data);
  };
  const r = runPair(c, s, prng, {}, () => c.isHandshakeConfirmed && s.isHandshakeConfirmed, onEvent);
  return { client: c, server: s, prng, got, events, onEvent, now: r.now };
}

/** Moves datagrams both ways at `now` without a network in between, until both are quiet. */
function exchange(a: QuicConnection, b: QuicConnection, now: number): void {
  for (let i = 0; i < 1000; i++) {
    let any = false;
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      const d = from.pollTransmit(now);
      if (d) {
        to.handle(d, now);
        any = true;
      }
    }
    if (!any) return;
  }
}

/**
 * Runs both connections millisecond by millisecond from `from` to `until` over a 10 ms link
 * losing `loss` of the datagrams (seeded); `tick(t)` runs first each millisecond.
 */
function drive(
  p: ReturnType<typeof pair>,
  from: number,
  until: number,
  loss: number,
  tick: (t: number) => void = () => {},
): void {
  const inFlight: { at: number; to: QuicConnection; bytes: Uint8Array }[] = [];
  for (let t = from; t <= until; t++) {
    while (inFlight[0] && inFlight[0].at <= t) {
      const d = inFlight.shift();
      d?.to.handle(d.bytes, t);
    }
    for (const c of [p.client, p.server]) {
      const due = c.pollTimeout();
      if (due !== undefined && due <= t) c.handleTimeout(t);
    }
    tick(t);
    for (const [side, c] of [
      ['a', p.client],
      ['b', p.server],
    ] as const)
      for (let e = c.pollEvent(); e; e = c.pollEvent()) p.onEvent(side, e);
    for (const [from, to] of [
      [p.client, p.server],
      [p.server, p.client],
    ] as const)
      for (let d = from.pollTransmit(t), n = 0; d && n < 100; d = from.pollTransmit(t), n++)
        if (!p.prng.chance(loss)) inFlight.push({ at: t + 10, to, bytes: d });
  }
}

const tag = (i: number) => concatBytes(new Uint8Array([i >> 8, i & 0xff]), new Uint8Array(98).fill(i & 0xff));

describe('DATAGRAM frames (RFC 9221)', () => {
  it('flows both ways when both sides advertise max_datagram_frame_size', () => {
    const p = pair(1, { maxDatagramFrameSize: 1200 }, { maxDatagramFrameSize: 1200 });
    expect(p.client.peerParams?.max_datagram_frame_size).toBe(1200);
    expect(p.server.peerParams?.max_datagram_frame_size).toBe(1200);
    p.client.sendDatagram(tag(1));
    p.client.sendDatagram(tag(2));
    p.server.sendDatagram(tag(3));
    // §5.4: DATAGRAM frames are congestion controlled: the packet counts as in flight.
    const d = p.client.pollTransmit(p.now);
    expect(d).toBeDefined();
    expect(p.client.stats().bytesInFlight).toBeGreaterThan(0);
    if (d) p.server.handle(d, p.now);
    drive(p, p.now, p.now + 100, 0);
    expect(p.got.server).toEqual([tag(1), tag(2)]);
    expect(p.got.client).toEqual([tag(3)]);
  });

  it('a packet of DATAGRAM frames only is ack-eliciting: it is acknowledged and leaves flight (RFC 9221 §5.2)', () => {
    const p = pair(2, {}, { maxDatagramFrameSize: 1200 });
    const before = p.client.counters.get('quic.rx.packets');
    p.client.sendDatagram(tag(7));
    // Two 10 ms trips and the server's 25 ms max_ack_delay (RFC 9000 §13.2.1) fit in 100 ms.
    drive(p, p.now, p.now + 100, 0);
    expect(p.got.server).toEqual([tag(7)]);
    expect(p.client.stats().bytesInFlight).toBe(0);
    expect(p.client.counters.get('quic.rx.packets')).toBeGreaterThan(before);
  });

  it('sendDatagram throws when the peer did not advertise max_datagram_frame_size (RFC 9221 §3)', () => {
    const p = pair(3, { maxDatagramFrameSize: 1200 }, {});
    expect(p.client.maxDatagramPayload).toBe(0);
    expect(() => p.client.sendDatagram(new Uint8Array(1))).toThrow(/does not accept DATAGRAM/);
    // The server may send: the client advertised.
    expect(() => p.server.sendDatagram(new Uint8Array(1))).not.toThrow();
  });

  it('sendDatagram takes exactly maxDatagramPayload bytes: the peer limit and the packet size bound it', () => {
    const small = pair(4, {}, { maxDatagramFrameSize: 100 });
    // 100 bytes of frame: type (1), Length (a 2-byte varint above 63), 97 of payload.
    expect(small.client.maxDatagramPayload).toBe(97);
    expect(() => small.client.sendDatagram(new Uint8Array(98))).toThrow(/exceeds/);
    const big = pair(5, {}, { maxDatagramFrameSize: 65535 });
    const max = big.client.maxDatagramPayload;
    expect(max).toBeGreaterThan(1000);
    expect(max).toBeLessThan(1200);
    expect(() => big.client.sendDatagram(new Uint8Array(max + 1))).toThrow(/exceeds/);
    big.client.sendDatagram(new Uint8Array(max).fill(9));
    drive(big, big.now, big.now + 100, 0);
    expect(big.got.server).toHaveLength(1);
    expect(big.got.server[0]?.length).toBe(max);
    expect(big.got.server[0]?.every((b) => b === 9)).toBe(true);
    expect(big.server.state).toBe('established');
  });

  it('lost datagrams are not sent again; the rest arrive once each (RFC 9221 §5.2)', () => {
    const p = pair(6, {}, { maxDatagramFrameSize: 1200 });
    const sent = 60;
    let i = 0;
    // One datagram every 5 ms over a link that loses 30%; then two quiet seconds in which
    // loss detection and PTOs run (a retransmission would show up then).
    drive(p, p.now, p.now + sent * 5 + 2000, 0.3, (t) => {
      if (i < sent && (t - p.now) % 5 === 0) p.client.sendDatagram(tag(i++));
    });
    expect(i).toBe(sent);
    expect(p.client.counters.get('quic.tx.datagram')).toBe(sent);
    const ids = p.got.server.map((d) => ((d[0] ?? 0) << 8) | (d[1] ?? 0));
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBeLessThan(sent);
    expect(ids.length).toBeGreaterThan(sent / 3);
    for (const [k, d] of p.got.server.entries()) expect(d).toEqual(tag(ids[k] ?? -1));
    expect(p.client.state).toBe('established');
  });

  it('holds at most datagramQueueLimit unpolled received datagrams; the oldest are dropped and counted', () => {
    const p = pair(7, { datagramQueueLimit: 64 }, { maxDatagramFrameSize: 1200, datagramQueueLimit: 4 });
    for (let k = 0; k < 10; k++) p.client.sendDatagram(tag(k));
    exchange(p.client, p.server, p.now);
    const got: Uint8Array[] = [];
    for (let e = p.server.pollEvent(); e; e = p.server.pollEvent())
      if (e.type === 'datagram') got.push(e.data);
    expect(got).toEqual([tag(6), tag(7), tag(8), tag(9)]);
    expect(p.server.counters.get('quic.rx.datagram.dropped')).toBe(6);
  });

  it('holds at most datagramQueueLimit unsent datagrams; the oldest are dropped and counted', () => {
    const p = pair(8, { datagramQueueLimit: 3 }, { maxDatagramFrameSize: 1200 });
    for (let k = 0; k < 5; k++) p.client.sendDatagram(tag(k));
    expect(p.client.counters.get('quic.tx.datagram.dropped')).toBe(2);
    drive(p, p.now, p.now + 100, 0);
    expect(p.got.server).toEqual([tag(2), tag(3), tag(4)]);
  });

  it('a queued datagram that no longer fits is dropped, not left to block the ones behind it', () => {
    const p = pair(11, {}, { maxDatagramFrameSize: 1200 });
    p.client.sendDatagram(new Uint8Array(500));
    p.client.sendDatagram(tag(1));
    // What fits shrank after queueing (here: the limit; in practice a longer connection ID).
    p.client.peerParams = { ...p.client.peerParams, max_datagram_frame_size: 200 };
    drive(p, p.now, p.now + 100, 0);
    expect(p.got.server).toEqual([tag(1)]);
    expect(p.client.counters.get('quic.tx.datagram.dropped')).toBe(1);
  });

  it('a DATAGRAM frame when we did not advertise max_datagram_frame_size is a PROTOCOL_VIOLATION (RFC 9221 §3)', () => {
    const p = pair(9, {}, {});
    // A peer that sends anyway: the client believes the server advertised support.
    p.client.peerParams = { ...p.client.peerParams, max_datagram_frame_size: 1200 };
    p.client.sendDatagram(tag(1));
    exchange(p.client, p.server, p.now);
    expect(p.server.closeError).toMatchObject({
      source: 'local',
      application: false,
      code: TransportErrorCode.PROTOCOL_VIOLATION,
      frameType: 0x31,
    });
    expect(p.server.closeError?.reason).toMatch(/not negotiated/);
    expect(p.client.closeError).toMatchObject({
      source: 'peer',
      code: TransportErrorCode.PROTOCOL_VIOLATION,
    });
  });

  it('a DATAGRAM frame larger than the max_datagram_frame_size we advertised is a PROTOCOL_VIOLATION (RFC 9221 §3)', () => {
    const p = pair(10, {}, { maxDatagramFrameSize: 50 });
    // 48 bytes of payload fit in 50 bytes of frame; 49 do not.
    p.client.sendDatagram(new Uint8Array(48));
    exchange(p.client, p.server, p.now);
    expect(p.server.state).toBe('established');
    p.client.peerParams = { ...p.client.peerParams, max_datagram_frame_size: 1200 };
    p.client.sendDatagram(new Uint8Array(49));
    exchange(p.client, p.server, p.now);
    expect(p.server.closeError).toMatchObject({
      source: 'local',
      code: TransportErrorCode.PROTOCOL_VIOLATION,
      frameType: 0x31,
    });
    expect(p.server.closeError?.reason).toMatch(/larger than max_datagram_frame_size 50/);
  });
});
