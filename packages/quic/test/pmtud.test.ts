import { Prng } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import type { QuicConnection } from '../src/connection/connection.ts';
import {
  PathMtu,
  PMTU_BLACK_HOLE_LOSSES,
  PMTU_MAX_PROBES,
  PMTU_SEARCH_STEP,
  PMTU_TRANSITIONS,
} from '../src/connection/pmtu.ts';
import { simPair } from './support/sim-endpoints.ts';

/**
 * Path MTU discovery (RFC 9000 §14.3, RFC 8899 DPLPMTUD) on the simulated network over our
 * UDP and IP with DF set (RFC 9000 §14): PING+PADDING probes above 1200 bytes, the datagram
 * size raised when one is acknowledged, never above the peer's max_udp_payload_size or our
 * own, and back to 1200 when full-size packets vanish (a black hole).
 */

/** IPv4 (20) and UDP (8) headers. */
const HEADERS = 28;

async function upload(o: {
  seed: number;
  mtu?: number;
  client?: number;
  server?: number;
  body?: number;
  raise?: number;
  blackHoleAt?: number;
  blackHoleAbove?: number;
  /** Also wait for this (the search goes on after the body is through). */
  until?: (client: QuicConnection) => boolean;
}) {
  const p = simPair({
    seed: o.seed,
    impairments: { delay: 10 },
    ...(o.mtu ? { mtu: o.mtu } : {}),
    clientTransport: {
      ...(o.client ? { maxUdpPayloadSize: o.client } : {}),
      ...(o.raise ? { pmtuRaiseInterval: o.raise } : {}),
    },
    serverTransport: o.server ? { maxUdpPayloadSize: o.server } : {},
  });
  const sizes: number[] = [];
  const send = p.client.send.send.bind(p.client.send);
  p.client.send.send = ((msg: Uint8Array, ...rest: unknown[]) => {
    sizes.push(msg.byteLength);
    return (send as (...a: unknown[]) => void)(msg, ...rest);
  }) as typeof send;
  const client = p.connect();
  const body = o.body ?? 400_000;
  let wrote = false;
  let got = 0;
  await p.runUntil(() => {
    if (!wrote && client.isHandshakeConfirmed) {
      client.write(client.openStream('uni'), new Prng(o.seed).bytes(body), true);
      p.flush();
      wrote = true;
    }
    if (o.blackHoleAbove !== undefined && got >= (o.blackHoleAt ?? 0)) p.server.dropAbove = o.blackHoleAbove;
    got = p.server.events.reduce((n, x) => n + (x.e.type === 'stream-data' ? x.e.data.length : 0), 0);
    return got >= body && (o.until?.(client) ?? true);
  }, 120_000);
  return { p, client, got, sizes, body };
}

describe('DPLPMTUD (RFC 9000 §14.3, RFC 8899)', () => {
  it('off by default: every datagram 1200 bytes at most, no probe', async () => {
    const r = await upload({ seed: 1, body: 100_000 });
    expect(r.got).toBe(r.body);
    expect(Math.max(...r.sizes)).toBe(1200);
    expect(r.client.pmtuState).toBe('disabled');
    expect(r.client.counters.get('quic.pmtu.probe')).toBe(0);
  });

  it('finds the 1500-byte link: probes up to 1472, then sends full-size datagrams', async () => {
    const r = await upload({ seed: 2, client: 1500 - HEADERS, server: 1500 - HEADERS });
    expect(r.got).toBe(r.body);
    expect(r.client.pmtuState).toBe('search-complete');
    expect(r.client.maxDatagramSize).toBe(1472);
    expect(Math.max(...r.sizes)).toBe(1472);
    // Most of the body went in full-size datagrams.
    expect(r.sizes.filter((n) => n > 1400).length).toBeGreaterThan(r.body / 1472 / 2);
    expect(r.p.lines.some((l) => l.startsWith('A local PMTU raised to 1472'))).toBe(true);
    // No congestion loss came of it.
    expect(r.client.counters.get('quic.lost')).toBe(0);
  });

  it('a link MTU below what both ends allow: probes above it fail (DF), the search settles under it', async () => {
    const r = await upload({
      seed: 3,
      mtu: 1400,
      client: 1472,
      server: 1472,
      until: (c) => c.pmtuState === 'search-complete',
    });
    expect(r.got).toBe(r.body);
    expect(r.client.pmtuState).toBe('search-complete');
    expect(r.client.maxDatagramSize).toBeLessThanOrEqual(1400 - HEADERS);
    expect(r.client.maxDatagramSize).toBeGreaterThan(1400 - HEADERS - PMTU_SEARCH_STEP);
    // The oversize probes never left: the local stack refused them (EMSGSIZE), MAX_PROBES each.
    expect(r.p.client.sendErrors).toBeGreaterThanOrEqual(PMTU_MAX_PROBES);
    expect(r.client.counters.get('quic.pmtu.probe')).toBeGreaterThan(PMTU_MAX_PROBES);
  });

  it("never above the peer's max_udp_payload_size (RFC 9000 §18.2)", async () => {
    const r = await upload({ seed: 4, client: 1472, server: 1300, body: 100_000 });
    expect(r.client.maxDatagramSize).toBe(1300);
    expect(Math.max(...r.sizes)).toBe(1300);
  });

  it('a black hole after the search: full-size packets vanish, the size falls back to 1200, the transfer completes, the raise timer searches again', async () => {
    const r = await upload({
      seed: 5,
      client: 1472,
      server: 1472,
      body: 600_000,
      raise: 2000,
      blackHoleAt: 150_000,
      blackHoleAbove: 1350,
      until: (c) => c.counters.get('quic.pmtu.black-hole') > 0 && c.pmtuState === 'search-complete',
    });
    expect(r.got).toBe(r.body);
    expect(r.client.counters.get('quic.pmtu.black-hole')).toBe(1);
    expect(r.p.lines.some((l) => l.includes('PMTU search-complete → base (1200 bytes)'))).toBe(true);
    // Searched again after the raise timer and settled below the hole.
    expect(r.p.lines.some((l) => l.includes('PMTU base → searching'))).toBe(true);
    expect(r.client.maxDatagramSize).toBeLessThanOrEqual(1350);
    expect(r.client.maxDatagramSize).toBeGreaterThan(1200);
  });
});

describe('what it buys', () => {
  it('the same 1 MB upload takes at least 15% fewer datagrams once the 1500-byte link is found', async () => {
    const off = await upload({ seed: 9, body: 1_000_000 });
    const on = await upload({ seed: 9, body: 1_000_000, client: 1472, server: 1472 });
    expect(off.got).toBe(off.body);
    expect(on.got).toBe(on.body);
    expect(on.sizes.length).toBeLessThan(0.85 * off.sizes.length);
  });
});

describe('PathMtu search (RFC 8899 §5)', () => {
  it('halves the interval: tries the top, then the middle, MAX_PROBES losses rule a size out', () => {
    const m = new PathMtu(1200, 1500);
    m.start(65527);
    expect(m.state).toBe('searching');
    const path = 1350;
    for (let guard = 0; guard < 100; guard++) {
      const size = m.probeSize();
      if (size === undefined) break;
      const id = m.onProbeSent(size);
      if (size <= path) m.onProbeAcked(id);
      else m.onProbeLost(id);
    }
    expect(m.state).toBe('search-complete');
    expect(m.current).toBeLessThanOrEqual(path);
    expect(m.current).toBeGreaterThan(path - PMTU_SEARCH_STEP);
  });
  it(`${PMTU_BLACK_HOLE_LOSSES} full-size losses in a row fall back to the base; an acknowledgement in between resets the count`, () => {
    const m = new PathMtu(1200, 1500, 1000);
    m.start(1500);
    const id = m.onProbeSent(m.probeSize() ?? 0);
    m.onProbeAcked(id);
    expect(m.current).toBe(1500);
    for (let i = 0; i < PMTU_BLACK_HOLE_LOSSES - 1; i++) expect(m.onLost(1500, 0)).toBe(false);
    m.onAcked(1500);
    for (let i = 0; i < PMTU_BLACK_HOLE_LOSSES - 1; i++) expect(m.onLost(1500, 0)).toBe(false);
    expect(m.onLost(1500, 0)).toBe(true);
    expect(m.current).toBe(1200);
    expect(m.raiseAt).toBe(1000);
    // Small packets lost say nothing about the MTU.
    expect(m.onLost(1200, 0)).toBe(false);
  });
  it('disabled when our side allows nothing above the base; every row cites its section', () => {
    expect(new PathMtu(1200, 1200).state).toBe('disabled');
    for (const r of PMTU_TRANSITIONS) expect(r.rfc).toMatch(/RFC (8899|9000)/);
  });
});
