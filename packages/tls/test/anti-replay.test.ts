/**
 * The persisted strike register for 0-RTT (RFC 8446 §8): a ClientHello recorded on the wire
 * and replayed into another server instance, another process, or the same server after a
 * restart has its early data refused, and the handshake still completes as 1-RTT.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fc, test as fcTest } from '@fast-check/vitest';
import { joinBytes, toHex, utf8 } from '@stepwire/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileAntiReplayStore } from '../src/anti-replay.ts';
import { TlsClient } from '../src/client.ts';
import type { SessionTicket, TlsEvent } from '../src/connection.ts';
import { nodeCrypto } from '../src/crypto/index.ts';
import { TlsServer } from '../src/server.ts';
import { makeIdentity, pinnedVerifier, signerFor, type TestIdentity } from './helpers/node-auth.ts';
import { pump } from './helpers/pump.ts';

const NOW = 1_000_000;
const HOUR = 3_600_000;
const of = <T extends TlsEvent['type']>(events: TlsEvent[], type: T) =>
  events.filter((e): e is Extract<TlsEvent, { type: T }> => e.type === type);

let root: string;
let dirs = 0;
let ec: TestIdentity;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'stepwire-antireplay-'));
  ec = makeIdentity('stepwire.test', 'ec');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));
const freshDir = (): string => join(root, `register-${dirs++}`);

describe('FileAntiReplayStore', () => {
  it('answers true once per key, for this instance and for any later one on the same directory', () => {
    const dir = freshDir();
    const a = new FileAntiReplayStore(dir);
    expect(a.firstUse('k1', NOW + HOUR, NOW)).toBe(true);
    expect(a.firstUse('k1', NOW + HOUR, NOW)).toBe(false);
    expect(a.firstUse('k2', NOW + HOUR, NOW)).toBe(true);
    a.close();
    // A restart: a new instance reads the log.
    const b = new FileAntiReplayStore(dir);
    expect(b.firstUse('k1', NOW + HOUR, NOW + 1)).toBe(false);
    expect(b.firstUse('k2', NOW + HOUR, NOW + 1)).toBe(false);
    expect(b.firstUse('k3', NOW + HOUR, NOW + 1)).toBe(true);
    expect(b.counters.get('anti-replay.replayed')).toBe(2);
    b.close();
  });

  it('two instances open at once see each other’s appends', () => {
    const dir = freshDir();
    const a = new FileAntiReplayStore(dir);
    const b = new FileAntiReplayStore(dir);
    expect(a.firstUse('x', NOW + HOUR, NOW)).toBe(true);
    expect(b.firstUse('x', NOW + HOUR, NOW)).toBe(false);
    expect(b.firstUse('y', NOW + HOUR, NOW)).toBe(true);
    expect(a.firstUse('y', NOW + HOUR, NOW)).toBe(false);
    a.close();
    b.close();
  });

  fcTest.prop(
    [
      fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 15 })), {
        minLength: 1,
        maxLength: 60,
      }),
    ],
    { numRuns: 25 },
  )('across interleaved instances every key is accepted exactly once', (ops) => {
    const dir = freshDir();
    const stores = [0, 1, 2].map(() => new FileAntiReplayStore(dir));
    const accepted = new Map<number, number>();
    for (const [which, key] of ops) {
      const store = stores[which] as FileAntiReplayStore;
      // Keys spread over two segments by their expiry.
      if (store.firstUse(`key-${key}`, NOW + (key % 2 ? 2 * HOUR : HOUR), NOW))
        accepted.set(key, (accepted.get(key) ?? 0) + 1);
    }
    for (const s of stores) s.close();
    const distinct = new Set(ops.map(([, k]) => k));
    expect([...accepted.keys()].sort()).toEqual([...distinct].sort());
    expect([...accepted.values()].every((n) => n === 1)).toBe(true);
  });

  it('refuses an expired key, and deletes a segment once all its tickets have expired', () => {
    const dir = freshDir();
    const s = new FileAntiReplayStore(dir, { segmentMs: HOUR, clockSkewMs: 1000 });
    expect(s.firstUse('old', NOW - 1, NOW)).toBe(false);
    expect(s.counters.get('anti-replay.expired')).toBe(1);
    expect(s.firstUse('soon', NOW + 10, NOW)).toBe(true);
    expect(readdirSync(dir).length).toBe(1);
    const later = NOW + 2 * HOUR + 2000;
    expect(s.firstUse('fresh', later + HOUR, later)).toBe(true);
    expect(s.counters.get('anti-replay.pruned')).toBe(1);
    expect(readdirSync(dir).length).toBe(1);
    s.close();
  });

  it('is bounded: a full segment refuses new keys (0-RTT falls back to 1-RTT)', () => {
    const s = new FileAntiReplayStore(freshDir(), { maxEntriesPerSegment: 3 });
    for (const k of ['a', 'b', 'c']) expect(s.firstUse(k, NOW + HOUR, NOW)).toBe(true);
    expect(s.firstUse('d', NOW + HOUR, NOW)).toBe(false);
    expect(s.counters.get('anti-replay.full')).toBe(1);
    expect(s.diskBytes).toBe(3 * 32);
    s.close();
  });

  it('a torn or foreign segment file refuses everything in its period, and nothing throws', () => {
    const dir = freshDir();
    const s = new FileAntiReplayStore(dir);
    expect(s.firstUse('a', NOW + HOUR, NOW)).toBe(true);
    const [name] = readdirSync(dir);
    // A writer that died mid-entry.
    appendFileSync(join(dir, name as string), Uint8Array.of(1, 2, 3));
    expect(s.firstUse('b', NOW + HOUR, NOW)).toBe(false);
    expect(s.counters.get('anti-replay.broken-segment')).toBe(1);
    s.close();
    // Garbage in whole entries: the mark does not match.
    const dir2 = freshDir();
    const t = new FileAntiReplayStore(dir2);
    expect(t.firstUse('a', NOW + HOUR, NOW)).toBe(true);
    appendFileSync(join(dir2, readdirSync(dir2)[0] as string), new Uint8Array(32).fill(0xee));
    const u = new FileAntiReplayStore(dir2);
    expect(u.firstUse('c', NOW + HOUR, NOW)).toBe(false);
    expect(u.counters.get('anti-replay.broken-segment')).toBe(1);
    t.close();
    u.close();
  });

  it('a directory that disappears costs 0-RTT, not the server', () => {
    const dir = freshDir();
    const s = new FileAntiReplayStore(dir);
    rmSync(dir, { recursive: true });
    expect(s.firstUse('a', NOW + HOUR, NOW)).toBe(false);
    expect(s.counters.get('anti-replay.io-error')).toBe(1);
  });
});

describe('0-RTT replay across server instances and processes (RFC 8446 §8)', () => {
  const ticketKey = nodeCrypto.randomBytes(32);
  const server = (antiReplay: FileAntiReplayStore) =>
    new TlsServer({ crypto: nodeCrypto, signer: signerFor(ec), ticketKey, maxEarlyData: 1024, antiReplay });

  /** A ticket that allows 0-RTT, from a first full handshake. */
  function ticket(dir: string): SessionTicket {
    const store = new FileAntiReplayStore(dir);
    const client = new TlsClient({
      crypto: nodeCrypto,
      serverName: 'stepwire.test',
      verifier: pinnedVerifier([ec]),
    });
    const ev = pump(client, server(store), client.start(NOW), { now: NOW });
    store.close();
    const t = of(ev.a, 'session-ticket')[0]?.ticket;
    if (!t) throw new Error('no ticket');
    expect(t.maxEarlyDataSize).toBe(1024);
    return t;
  }

  function zeroRttClient(t: SessionTicket): { client: TlsClient; flight: ReturnType<TlsClient['start']> } {
    const client = new TlsClient({
      crypto: nodeCrypto,
      serverName: 'stepwire.test',
      verifier: pinnedVerifier([ec]),
      session: t,
      earlyData: utf8('POST /transfer'),
    });
    return { client, flight: client.start(NOW + 10) };
  }

  it('replay of a 0-RTT ClientHello into a restarted server instance: 0-RTT refused, 1-RTT handshake completes', () => {
    const dir = freshDir();
    const t = ticket(dir);
    const { client, flight } = zeroRttClient(t);

    // An attacker copies the flight (ClientHello + 0-RTT record) to a server instance first: accepted there.
    const first = new FileAntiReplayStore(dir);
    const attacked = server(first);
    const got = flight.data.flatMap((d) => attacked.receive(d, NOW + 10).events);
    expect(of(got, 'early-data').map((e) => e.data)).toEqual([utf8('POST /transfer')]);
    first.close();

    // The server process restarts (a new instance on the same register) and gets the same bytes.
    const second = new FileAntiReplayStore(dir);
    const restarted = server(second);
    const ev = pump(client, restarted, flight, { now: NOW + 10 });
    expect(of(ev.b, 'early-data')).toEqual([]);
    expect(restarted.counters.get('early-data.rejected')).toBe(1);
    expect(second.counters.get('anti-replay.replayed')).toBe(1);
    // The client learns 0-RTT was refused and finishes a resumed 1-RTT handshake.
    expect(of(ev.a, 'early-data-status')).toEqual([{ type: 'early-data-status', accepted: false }]);
    expect(of(ev.a, 'handshake-complete')[0]?.resumed).toBe(true);
    expect(client.state).toBe('CONNECTED');
    expect(restarted.state).toBe('CONNECTED');
    second.close();
  });

  it('replay of a 0-RTT ClientHello into a second server process is refused there', () => {
    const dir = freshDir();
    const t = ticket(dir);
    const { flight } = zeroRttClient(t);
    const bytes = joinBytes(flight.data);
    // Another process takes the flight first and accepts its early data...
    const child = fileURLToPath(new URL('./helpers/anti-replay-child.ts', import.meta.url));
    const run = () =>
      JSON.parse(
        execFileSync(
          process.execPath,
          ['--import', 'tsx', child, dir, toHex(ticketKey), toHex(bytes), String(NOW + 10)],
          { encoding: 'utf8', timeout: 60_000 },
        ),
      ) as { earlyData: number; rejected: number; accepted: number };
    expect(run()).toEqual({ earlyData: 1, rejected: 0, accepted: 1 });
    // ...so this process, on the same register, refuses the replay.
    const store = new FileAntiReplayStore(dir);
    const here = server(store);
    expect(of(here.receive(bytes, NOW + 10).events, 'early-data')).toEqual([]);
    expect(here.counters.get('early-data.rejected')).toBe(1);
    store.close();
  });
});
