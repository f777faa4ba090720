import { bytesEqual, concatBytes, Prng } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import type { QuicConnectionEvent } from '../src/connection/types.ts';
import { connectionPair, type Impairment, runPair } from './connection-helpers.ts';

/** The client uploads `body` on one stream over `imp`; returns when the server had it all. */
function upload(seed: number, body: Uint8Array, congestion: 'newreno' | 'cubic', imp: Impairment) {
  const { client, server, prng } = connectionPair(seed, { congestion });
  let got: Uint8Array = new Uint8Array(0);
  let fin = false;
  let start = 0;
  const r = runPair(
    client,
    server,
    prng,
    imp,
    () => fin,
    (side, e: QuicConnectionEvent, now) => {
      if (side === 'a' && e.type === 'connected') {
        start = now;
        client.write(client.openStream('bidi'), body, true);
      }
      if (side === 'b' && e.type === 'stream-data') {
        got = concatBytes(got, e.data);
        if (e.fin) fin = true;
      }
    },
    600_000,
  );
  const s = client.stats();
  return { ok: fin && bytesEqual(got, body), ms: r.now - start, cwnd: Number(s.cwnd) };
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
