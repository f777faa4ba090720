import { createHash } from 'node:crypto';
import { bytesEqual, concatBytes, Prng } from '@stepwire/wire';
import { QuicConnection } from '../src/connection/connection.ts';
import type { QuicConnectionEvent, QuicConnectionOptions } from '../src/connection/types.ts';
import type { QuicTls, QuicTlsEvent } from '../src/tls/types.ts';

/**
 * A stand-in for the tls package's QUIC mode with the same message flow (RFC 9001 §4.1,
 * Figure 4) and no cryptography worth the name: ClientHello and ServerHello at the Initial
 * level, EncryptedExtensions-with-parameters and Finished at the Handshake level, secrets
 * derived by hashing both randoms. It exercises the connection's side of the seam: CRYPTO
 * reassembly per level, keys installed from `secret` events, transport parameters carried
 * both ways, handshake completion. Messages are [type u8][length u24][body].
 */
type Level = 'initial' | 'handshake' | 'application';

function msg(type: number, body: Uint8Array): Uint8Array {
  const h = new Uint8Array([type, (body.length >> 16) & 0xff, (body.length >> 8) & 0xff, body.length & 0xff]);
  return concatBytes(h, body);
}

function secret(label: string, a: Uint8Array, b: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(label).update(a).update(b).digest());
}

export interface FakeTlsOptions {
  alpn?: string;
  /** Secrets use this TLS cipher suite code (0x1301 AES-128-GCM, 0x1303 ChaCha20). */
  cipherSuite?: number;
  /** Server: fail the handshake with this alert. */
  failWithAlert?: number;
}

export function fakeTls(
  role: 'client' | 'server',
  tp: Uint8Array,
  random: Uint8Array,
  o: FakeTlsOptions = {},
): QuicTls {
  const suite = o.cipherSuite ?? 0x1301;
  const buffers: Record<Level, Uint8Array> = {
    initial: new Uint8Array(0),
    handshake: new Uint8Array(0),
    application: new Uint8Array(0),
  };
  let peerRandom: Uint8Array | undefined;
  let peerTp: Uint8Array | undefined;
  const keysFor = (cr: Uint8Array, sr: Uint8Array, level: 'handshake' | 'application'): QuicTlsEvent[] => {
    const c = secret(`${level} c`, cr, sr);
    const s = secret(`${level} s`, cr, sr);
    return [
      {
        type: 'secret',
        level,
        direction: role === 'client' ? 'write' : 'read',
        secret: c,
        cipherSuite: suite,
      },
      {
        type: 'secret',
        level,
        direction: role === 'client' ? 'read' : 'write',
        secret: s,
        cipherSuite: suite,
      },
    ];
  };
  const complete = (): QuicTlsEvent => ({
    type: 'handshake-complete',
    alpn: o.alpn ?? 'fake',
    peerTransportParameters: peerTp ?? new Uint8Array(0),
    resumed: false,
    peerCertificates: [],
  });
  const onMessage = (level: Level, type: number, body: Uint8Array): QuicTlsEvent[] => {
    if (role === 'server' && level === 'initial' && type === 1) {
      if (o.failWithAlert !== undefined)
        return [{ type: 'error', alert: o.failWithAlert, reason: 'refused by the fake' }];
      peerRandom = body.subarray(0, 32);
      peerTp = body.slice(32);
      return [
        { type: 'crypto', level: 'initial', data: msg(2, random) },
        ...keysFor(peerRandom, random, 'handshake'),
        { type: 'crypto', level: 'handshake', data: concatBytes(msg(8, tp), msg(20, new Uint8Array(32))) },
        ...keysFor(peerRandom, random, 'application'),
      ];
    }
    if (role === 'client' && level === 'initial' && type === 2) {
      peerRandom = body.slice();
      return keysFor(random, peerRandom, 'handshake');
    }
    if (role === 'client' && level === 'handshake' && type === 8) {
      peerTp = body.slice();
      return [];
    }
    if (role === 'client' && level === 'handshake' && type === 20 && peerRandom) {
      return [
        ...keysFor(random, peerRandom, 'application'),
        { type: 'crypto', level: 'handshake', data: msg(20, new Uint8Array(32)) },
        complete(),
      ];
    }
    if (role === 'server' && level === 'handshake' && type === 20) return [complete()];
    return [{ type: 'error', alert: 10, reason: `unexpected message ${type} at ${level}` }];
  };
  return {
    role,
    start: () => [{ type: 'crypto', level: 'initial', data: msg(1, concatBytes(random, tp)) }],
    receive(level, data) {
      let buf = concatBytes(buffers[level], data);
      const out: QuicTlsEvent[] = [];
      while (buf.length >= 4) {
        const len = (buf[1]! << 16) | (buf[2]! << 8) | buf[3]!;
        if (buf.length < 4 + len) break;
        out.push(...onMessage(level, buf[0]!, buf.subarray(4, 4 + len)));
        buf = buf.subarray(4 + len);
      }
      buffers[level] = buf.slice();
      return out;
    },
  };
}

/** A client and a server connection wired to the fake TLS, with seeded randomness. */
export function connectionPair(
  seed: number,
  extra: Partial<QuicConnectionOptions> = {},
  tlsOpts: FakeTlsOptions = {},
): { client: QuicConnection; server: QuicConnection; prng: Prng } {
  const prng = new Prng(seed);
  const random = (n: number) => prng.bytes(n);
  const client = new QuicConnection({
    role: 'client',
    now: 0,
    random,
    tls: (tp) => fakeTls('client', tp, random(32), tlsOpts),
    ...extra,
  });
  const server = new QuicConnection({
    role: 'server',
    now: 0,
    random,
    tls: (tp) => fakeTls('server', tp, random(32), tlsOpts),
    server: {
      originalDcid: client.remoteCid,
      initialDcid: client.remoteCid,
      clientScid: client.initialLocalCid,
    },
    ...extra,
  });
  return { client, server, prng };
}

/** connectionPair run to a confirmed handshake (RFC 9001 §4.1.2) with no loss; `now` is the virtual time then. */
export function confirmedPair(
  seed: number,
  extra: Partial<QuicConnectionOptions> = {},
  tlsOpts: FakeTlsOptions = {},
): { client: QuicConnection; server: QuicConnection; prng: Prng; now: number } {
  const p = connectionPair(seed, extra, tlsOpts);
  const r = runPair(
    p.client,
    p.server,
    p.prng,
    {},
    () => p.client.isHandshakeConfirmed && p.server.isHandshakeConfirmed,
  );
  return { ...p, now: r.now };
}

export interface Impairment {
  loss?: number;
  duplicate?: number;
  /** Probability that a datagram is delayed by extra jitter (so reordered). */
  reorder?: number;
  /** Flip one byte (the AEAD must reject it). */
  corrupt?: number;
  oneWayDelay?: number;
}

/**
 * Runs two connections against each other on a virtual clock through a seeded impaired
 * path until `done()` or `limitMs` of virtual time. Returns every event each side polled.
 */
export function runPair(
  a: QuicConnection,
  b: QuicConnection,
  prng: Prng,
  imp: Impairment,
  done: (now: number) => boolean,
  onEvent: (side: 'a' | 'b', e: QuicConnectionEvent, now: number) => void = () => {},
  limitMs = 120_000,
): { now: number; datagrams: number } {
  let now = 0;
  let seq = 0;
  let datagrams = 0;
  const delay = imp.oneWayDelay ?? 10;
  const inFlight: { at: number; seq: number; to: QuicConnection; bytes: Uint8Array }[] = [];
  const send = (to: QuicConnection, bytes: Uint8Array) => {
    datagrams++;
    if (prng.chance(imp.loss ?? 0)) return;
    const copies = prng.chance(imp.duplicate ?? 0) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      let d = bytes;
      if (prng.chance(imp.corrupt ?? 0)) {
        d = bytes.slice();
        const at = prng.int(0, d.length - 1);
        d[at] = d[at]! ^ (1 + prng.int(0, 254));
      }
      const jitter = prng.chance(imp.reorder ?? 0) ? prng.int(1, 3 * delay) : 0;
      inFlight.push({ at: now + delay + jitter, seq: seq++, to, bytes: d });
    }
  };
  const drain = () => {
    for (const side of ['a', 'b'] as const) {
      const c = side === 'a' ? a : b;
      for (let e = c.pollEvent(); e; e = c.pollEvent()) onEvent(side, e, now);
    }
    for (let i = 0; i < 10_000; i++) {
      let any = false;
      for (const [from, to] of [
        [a, b],
        [b, a],
      ] as const) {
        const d = from.pollTransmit(now);
        if (d) {
          send(to, d);
          any = true;
        }
      }
      if (!any) break;
    }
  };
  drain();
  let stalled = 0;
  for (let step = 0; step < 2_000_000 && !done(now); step++) {
    inFlight.sort((x, y) => x.at - y.at || x.seq - y.seq);
    let next = inFlight[0]?.at;
    for (const c of [a, b]) {
      const t = c.pollTimeout();
      if (t !== undefined && (next === undefined || t < next)) next = t;
    }
    if (next === undefined || next > limitMs) break;
    // A deadline that does not move time forward again and again is a livelock: fail, not hang.
    stalled = next <= now ? stalled + 1 : 0;
    if (stalled > 1000) throw new Error(`livelock at t=${now}: a timer keeps firing without effect`);
    now = Math.max(now, next);
    while (inFlight.length > 0 && inFlight[0]!.at <= now) {
      const d = inFlight.shift()!;
      d.to.handle(d.bytes, now);
    }
    for (const c of [a, b]) {
      const t = c.pollTimeout();
      if (t !== undefined && t <= now) c.handleTimeout(now);
    }
    drain();
  }
  return { now, datagrams };
}

/**
 * The client uploads `body` on one stream from its `connected` event; runPair until the
 * server has all of it (or `limitMs`). `ok`: it arrived intact; `connectedAt`: the virtual time
 * of the client's `connected`, also handed to `onConnected` as it happens.
 */
export function uploadPair(
  client: QuicConnection,
  server: QuicConnection,
  prng: Prng,
  imp: Impairment,
  body: Uint8Array,
  o: { limitMs?: number; onConnected?: (now: number) => void } = {},
): { now: number; datagrams: number; ok: boolean; connectedAt: number | undefined } {
  let got: Uint8Array = new Uint8Array(0);
  let fin = false;
  let connectedAt: number | undefined;
  const r = runPair(
    client,
    server,
    prng,
    imp,
    () => fin,
    (side, e, now) => {
      if (side === 'a' && e.type === 'connected') {
        connectedAt = now;
        o.onConnected?.(now);
        client.write(client.openStream('bidi'), body, true);
      }
      if (side === 'b' && e.type === 'stream-data') {
        got = concatBytes(got, e.data);
        if (e.fin) fin = true;
      }
    },
    o.limitMs,
  );
  return { ...r, ok: fin && bytesEqual(got, body), connectedAt };
}
