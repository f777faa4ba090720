import { fc, test as fcTest } from '@fast-check/vitest';
import { Prng } from '@stepwire/wire';
import { describe, expect } from 'vitest';
import { QuicConnection } from '../src/connection/connection.ts';
import { derivePacketKeys, nodeQuicCrypto, QUIC_SUITE_BY_CODE } from '../src/crypto/keys.ts';
import { protectPacket } from '../src/crypto/protect.ts';
import { encodeFrames, type Frame } from '../src/frames/frame.ts';
import { encodePacketHeader } from '../src/packet/header.ts';
import { arbitraryFrames } from '../src/testing.ts';
import type { QuicTls, QuicTlsEvent } from '../src/tls/types.ts';
import { fakeTls, runPair } from './connection-helpers.ts';

/**
 * A peer that holds the keys and sends anything: authenticated 1-RTT packets whose frames
 * are arbitrary (the frame codec's arbitraries: any stream IDs, offsets, limits, connection
 * IDs, close codes...). Whatever they say, neither a server nor a client throws; it goes on or
 * closes with a transport error, and a closed connection stays quiet.
 */

function established(seed: number, target: 'server' | 'client') {
  const prng = new Prng(seed);
  const random = (n: number) => prng.bytes(n);
  // The application write secret of each side: the one playing the hostile peer lends its keys.
  const secrets: Partial<Record<'client' | 'server', Extract<QuicTlsEvent, { type: 'secret' }>>> = {};
  const wrap = (t: QuicTls): QuicTls => {
    const spy = (evs: QuicTlsEvent[]) => {
      for (const e of evs)
        if (e.type === 'secret' && e.level === 'application' && e.direction === 'write') secrets[t.role] = e;
      return evs;
    };
    return {
      role: t.role,
      start: (now) => spy(t.start(now)),
      receive: (level, data, now) => spy(t.receive(level, data, now)),
    };
  };
  const client = new QuicConnection({
    role: 'client',
    now: 0,
    random,
    tls: (tp) => wrap(fakeTls('client', tp, random(32))),
  });
  const server = new QuicConnection({
    role: 'server',
    now: 0,
    random,
    tls: (tp) => wrap(fakeTls('server', tp, random(32))),
    server: {
      originalDcid: client.remoteCid,
      initialDcid: client.remoteCid,
      clientScid: client.initialLocalCid,
    },
  });
  const r = runPair(
    client,
    server,
    prng,
    {},
    () => client.isHandshakeConfirmed && server.isHandshakeConfirmed,
  );
  const s = secrets[target === 'server' ? 'client' : 'server'];
  if (!s) throw new Error('no application secret');
  const victim = target === 'server' ? server : client;
  const dcid = target === 'server' ? client.remoteCid : client.initialLocalCid;
  const suite = QUIC_SUITE_BY_CODE.get(s.cipherSuite);
  if (!suite) throw new Error('suite');
  const keys = derivePacketKeys(nodeQuicCrypto, suite, s.secret);
  let pn = 100_000;
  /** A 1-RTT packet from the victim's peer carrying `frames`, protected with its real keys. */
  const forge = (frames: Frame[]): Uint8Array => {
    let payload = encodeFrames(frames);
    // Room for the header protection sample (RFC 9001 §5.4.2).
    if (payload.length < 20) {
      const padded = new Uint8Array(20);
      padded.set(payload);
      payload = padded;
    }
    const n = pn++;
    const head = encodePacketHeader(
      {
        type: '1-RTT',
        dcid,
        spinBit: false,
        reservedBits: 0,
        keyPhase: false,
        packetNumberLength: 4,
        truncatedPacketNumber: n % 2 ** 32,
      },
      payload.length + 16,
    );
    return protectPacket(keys, head, n, payload);
  };
  return { victim, forge, now: r.now };
}

describe('QuicConnection against authenticated hostile frames', () => {
  fcTest.prop(
    [
      fc.integer({ min: 1, max: 1000 }),
      fc.constantFrom('server' as const, 'client' as const),
      fc.array(arbitraryFrames, { minLength: 1, maxLength: 6 }),
    ],
    { numRuns: 150 },
  )('never throws; goes on or closes with a transport error (client or server)', (seed, target, payloads) => {
    const { victim: server, forge, now } = established(seed, target);
    let t = now;
    const before = server.counters.get('quic.rx.packets');
    let first = true;
    for (const frames of payloads) {
      t += 5;
      const packet = forge(frames);
      expect(() => server.handle(packet, t)).not.toThrow();
      // The forged packet authenticated and was processed (so its frames were really acted on).
      if (first) expect(server.counters.get('quic.rx.packets')).toBe(before + 1);
      first = false;
      expect(() => {
        for (let i = 0, d = server.pollTransmit(t); d && i < 1000; i++, d = server.pollTransmit(t));
      }).not.toThrow();
      const deadline = server.pollTimeout();
      if (deadline !== undefined) expect(() => server.handleTimeout(Math.max(t, deadline))).not.toThrow();
    }
    expect(['established', 'closing', 'draining', 'closed']).toContain(server.state);
    if (server.state === 'closing' && server.closeError) {
      expect(server.closeError.source).toBe('local');
      expect(server.closeError.application).toBe(false);
    }
  });
});
