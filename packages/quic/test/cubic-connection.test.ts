import { Prng } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { connectionPair, type Impairment, uploadPair } from './connection-helpers.ts';

/** The client uploads `body` on one stream over `imp`; returns when the server had it all. */
function upload(seed: number, body: Uint8Array, congestion: 'newreno' | 'cubic', imp: Impairment) {
  const { client, server, prng } = connectionPair(seed, { congestion });
  const r = uploadPair(client, server, prng, imp, body, { limitMs: 600_000 });
  return { ok: r.ok, ms: r.now - (r.connectedAt ?? 0), cwnd: Number(client.stats().cwnd) };
}

describe('CUBIC in the connection (RFC 9438 through RFC 9002)', () => {
  it('on a long path with random loss CUBIC moves a body faster than NewReno (β 0.7 and the cubic regrowth)', () => {
    const body = new Prng(5).bytes(1_000_000);
    const path: Impairment = { oneWayDelay: 50, loss: 0.005 };
    const times: Record<string, number[]> = { cubic: [], newreno: [] };
    for (const seed of [21, 22]) {
      for (const cc of ['cubic', 'newreno'] as const) {
        const r = upload(seed, body, cc, path);
        expect(r.ok).toBe(true);
        times[cc]?.push(r.ms);
      }
    }
    const sum = (xs: number[] | undefined) => (xs ?? []).reduce((a, b) => a + b, 0);
    console.log(
      `1 MB over 100 ms RTT, 0.5% loss, seeds 21-22: cubic ${times.cubic} ms, newreno ${times.newreno} ms`,
    );
    expect(sum(times.cubic)).toBeLessThan(sum(times.newreno));
  });
});
