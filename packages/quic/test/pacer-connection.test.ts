import { Prng } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import type { QuicConnection } from '../src/connection/connection.ts';
import { connectionPair, type Impairment, uploadPair } from './connection-helpers.ts';

interface Upload {
  ok: boolean;
  /** The most full-size datagrams the client sent at one instant after the handshake. */
  largestBurst: number;
  now: number;
  cwnd: number;
}

/** The client uploads `body` on one stream; the server collects it. Client datagrams are timed. */
function upload(
  seed: number,
  body: Uint8Array,
  opts: { congestion?: 'newreno' | 'cubic'; pacing?: boolean },
  imp: Impairment,
): Upload {
  const { client, server, prng } = connectionPair(seed, opts);
  const perInstant = new Map<number, number>();
  let connectedAt: number | undefined;
  const poll = client.pollTransmit.bind(client);
  (client as { pollTransmit: QuicConnection['pollTransmit'] }).pollTransmit = (now: number) => {
    const d = poll(now);
    if (d && d.length >= 1000 && connectedAt !== undefined)
      perInstant.set(now, (perInstant.get(now) ?? 0) + 1);
    return d;
  };
  const r = uploadPair(client, server, prng, imp, body, {
    onConnected: (now) => {
      connectedAt = now;
    },
  });
  return {
    ok: r.ok,
    largestBurst: Math.max(0, ...perInstant.values()),
    now: r.now,
    cwnd: Number(client.stats().cwnd),
  };
}

describe('pacing in the connection (RFC 9002 §7.7)', () => {
  const body = new Prng(3).bytes(600_000);
  const path: Impairment = { oneWayDelay: 25 };

  it('without pacing, a whole window leaves at one instant when its ACKs arrive together', () => {
    const r = upload(11, body, { pacing: false }, path);
    expect(r.ok).toBe(true);
    console.log(
      `unpaced: largest burst ${r.largestBurst} datagrams, done at virtual ${r.now} ms, cwnd ${r.cwnd}`,
    );
    expect(r.largestBurst).toBeGreaterThan(20);
  });

  for (const congestion of ['cubic', 'newreno'] as const) {
    it(`with pacing (${congestion}) at most the burst allowance leaves at once, and the upload completes intact`, () => {
      const r = upload(11, body, { congestion }, path);
      expect(r.ok).toBe(true);
      // 10 datagrams of burst, plus at most one whose tokens accrued in the same millisecond.
      console.log(
        `paced ${congestion}: largest burst ${r.largestBurst} datagrams, done at virtual ${r.now} ms, cwnd ${r.cwnd}`,
      );
      expect(r.largestBurst).toBeLessThanOrEqual(11);
    });
  }

  it('pacing costs little time: the paced upload is within 25% of the unpaced one', () => {
    const paced = upload(12, body, {}, path);
    const unpaced = upload(12, body, { pacing: false }, path);
    expect(paced.ok && unpaced.ok).toBe(true);
    expect(paced.now).toBeLessThan(unpaced.now * 1.25);
  });

  it('with loss, paced CUBIC and NewReno both deliver intact', () => {
    for (const congestion of ['cubic', 'newreno'] as const) {
      const r = upload(
        13,
        body.subarray(0, 200_000),
        { congestion },
        { oneWayDelay: 20, loss: 0.03, reorder: 0.02 },
      );
      expect(r.ok).toBe(true);
    }
  });
});
