import { Prng } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import type { QuicConnection } from '../src/connection/connection.ts';
import { ECN_TESTING_PACKETS, ECN_TRANSITIONS, EcnValidator } from '../src/recovery/ecn.ts';
import { simPair } from './support/sim-endpoints.ts';

/**
 * ECN in QUIC (RFC 9000 §13.4, RFC 9002 §7.1) on the simulated network, over our UDP and IP,
 * which carry the IP ECN field both ways (node:dgram cannot: there `ecn` stays off and
 * nothing is marked). The receiver counts ECT(0)/ECT(1)/CE per packet number space and
 * sends them in ACK frames; the sender marks ECT(0), validates the counts, and answers CE
 * with a congestion response.
 */

const BODY = 200_000;

/** The client uploads `body` bytes on one stream, both ends with `ecn` on unless told; done when the server has them all. */
async function transfer(
  seed: number,
  o: { ceMark?: number; ecn?: boolean; bleach?: boolean; body?: number } = {},
): Promise<{
  client: QuicConnection;
  server: QuicConnection | undefined;
  lines: string[];
  got: number;
  ecnSent: number[];
}> {
  const ecn = o.ecn ?? true;
  const p = simPair({
    seed,
    impairments: { delay: 10, ...(o.ceMark ? { ceMark: o.ceMark } : {}) },
    clientTransport: { ecn },
    serverTransport: { ecn },
  });
  // A path that clears the ECN field on the way to the server: it never sees our marks.
  if (o.bleach) p.server.readEcn = false;
  const ecnSent: number[] = [];
  const send = p.client.send.send.bind(p.client.send);
  p.client.send.send = ((...args: Parameters<typeof send>) => {
    ecnSent.push(p.client.send.ecn);
    return send(...args);
  }) as typeof send;
  const client = p.connect();
  const body = o.body ?? BODY;
  let got = 0;
  let wrote = false;
  await p.runUntil(() => {
    if (!wrote && client.isHandshakeConfirmed) {
      client.write(client.openStream('uni'), new Prng(seed).bytes(body), true);
      p.flush();
      wrote = true;
    }
    got = p.server.events.reduce((n, x) => n + (x.e.type === 'stream-data' ? x.e.data.length : 0), 0);
    return got >= body;
  });
  return { client, server: p.accepted[0], lines: p.lines, got, ecnSent };
}

describe('ECN (RFC 9000 §13.4)', () => {
  it('both ends mark ECT(0), count what arrives, validate, and stay ECN-capable on a clean path', async () => {
    const r = await transfer(1);
    expect(r.got).toBe(BODY);
    expect(r.client.ecnState).toBe('capable');
    expect(r.server?.ecnState).toBe('capable');
    // §13.4.1: ACK frames carry the counts (ACK_ECN); the ladder shows them.
    expect(r.lines.some((l) => l.startsWith('B out') && / ecn=\d+\/0\/0/.test(l))).toBe(true);
    expect(r.lines.some((l) => l.startsWith('A out') && / ecn=\d+\/0\/0/.test(l))).toBe(true);
    // Validated: every datagram after the first ones is still ECT(0).
    expect(r.ecnSent.length).toBeGreaterThan(100);
    expect(r.ecnSent.every((e) => e === 2)).toBe(true);
    expect(r.lines.some((l) => l.includes('ECN testing → capable'))).toBe(true);
  });

  it('CE marks on the path: counted, echoed, and answered with a congestion response without any loss (RFC 9002 §7.1)', async () => {
    const clean = await transfer(2);
    const marked = await transfer(2, { ceMark: 0.05 });
    expect(marked.got).toBe(BODY);
    expect(marked.client.counters.get('quic.lost')).toBe(0);
    // The server's ACKs report CE (the third count) …
    const ce = marked.lines
      .filter((l) => l.startsWith('B out'))
      .map((l) => Number(/ ecn=\d+\/\d+\/(\d+)/.exec(l)?.[1] ?? 0));
    expect(Math.max(...ce)).toBeGreaterThan(0);
    // … and the client's window ends smaller than on the clean path, with no loss to explain it.
    const cwnd = (c: QuicConnection) => c.stats().cwnd as number;
    expect(cwnd(marked.client)).toBeLessThan(cwnd(clean.client));
    expect(marked.client.ecnState).toBe('capable');
  });

  it('a path that clears the ECN field fails validation: the sender stops marking (RFC 9000 §13.4.2.1)', async () => {
    const r = await transfer(3, { bleach: true });
    expect(r.got).toBe(BODY);
    expect(r.client.ecnState).toBe('failed');
    expect(r.client.counters.get('quic.ecn.failed')).toBe(1);
    // Marked at first (at most the testing packets), then never again.
    const firstUnmarked = r.ecnSent.indexOf(0);
    expect(firstUnmarked).toBeGreaterThan(0);
    expect(firstUnmarked).toBeLessThanOrEqual(ECN_TESTING_PACKETS);
    expect(r.ecnSent.slice(firstUnmarked).every((e) => e === 0)).toBe(true);
    // The server saw no marks, so its ACKs carry no counts.
    expect(r.lines.some((l) => l.startsWith('B out') && l.includes('ecn='))).toBe(false);
  });

  it('off (the default, as for node:dgram): nothing marked, no counts in ACKs, no ECN trace', async () => {
    const r = await transfer(4, { ecn: false });
    expect(r.got).toBe(BODY);
    expect(r.client.ecnState).toBe('off');
    expect(r.ecnSent.every((e) => e === 0)).toBe(true);
    expect(r.lines.some((l) => l.includes('ecn=') || l.includes('ECN '))).toBe(false);
  });
});

describe('ECN validation rules (RFC 9000 §13.4.2.1)', () => {
  const fresh = () => {
    const v = new EcnValidator(true);
    for (let i = 0; i < 4; i++) {
      expect(v.shouldMark(i, 100)).toBe(true);
      v.onDatagramMarked(i);
      v.onPacketMarked('ApplicationData');
    }
    return v;
  };
  it('counts that cover the newly acknowledged marked packets validate', () => {
    const v = fresh();
    const c = v.onAck('ApplicationData', {
      newLargest: true,
      newlyAckedMarked: 3,
      counts: { ect0: 2, ect1: 0, ecnCe: 1 },
    });
    expect(c).toEqual({ ect0: 2, ect1: 0, ecnCe: 1 });
    expect(v.state).toBe('capable');
  });
  it('missing counts for newly acknowledged marked packets fail', () => {
    const v = fresh();
    expect(
      v.onAck('ApplicationData', { newLargest: true, newlyAckedMarked: 1, counts: undefined }),
    ).toBeUndefined();
    expect(v.state).toBe('failed');
    expect(v.shouldMark(10, 100)).toBe(false);
  });
  it('an ECT(0) count above the packets sent ECT(0), or any ECT(1) count, fails', () => {
    const a = fresh();
    a.onAck('ApplicationData', {
      newLargest: true,
      newlyAckedMarked: 1,
      counts: { ect0: 5, ect1: 0, ecnCe: 0 },
    });
    expect(a.state).toBe('failed');
    const b = fresh();
    b.onAck('ApplicationData', {
      newLargest: true,
      newlyAckedMarked: 1,
      counts: { ect0: 1, ect1: 1, ecnCe: 0 },
    });
    expect(b.state).toBe('failed');
  });
  it('an increase smaller than the newly acknowledged marked packets fails; not for a reordered ACK', () => {
    const a = fresh();
    a.onAck('ApplicationData', {
      newLargest: true,
      newlyAckedMarked: 3,
      counts: { ect0: 1, ect1: 0, ecnCe: 1 },
    });
    expect(a.state).toBe('failed');
    const b = fresh();
    b.onAck('ApplicationData', {
      newLargest: false,
      newlyAckedMarked: 3,
      counts: { ect0: 1, ect1: 0, ecnCe: 1 },
    });
    expect(b.state).toBe('testing');
  });
  it(`testing ends after ${ECN_TESTING_PACKETS} marked datagrams or three PTOs; all marked lost then fails`, () => {
    const v = new EcnValidator(true);
    let i = 0;
    for (; v.shouldMark(0, 100); i++) {
      v.onDatagramMarked(0);
      v.onPacketMarked('ApplicationData');
    }
    expect(i).toBe(ECN_TESTING_PACKETS);
    expect(v.state).toBe('unknown');
    v.onMarkedLost(ECN_TESTING_PACKETS);
    expect(v.state).toBe('failed');
    const t = new EcnValidator(true);
    expect(t.shouldMark(0, 100)).toBe(true);
    t.onDatagramMarked(0);
    expect(t.shouldMark(299, 100)).toBe(true);
    expect(t.shouldMark(300, 100)).toBe(false);
    expect(t.state).toBe('unknown');
  });
  it('every transition row cites its section, and a new path starts testing again', () => {
    for (const r of ECN_TRANSITIONS) expect(r.rfc).toMatch(/RFC 9000 §13\.4/);
    const v = fresh();
    v.onAck('ApplicationData', { newLargest: true, newlyAckedMarked: 1, counts: undefined });
    expect(v.state).toBe('failed');
    v.onNewPath();
    expect(v.state).toBe('testing');
    expect(new EcnValidator(false).shouldMark(0, 100)).toBe(false);
  });
});
