import { fc, test } from '@fast-check/vitest';
import type { IpDelivery } from '@stepwire/ip';
import { ipDelivery } from '@stepwire/ip/testing';
import { describe, expect } from 'vitest';
import { encodeSegment, type TcpSegment, type TcpSocket } from '../src/index.ts';
import { arbitraryTcpOptions } from '../src/testing.ts';
import { once, tcpSim } from './net.ts';

const A = '198.18.0.1';
const B = '198.18.0.2';

function delivery(payload: Uint8Array, src = A, dst = B): IpDelivery {
  return ipDelivery({
    version: 4,
    src,
    dst,
    protocol: 6,
    ttl: 64,
    payload,
    original: payload.subarray(0, 28),
  });
}

/** A segment whose numbers land near `seq`/`ack` often enough to reach the deep paths. */
const hostileSegment = (srcPort: number, dstPort: number, seqBase: number, ackBase: number) =>
  fc.record({
    srcPort: fc.oneof(fc.constant(srcPort), fc.integer({ min: 0, max: 0xffff })),
    dstPort: fc.oneof(fc.constant(dstPort), fc.integer({ min: 0, max: 0xffff })),
    seq: fc.oneof(
      fc.integer({ min: -70_000, max: 70_000 }).map((d) => (seqBase + d) >>> 0),
      fc.nat(),
    ),
    ack: fc.oneof(
      fc.integer({ min: -70_000, max: 70_000 }).map((d) => (ackBase + d) >>> 0),
      fc.nat(),
    ),
    flags: fc.integer({ min: 0, max: 0xfff }),
    window: fc.integer({ min: 0, max: 0xffff }),
    urgentPointer: fc.integer({ min: 0, max: 0xffff }),
    options: arbitraryTcpOptions,
    payload: fc.uint8Array({ maxLength: 1400 }),
  }) as fc.Arbitrary<TcpSegment>;

/** Either a well-formed segment with a good checksum, or bytes that are not one. */
const hostileBytes = (seg: fc.Arbitrary<TcpSegment>) =>
  fc.oneof(
    { weight: 4, arbitrary: seg.map((s) => encodeSegment(s, { src: A, dst: B })) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 80 }) },
  );

describe('hostile segments never break the stack', () => {
  test.prop([fc.array(hostileBytes(hostileSegment(40000, 80, 0, 0)), { minLength: 1, maxLength: 40 })], {
    numRuns: 60,
  })('to a listener', async (packets) => {
    const { a, b, run } = tcpSim();
    const server = b.createServer({ synCookies: true }, (s: TcpSocket) => {
      s.on('error', () => {});
      s.resume();
    });
    server.listen(80, B, 8);
    for (const p of packets) b.receive(delivery(p));
    // State stays bounded by the backlog whatever came in.
    expect(server.queues!.synQueue).toBeLessThanOrEqual(8);
    expect(server.queues!.acceptQueue).toBeLessThanOrEqual(8);
    // And the listener still serves a real client.
    const c = a.connect({ host: B, port: 80 });
    c.on('error', () => {});
    await run(once(c, 'connect'), 300_000);
    c.destroy();
  });

  test.prop(
    [
      fc.array(
        fc.tuple(fc.boolean(), fc.integer({ min: -70_000, max: 70_000 }), fc.integer({ min: 0, max: 0xfff })),
        { minLength: 1, maxLength: 30 },
      ),
      fc.array(hostileBytes(hostileSegment(0, 0, 0, 0)), { maxLength: 10 }),
      fc.integer({ min: 0, max: 2 ** 31 }),
    ],
    { numRuns: 60 },
  )('to established connections, near their sequence numbers', async (tweaks, raw, seed) => {
    const { a, b, run, sim } = tcpSim({ seed: (seed % 1000) + 1 });
    let serverSide: TcpSocket | undefined;
    b.createServer((s: TcpSocket) => {
      serverSide = s;
      s.on('error', () => {});
      s.pipe(s);
    }).listen(80, B);
    const c = a.connect({ host: B, port: 80 });
    c.on('error', () => {});
    c.resume();
    await run(once(c, 'connect'));
    c.write(Buffer.alloc(10_000, 1));
    await run(new Promise((r) => setImmediate(r)));
    sim.clock.advance(1);
    const cport = c.localPort!;
    const sconn = serverSide?.connection;
    const cconn = c.connection!;
    for (const [toServer, delta, flags] of tweaks) {
      const target = toServer ? sconn : cconn;
      if (!target) continue;
      const seg: TcpSegment = {
        srcPort: toServer ? cport : 80,
        dstPort: toServer ? 80 : cport,
        seq: (target.rcvNxt + delta) >>> 0,
        ack: (target.sndUna + (delta >> 2)) >>> 0,
        flags,
        window: (delta & 0xffff) >>> 0,
        urgentPointer: 0,
        options: delta & 1 ? { timestamps: { value: delta >>> 0, echo: 0 } } : {},
        payload: new Uint8Array(Math.abs(delta) % 1500),
      };
      if (toServer) b.receive(delivery(encodeSegment(seg, { src: A, dst: B })));
      else a.receive(delivery(encodeSegment(seg, { src: B, dst: A }), B, A));
    }
    for (const p of raw) b.receive(delivery(p));
    // Time runs on: retransmissions, probes, TIME-WAIT; nothing throws, everything ends.
    sim.clock.advance(15 * 60_000);
    await run(new Promise((r) => setImmediate(r)));
    sim.clock.advance(15 * 60_000);
    c.destroy();
    serverSide?.destroy();
    sim.clock.advance(15 * 60_000);
    expect(a.stats.connections + b.stats.connections).toBeLessThanOrEqual(2);
  });
});
