import { IPPROTO_TCP, type IpDelivery } from '@stepwire/ip';
import { ipDelivery } from '@stepwire/ip/testing';
import { Counters, Prng, TraceBus } from '@stepwire/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ACK, encodeSegment, RST, SYN, TcpEndpoint, type TcpSegment } from '../src/index.ts';
import { arbitraryTcpSegment } from '../src/testing.ts';

// Hostile input to the endpoint alone (no clock): whatever arrives is counted and dropped
// or answered, never thrown, and the state a peer can make us hold stays within the
// listener's backlog (RFC 4987 §3.1: SYN cookies answer beyond it without state).

const A = '198.18.0.1';
const B = '198.18.0.2';
const BACKLOG = 4;

function endpoint() {
  const counters = new Counters();
  const sent: TcpSegment[] = [];
  const ep = new TcpEndpoint(
    {
      name: 'B',
      counters,
      trace: new TraceBus(),
      prng: new Prng(1),
      isLocalAddress: (a) => a === B,
      sourceFor: () => B,
      mtuFor: () => 1500,
    },
    {
      transmit: (_src, _dst, seg) => sent.push(seg),
      wake: () => {},
      cancelWake: () => {},
      acceptReady: () => {},
    },
    { synCookieSecret: new Uint8Array(16).fill(3), isnSecret: new Uint8Array(16).fill(4) },
  );
  const l = ep.listen({ address: B, port: 80, backlog: BACKLOG }, 0);
  if (!('acceptQueue' in l)) throw l;
  return { ep, l, counters, sent };
}

function delivery(payload: Uint8Array): IpDelivery {
  return ipDelivery({
    version: 4,
    src: A,
    dst: B,
    protocol: IPPROTO_TCP,
    ttl: 64,
    payload,
    original: new Uint8Array(0),
  });
}

describe('TcpEndpoint under hostile input', () => {
  it('arbitrary bytes: every delivery is counted as received or dropped, nothing throws', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 80 }), { maxLength: 40 }), (payloads) => {
        const { ep, counters } = endpoint();
        payloads.forEach((p, i) => {
          ep.receive(delivery(p), i);
        });
        const seen =
          counters.get('tcp.rx') + counters.get('tcp.drop.checksum') + counters.get('tcp.drop.malformed');
        expect(seen).toBe(payloads.length);
        expect(ep.conns.size).toBeLessThanOrEqual(BACKLOG);
      }),
      { numRuns: 200 },
    );
  });

  it('arbitrary well-formed segments to a listener: state stays within the backlog, answers are RST, ACK or SYN-ACK', () => {
    const toListener = arbitraryTcpSegment(32).map((s) => ({
      ...s,
      dstPort: 80,
      srcPort: 1024 + (s.srcPort % 64),
    }));
    fc.assert(
      fc.property(fc.array(toListener, { minLength: 1, maxLength: 60 }), (segs) => {
        const { ep, l, sent } = endpoint();
        segs.forEach((s, i) => {
          ep.receive(delivery(encodeSegment(s, { src: A, dst: B })), i * 10);
        });
        expect(ep.conns.size).toBeLessThanOrEqual(2 * BACKLOG);
        expect(l.stats.synQueue).toBeLessThanOrEqual(BACKLOG);
        expect(l.stats.acceptQueue).toBeLessThanOrEqual(BACKLOG);
        // Nothing is answered with data or with a bare SYN: only resets, ACKs and SYN-ACKs.
        for (const out of sent) {
          expect(out.payload.length).toBe(0);
          expect(out.flags & (SYN | ACK | RST)).not.toBe(SYN);
        }
      }),
      { numRuns: 100 },
    );
  });
});
