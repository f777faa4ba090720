import { fc, test as fcTest } from '@fast-check/vitest';
import { bytesEqual, concatBytes, Prng, TraceBus, type TraceEvent } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { QuicConnection } from '../src/connection/connection.ts';
import type { QuicConnectionEvent } from '../src/connection/types.ts';
import { decodeFrames } from '../src/frames/frame.ts';
import { confirmedPair, connectionPair, fakeTls, type Impairment, runPair } from './connection-helpers.ts';

/**
 * Two of our connections against each other on a virtual clock, the TLS side played by a
 * fake with TLS 1.3's message flow (connection-helpers.ts). The real TLS machines and real
 * peers (ngtcp2) are in interop-*.test.ts.
 */

interface Echo {
  client: QuicConnection;
  server: QuicConnection;
  received: Map<number, Uint8Array>;
  finished: Set<number>;
  events: string[];
  now: number;
}

/** The client opens `streams` bidi streams, sends `body` on each; the server echoes; done when every echo ends. */
function echo(
  seed: number,
  body: Uint8Array,
  streams: number,
  imp: Impairment = {},
  limitMs = 120_000,
  extra: Parameters<typeof connectionPair>[1] = {},
): Echo {
  const { client, server, prng } = connectionPair(seed, extra);
  const received = new Map<number, Uint8Array>();
  const finished = new Set<number>();
  const events: string[] = [];
  const r = runPair(
    client,
    server,
    prng,
    imp,
    () => finished.size === streams,
    (side, e: QuicConnectionEvent) => {
      events.push(`${side}:${e.type}`);
      if (side === 'a' && e.type === 'connected') {
        for (let i = 0; i < streams; i++) client.write(client.openStream('bidi'), body, true);
      }
      if (side === 'b' && e.type === 'stream-data') server.write(e.id, e.data, e.fin);
      if (side === 'a' && e.type === 'stream-data') {
        received.set(e.id, concatBytes(received.get(e.id) ?? new Uint8Array(0), e.data));
        if (e.fin) finished.add(e.id);
      }
    },
    limitMs,
  );
  return { client, server, received, finished, events, now: r.now };
}

describe('QuicConnection with a fake TLS', () => {
  it('handshakes, confirms, and echoes a stream', () => {
    const body = new Prng(7).bytes(50_000);
    const r = echo(1, body, 1);
    expect(r.events).toContain('a:connected');
    expect(r.events).toContain('b:connected');
    expect(r.events).toContain('b:stream-opened');
    expect(r.finished.size).toBe(1);
    expect(bytesEqual(r.received.get(0) ?? new Uint8Array(0), body)).toBe(true);
    expect(r.client.isHandshakeConfirmed).toBe(true);
    expect(r.server.isHandshakeConfirmed).toBe(true);
    // Both sides issued extra connection IDs (RFC 9000 §5.1.1): the peer's limit is 4.
    expect(r.client.activeLocalCids.length).toBe(4);
    expect(r.server.activeLocalCids.length).toBe(4);
  });

  it('pads every datagram with a client Initial to 1200 bytes (RFC 9000 §14.1)', () => {
    const { client } = connectionPair(2);
    const d = client.pollTransmit(0);
    expect(d?.length).toBe(1200);
  });

  it('many streams at once, all delivered in order', () => {
    const body = new Prng(3).bytes(3000);
    const r = echo(3, body, 40);
    expect(r.finished.size).toBe(40);
    for (const [, got] of r.received) expect(bytesEqual(got, body)).toBe(true);
  });

  it('server stays within 3x what it received before the client address is validated (RFC 9000 §8.1)', () => {
    const { client, server } = connectionPair(4, { transport: { maxDatagramSize: 1200 } });
    const first = client.pollTransmit(0);
    expect(first).toBeDefined();
    server.handle(first as Uint8Array, 1);
    let sent = 0;
    for (let d = server.pollTransmit(1); d; d = server.pollTransmit(1)) sent += d.length;
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThanOrEqual(3 * 1200);
  });

  it('closes with an application error: the peer sees it, both end closed (RFC 9000 §10.2)', () => {
    const { client, server, prng } = connectionPair(5);
    const seen: QuicConnectionEvent[] = [];
    let closedAt: number | undefined;
    runPair(
      client,
      server,
      prng,
      {},
      () => client.isDrained && server.isDrained,
      (side, e, now) => {
        // Closed once the handshake is confirmed, so the close travels in 1-RTT only (RFC 9000 §10.2.3).
        if (side === 'a' && e.type === 'connected')
          client.write(client.openStream('bidi'), new Uint8Array([1]), true);
        if (side === 'b' && e.type === 'stream-data') server.write(e.id, e.data, e.fin);
        if (side === 'a' && e.type === 'stream-data') {
          client.close(now, 0x101, 'bye');
          closedAt = now;
        }
        if (side === 'b') seen.push(e);
      },
    );
    expect(closedAt).toBeDefined();
    const closed = seen.find((e) => e.type === 'closed');
    expect(closed).toEqual({
      type: 'closed',
      error: { source: 'peer', application: true, code: 0x101, reason: 'bye' },
    });
    expect(client.state).toBe('closed');
    expect(server.state).toBe('closed');
    expect(client.pollTimeout()).toBeUndefined();
  });

  it('idle timeout ends a silent connection (RFC 9000 §10.1)', () => {
    const { client, server, prng } = connectionPair(6, { transport: { maxIdleTimeout: 2000 } });
    const closed: QuicConnectionEvent[] = [];
    let cut = false;
    const imp: Impairment = {};
    const r = runPair(
      client,
      server,
      prng,
      imp,
      () => client.isDrained,
      (side, e) => {
        if (side === 'a' && e.type === 'connected') cut = true;
        if (side === 'a' && e.type === 'closed') closed.push(e);
      },
    );
    expect(cut).toBe(true);
    expect(closed[0]).toMatchObject({ type: 'closed', error: { source: 'idle-timeout' } });
    expect(r.now).toBeGreaterThanOrEqual(2000);
  });

  it('a TLS alert closes with CRYPTO_ERROR 0x100+alert (RFC 9001 §4.8)', () => {
    const { client, server, prng } = connectionPair(7, {}, { failWithAlert: 40 });
    const seen: QuicConnectionEvent[] = [];
    runPair(
      client,
      server,
      prng,
      {},
      () => client.isDrained && server.isDrained,
      (side, e) => {
        if (side === 'a') seen.push(e);
      },
    );
    expect(seen).toContainEqual({
      type: 'closed',
      error: expect.objectContaining({ source: 'peer', application: false, code: 0x128 }),
    });
  });

  it('RESET_STREAM and STOP_SENDING reach the peer as events', () => {
    const { client, server, prng } = connectionPair(8);
    const serverSaw: QuicConnectionEvent[] = [];
    const clientSaw: QuicConnectionEvent[] = [];
    let a = -1;
    let b = -1;
    runPair(
      client,
      server,
      prng,
      {},
      () => serverSaw.filter((e) => e.type === 'stream-reset').length === 2,
      (side, e) => {
        if (side === 'a' && e.type === 'connected') {
          a = client.openStream('bidi');
          client.write(a, new Uint8Array(100));
          b = client.openStream('uni');
          client.write(b, new Uint8Array(10));
        }
        if (side === 'b' && e.type === 'stream-data' && e.id === a) client.resetStream(a, 7);
        if (side === 'b' && e.type === 'stream-opened' && e.id === b) server.stopSending(b, 9);
        (side === 'a' ? clientSaw : serverSaw).push(e);
      },
    );
    expect(serverSaw).toContainEqual({ type: 'stream-reset', id: a, code: 7 });
    expect(clientSaw).toContainEqual({ type: 'stop-sending', id: b, code: 9 });
    // §3.5: the client answers STOP_SENDING with RESET_STREAM.
    expect(serverSaw).toContainEqual({ type: 'stream-reset', id: b, code: 9 });
  });

  it('flow control: a small window still moves a large body (MAX_STREAM_DATA / MAX_DATA, RFC 9000 §4)', () => {
    const trace = new TraceBus();
    const sent: string[] = [];
    trace.on((e) => {
      if (e.dir === 'out') sent.push(e.summary);
    });
    const { client, server, prng } = connectionPair(9, {
      trace,
      transport: {
        initialMaxData: 8000,
        initialMaxStreamDataBidiLocal: 4000,
        initialMaxStreamDataBidiRemote: 4000,
      },
    });
    const body = new Prng(9).bytes(100_000);
    let got: Uint8Array = new Uint8Array(0);
    let fin = false;
    runPair(
      client,
      server,
      prng,
      {},
      () => fin,
      (side, e) => {
        if (side === 'a' && e.type === 'connected') {
          const id = client.openStream('bidi');
          client.write(id, body, true);
        }
        if (side === 'b' && e.type === 'stream-data') {
          got = concatBytes(got, e.data);
          fin = e.fin;
        }
      },
    );
    expect(bytesEqual(got, body)).toBe(true);
    // The receiver raised its limits as it consumed; the sender said when it was blocked (§4.1).
    expect(sent.some((l) => l.includes('MAX_STREAM_DATA'))).toBe(true);
    expect(sent.some((l) => l.includes('MAX_DATA'))).toBe(true);
    expect(sent.some((l) => l.includes('DATA_BLOCKED'))).toBe(true);
  });

  it('stream limits: the peer raises MAX_STREAMS as streams finish (RFC 9000 §4.6)', () => {
    const { client, server, prng } = connectionPair(10, { transport: { initialMaxStreamsBidi: 4 } });
    let done = 0;
    let opened = 0;
    const total = 20;
    const openMore = () => {
      while (opened < total && client.canOpenStream('bidi')) {
        client.write(client.openStream('bidi'), new Uint8Array([opened]), true);
        opened++;
      }
    };
    runPair(
      client,
      server,
      prng,
      {},
      () => done === total,
      (side, e) => {
        if (side === 'a' && e.type === 'connected') openMore();
        if (side === 'b' && e.type === 'stream-data' && e.fin) server.write(e.id, e.data, true);
        if (side === 'a' && e.type === 'stream-data' && e.fin) done++;
        openMore();
      },
    );
    expect(done).toBe(total);
  });

  it('openStream beyond MAX_STREAMS throws and announces STREAMS_BLOCKED (RFC 9000 §4.6)', () => {
    const trace = new TraceBus();
    const sent: string[] = [];
    trace.on((e) => {
      if (e.dir === 'out' && e.host === 'client') sent.push(e.summary);
    });
    const { client, server, prng } = connectionPair(23, { trace, transport: { initialMaxStreamsUni: 2 } });
    let threw = false;
    runPair(
      client,
      server,
      prng,
      {},
      () => sent.some((l) => l.includes('STREAMS_BLOCKED')),
      (side, e) => {
        if (side === 'a' && e.type === 'connected') {
          client.openStream('uni');
          client.openStream('uni');
          try {
            client.openStream('uni');
          } catch {
            threw = true;
          }
        }
      },
    );
    expect(threw).toBe(true);
    expect(sent.some((l) => l.includes('STREAMS_BLOCKED uni 2'))).toBe(true);
  });

  it('key update initiated by one side and answered by the other (RFC 9001 §6)', () => {
    const { client, server, prng } = connectionPair(11);
    const body = new Prng(11).bytes(200_000);
    let got = 0;
    let updated = false;
    let id = -1;
    runPair(
      client,
      server,
      prng,
      {},
      () => got === body.length && server.keyUpdates >= 1,
      (side, e, now) => {
        if (side === 'a' && e.type === 'connected') {
          id = client.openStream('uni');
          client.write(id, body, true);
        }
        if (side === 'b' && e.type === 'stream-data') {
          got += e.data.length;
          if (!updated && got > 50_000 && client.initiateKeyUpdate(now)) updated = true;
        }
      },
    );
    expect(updated).toBe(true);
    expect(got).toBe(body.length);
    expect(client.keyUpdates).toBe(1);
    expect(server.keyUpdates).toBe(1);
  });

  it('updates keys on its own every keyUpdateInterval packets, through loss (RFC 9001 §6.6)', () => {
    const { client, server, prng } = connectionPair(24, { transport: { keyUpdateInterval: 40 } });
    const body = new Prng(24).bytes(150_000);
    let got = 0;
    runPair(
      client,
      server,
      prng,
      { loss: 0.03, reorder: 0.05 },
      () => got === body.length,
      (side, e) => {
        if (side === 'a' && e.type === 'connected') client.write(client.openStream('uni'), body, true);
        if (side === 'b' && e.type === 'stream-data') got += e.data.length;
      },
    );
    expect(got).toBe(body.length);
    // About 130 packets from the client: at least two updates of its own, each followed by the server.
    expect(client.keyUpdates).toBeGreaterThanOrEqual(2);
    expect(server.keyUpdates).toBe(client.keyUpdates);
  });

  it('every packet and frame is on the trace bus', () => {
    const trace = new TraceBus();
    const lines: TraceEvent[] = [];
    trace.on((e) => lines.push(e));
    confirmedPair(12, { trace });
    const summaries = lines.map((l) => l.summary);
    expect(summaries.some((s) => s.startsWith('Initial pn=0') && s.includes('CRYPTO'))).toBe(true);
    expect(summaries.some((s) => s.startsWith('Handshake') && s.includes('CRYPTO'))).toBe(true);
    expect(summaries.some((s) => s.startsWith('1-RTT') && s.includes('HANDSHAKE_DONE'))).toBe(true);
    expect(lines.some((l) => l.state?.to === 'established')).toBe(true);
  });

  it('hostile input is dropped and counted, never thrown', () => {
    const { client, server } = connectionPair(13);
    const first = client.pollTransmit(0) as Uint8Array;
    server.handle(first, 1);
    const rnd = new Prng(13);
    for (let i = 0; i < 200; i++) {
      const d = rnd.bytes(rnd.int(1, 1300));
      if (i % 2 === 0) d[0] = d[0]! & 0x7f; // short header: goes through the 1-RTT path
      expect(() => server.handle(d, 2)).not.toThrow();
    }
    expect(server.counters.total('quic.rx')).toBeGreaterThan(0);
    expect(server.state).toBe('handshaking');
    // Payload frames of a sealed packet are checked too: decodeFrames of junk throws ParseError only.
    expect(() => decodeFrames(new Uint8Array([0x40]))).toThrow();
  });
});

describe('QuicConnection rules, one at a time', () => {
  /** Runs a pair to a confirmed handshake with no loss; returns the virtual time. */
  const confirmed = (seed: number) => confirmedPair(seed);

  it('one ack-eliciting 1-RTT packet is acknowledged within max_ack_delay, not at once (RFC 9000 §13.2.1)', () => {
    const { client, server, now } = confirmed(20);
    // Let everything in flight settle first.
    for (let d = client.pollTransmit(now); d; d = client.pollTransmit(now)) server.handle(d, now);
    for (let d = server.pollTransmit(now); d; d = server.pollTransmit(now)) client.handle(d, now);
    const t = now + 100;
    client.ping();
    const d = client.pollTransmit(t) as Uint8Array;
    expect(d).toBeDefined();
    server.handle(d, t);
    // Nothing due yet: the ACK waits (a single packet is below the threshold of two).
    expect(server.pollTransmit(t)).toBeUndefined();
    const due = server.pollTimeout() as number;
    expect(due).toBeGreaterThan(t);
    expect(due).toBeLessThanOrEqual(t + 25);
    server.handleTimeout(due);
    expect(server.pollTransmit(due)).toBeDefined();
  });

  it('a server whose idea of the client SCID differs closes with TRANSPORT_PARAMETER_ERROR (RFC 9000 §7.3)', () => {
    const { client, prng } = connectionPair(21);
    const server = new QuicConnection({
      role: 'server',
      now: 0,
      random: (n) => prng.bytes(n),
      tls: (tp) => fakeTls('server', tp, prng.bytes(32)),
      server: {
        originalDcid: client.remoteCid,
        initialDcid: client.remoteCid,
        clientScid: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8),
      },
    });
    const seen: QuicConnectionEvent[] = [];
    runPair(
      client,
      server,
      prng,
      {},
      () => server.state !== 'handshaking',
      (side, e) => {
        if (side === 'b') seen.push(e);
      },
    );
    expect(seen).toContainEqual({
      type: 'closed',
      error: expect.objectContaining({ source: 'local', code: 0x08 }),
    });
  });

  it('a closed connection polls nothing, arms nothing and drops what arrives', () => {
    const { client, server, prng } = connectionPair(22);
    runPair(
      client,
      server,
      prng,
      {},
      () => client.isDrained,
      (side, e, now) => {
        if (side === 'a' && e.type === 'connected') client.close(now, 0, '', false);
      },
    );
    expect(client.state).toBe('closed');
    expect(client.pollTransmit(1e6)).toBeUndefined();
    expect(client.pollTimeout()).toBeUndefined();
    client.handle(new Uint8Array(50), 1e6);
    expect(client.counters.get('quic.rx.after-close')).toBe(1);
    expect(() => client.openStream('bidi')).toThrow();
  });
});

describe('QuicConnection over a lossy path (property)', () => {
  // Counterexamples the property once found (each a deadlock until fixed), kept as cases.
  it.each([
    // 1-RTT bytes filled the window before the handshake was confirmed (no PTO covers them,
    // RFC 9002 §6.2.1), so the client's lost Finished was never sent again.
    [2147483105, { loss: 0.25402315589599317, duplicate: 5e-324, reorder: 5e-324, corrupt: 5e-324 }, 6940],
    // The server's "blocked by the amplification limit" flag went stale once more bytes
    // arrived, leaving its lost Handshake flight without a PTO (RFC 9002 §6.2.2.1).
    [1925866211, { loss: 0.13435581489466134, duplicate: 5e-324, reorder: 5e-324, corrupt: 5e-324 }, 0],
  ] as const)('regression: seed %i completes', (seed, imp, size) => {
    const body = new Prng(seed).bytes(size);
    const r = echo(seed, body, 1, imp, 600_000);
    expect(r.finished.size).toBe(1);
    expect(bytesEqual(r.received.get(0) ?? new Uint8Array(0), body)).toBe(true);
  });

  fcTest.prop(
    [
      fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      fc.record({
        loss: fc.double({ min: 0, max: 0.25, noNaN: true }),
        duplicate: fc.double({ min: 0, max: 0.2, noNaN: true }),
        reorder: fc.double({ min: 0, max: 0.3, noNaN: true }),
        corrupt: fc.double({ min: 0, max: 0.05, noNaN: true }),
      }),
    ],
    { numRuns: 12 },
  )('bytes arrive intact both ways and nothing throws', (seed, imp) => {
    const body = new Prng(seed).bytes(30_000);
    // No idle timeout, as in the two properties below: at up to 25% loss RFC 9000 §10.1's idle
    // timer may end a connection whose RTT estimate grew to seconds, as specified; the claim
    // here is intact bytes, and a deadlock still fails it by not finishing within the limit.
    const r = echo(seed, body, 3, imp, 600_000, { transport: { maxIdleTimeout: 0 } });
    expect(r.finished.size).toBe(3);
    for (const [, got] of r.received) expect(bytesEqual(got, body)).toBe(true);
  });

  fcTest.prop(
    [
      fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      fc.record({
        loss: fc.double({ min: 0, max: 0.2, noNaN: true }),
        duplicate: fc.double({ min: 0, max: 0.2, noNaN: true }),
        reorder: fc.double({ min: 0, max: 0.4, noNaN: true }),
      }),
      fc.array(fc.constantFrom('finish', 'reset', 'stop', 'server-reset'), { minLength: 1, maxLength: 12 }),
    ],
    {
      numRuns: 25,
      examples: [
        // A lost copy of the client's RESET_STREAM re-armed it just before another copy's ACK
        // was handled; the stream, reset and acknowledged both ways, was never forgotten.
        [
          2092760342,
          { loss: 0.1925814074929804, duplicate: 5e-324, reorder: 0.39514041598886257 },
          ['finish', 'finish', 'reset'],
        ],
        // At 19% loss the server's first RTT sample came from a re-sent Initial ACK (6 s; such
        // ACKs carry no Ack Delay, RFC 9000 §19.3), its Handshake PTO grew to 18 s, and the
        // client's 30 s idle timer (RFC 9000 §10.1) ended the handshake: correct, not a leak.
        [1299788895, { loss: 0.19249678729102018, duplicate: 5e-324, reorder: 5e-324 }, ['finish']],
      ],
    },
  )(
    'streams finished, reset or stopped from either side all end, and both sides forget them',
    (seed, imp, plan) => {
      // The property is that streams end and are forgotten; an idle timeout under heavy loss
      // (RFC 9000 §10.1, the RTT estimate inflated to seconds by a late ACK) ends the
      // connection as specified and would prove nothing about streams, so none is set.
      const { client, server, prng } = connectionPair(seed, { transport: { maxIdleTimeout: 0 } });
      const body = new Prng(seed).bytes(5000);
      const outcome = new Map<number, string>();
      const ids: number[] = [];
      runPair(
        client,
        server,
        prng,
        imp,
        () => outcome.size === plan.length && client.stats().streams === 0 && server.stats().streams === 0,
        (side, e) => {
          if (side === 'a' && e.type === 'connected')
            for (const p of plan) {
              const id = client.openStream('bidi');
              ids.push(id);
              client.write(id, body, p !== 'reset');
              if (p === 'reset') client.resetStream(id, 1);
              if (p === 'stop') client.stopSending(id, 2);
            }
          // The server acts on events it may read after the stream is already gone: no throw.
          if (side === 'b' && e.type === 'stream-data') {
            if (plan[ids.indexOf(e.id)] === 'server-reset') server.resetStream(e.id, 3);
            else if (e.fin) server.write(e.id, new Uint8Array([1]), true);
          }
          if (side === 'b' && e.type === 'stream-reset') server.resetStream(e.id, 4);
          if (side === 'a' && (e.type === 'stream-reset' || (e.type === 'stream-data' && e.fin)))
            outcome.set(e.id, e.type);
          if (side === 'a' && e.type === 'stop-sending') outcome.set(e.id, 'stopped');
        },
        600_000,
      );
      expect(outcome.size).toBe(plan.length);
      expect(client.stats().streams).toBe(0);
      expect(server.stats().streams).toBe(0);
    },
  );

  fcTest.prop(
    [
      fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      fc.record({
        loss: fc.double({ min: 0, max: 0.2, noNaN: true }),
        duplicate: fc.double({ min: 0, max: 0.1, noNaN: true }),
        reorder: fc.double({ min: 0, max: 0.3, noNaN: true }),
      }),
      fc.integer({ min: 1, max: 30 }),
      fc.integer({ min: 0, max: 30_000 }),
      fc.integer({ min: 1200, max: 20_000 }),
      fc.integer({ min: 1, max: 5 }),
    ],
    {
      numRuns: 20,
      examples: [
        // The second stream waited for connection credit only and MAX_DATA, which names no
        // stream, never brought it back (RFC 9000 §4.1).
        [1, { loss: 0, duplicate: 0, reorder: 0 }, 2, 2873, 1200, 2],
        // At 18% loss a 30 s idle timeout ended this one, not a credit deadlock: its RTT
        // estimate had grown to seconds, so the server's FIN and its one probe were all that
        // fitted in three PTOs (RFC 9000 §10.1) before the idle timer fired.
        [791811848, { loss: 0.1833842443302274, duplicate: 5e-324, reorder: 5e-324 }, 9, 0, 1200, 1],
      ],
    },
  )(
    'small flow-control windows and stream limits: every stream still completes',
    (seed, imp, total, size, window, maxStreams) => {
      const { client, server, prng } = connectionPair(seed, {
        transport: {
          initialMaxData: window * 2,
          initialMaxStreamDataBidiLocal: window,
          initialMaxStreamDataBidiRemote: window,
          initialMaxStreamsBidi: maxStreams,
          // The property is liveness of credit, which a credit deadlock breaks by never
          // finishing within limitMs; an idle timeout under heavy loss is RFC 9000 §10.1
          // working as specified, and would hide nothing but fail the property.
          maxIdleTimeout: 0,
        },
      });
      const body = new Prng(seed).bytes(size);
      const got = new Map<number, Uint8Array>();
      let fins = 0;
      let opened = 0;
      const openMore = () => {
        while (opened < total && client.canOpenStream('bidi')) {
          client.write(client.openStream('bidi'), body, true);
          opened++;
        }
      };
      runPair(
        client,
        server,
        prng,
        imp,
        () => fins === total,
        (side, e) => {
          if (side === 'a' && (e.type === 'connected' || e.type === 'streams-available')) openMore();
          if (side === 'b' && e.type === 'stream-data') server.write(e.id, e.data, e.fin);
          if (side === 'a' && e.type === 'stream-data') {
            got.set(e.id, concatBytes(got.get(e.id) ?? new Uint8Array(0), e.data));
            if (e.fin) fins++;
          }
        },
        600_000,
      );
      expect(fins).toBe(total);
      for (const v of got.values()) expect(bytesEqual(v, body)).toBe(true);
    },
  );
});
