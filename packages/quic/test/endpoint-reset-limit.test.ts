import { Prng, TraceBus, type TraceEvent } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { QuicEndpoint } from '../src/endpoint/endpoint.ts';
import { isStatelessReset, MIN_STATELESS_RESET_LENGTH } from '../src/packet/stateless-reset.ts';
import type { QuicTls } from '../src/tls/types.ts';

/**
 * Stateless Reset bounds in QuicEndpoint (RFC 9000 §10.3.3): never in reply to a datagram
 * that may itself be a reset of the smallest size, always smaller than what it answers, and
 * at most `statelessResetLimit` per `statelessResetInterval`; the rest counted and traced.
 * No connection is ever created here, so the TLS factory is never called.
 */
const noTls = (): QuicTls => {
  throw new Error('no connection should be created');
};
const remote = { address: '198.18.0.1', port: 4433 };

function shortPacket(prng: Prng, length: number): Uint8Array {
  const d = prng.bytes(length);
  d[0] = 0x40 | ((d[0] ?? 0) & 0x3f);
  return d;
}

describe('Stateless Reset limits (RFC 9000 §10.3.3)', () => {
  it('a flood of short packets for unknown connections gets at most the limit per interval', () => {
    const trace = new TraceBus();
    const drops: TraceEvent[] = [];
    trace.on((e) => {
      if (e.dir === 'drop') drops.push(e);
    });
    const ep = new QuicEndpoint({
      server: { tls: noTls },
      statelessResetLimit: 5,
      statelessResetInterval: 100,
      trace,
    });
    const prng = new Prng(1);
    const answered = (now: number, n: number): number => {
      for (let i = 0; i < n; i++) ep.handle(shortPacket(prng, 60), remote, now);
      let k = 0;
      for (let t = ep.pollTransmit(now); t; t = ep.pollTransmit(now)) k++;
      return k;
    };
    expect(answered(0, 50)).toBe(5);
    expect(ep.counters.get('quic.endpoint.stateless-reset')).toBe(5);
    expect(ep.counters.get('quic.endpoint.stateless-reset-limited')).toBe(45);
    expect(drops.filter((e) => e.reason === 'quic.endpoint.stateless-reset-limited')).toHaveLength(45);
    // Still within the same interval: nothing more.
    expect(answered(99, 10)).toBe(0);
    // A new interval: the budget is back.
    expect(answered(100, 10)).toBe(5);
    expect(ep.counters.get('quic.endpoint.stateless-reset')).toBe(10);
    expect(ep.connections).toHaveLength(0);
  });

  it('the default bound is 16 per 100 ms', () => {
    const ep = new QuicEndpoint({ server: { tls: noTls } });
    const prng = new Prng(2);
    for (let i = 0; i < 100; i++) ep.handle(shortPacket(prng, 80), remote, 0);
    let k = 0;
    for (let t = ep.pollTransmit(0); t; t = ep.pollTransmit(0)) k++;
    expect(k).toBe(16);
    expect(ep.counters.get('quic.endpoint.stateless-reset-limited')).toBe(84);
  });

  it('never answers a datagram of reset size or less; answers the others with a smaller reset', () => {
    const ep = new QuicEndpoint({ server: { tls: noTls }, statelessResetLimit: 1000 });
    const prng = new Prng(3);
    for (let len = 1; len <= 80; len++) {
      ep.handle(shortPacket(prng, len), remote, len * 1000);
      const t = ep.pollTransmit(len * 1000);
      if (len <= MIN_STATELESS_RESET_LENGTH) {
        expect(t, `length ${len}`).toBeUndefined();
        continue;
      }
      expect(t, `length ${len}`).toBeDefined();
      const n = t?.datagram.length ?? 0;
      // §10.3.3: smaller than what it answers, so two endpoints answering each other stop.
      expect(n).toBeLessThan(len);
      expect(n).toBeGreaterThanOrEqual(MIN_STATELESS_RESET_LENGTH);
      expect(n).toBeLessThanOrEqual(43);
    }
  });

  it('two endpoints that lost each other answer resets with ever smaller resets until silence', () => {
    const a = new QuicEndpoint({ server: { tls: noTls }, statelessResetLimit: 1000 });
    const b = new QuicEndpoint({ server: { tls: noTls }, statelessResetLimit: 1000 });
    let d: Uint8Array | undefined = shortPacket(new Prng(4), 43);
    let rounds = 0;
    for (let now = 0; d && rounds < 100; now++, rounds++) {
      const to = rounds % 2 === 0 ? a : b;
      to.handle(d, remote, now);
      d = to.pollTransmit(now)?.datagram;
      if (d) expect(isStatelessReset(d, [d.subarray(d.length - 16)])).toBe(true);
    }
    expect(d).toBeUndefined();
    expect(rounds).toBeLessThanOrEqual(43 - MIN_STATELESS_RESET_LENGTH + 1);
  });
});
