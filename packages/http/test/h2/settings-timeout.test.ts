/**
 * RFC 9113 §6.5.3: "If the sender of a SETTINGS frame does not receive an acknowledgment
 * within a reasonable amount of time, it MAY issue a connection error of type
 * SETTINGS_TIMEOUT." The time counts from when the frame is sent. The sans-I/O connection
 * cannot know when that is, so taking its output is sending it (output(now) stamps every
 * SETTINGS frame it hands over), and the session takes no output before its transport is
 * up (TCP connected, TLS handshake done). Until this, the clock started when the frame was
 * queued — before the TCP handshake — and a client on a 3 s one-way path died of
 * SETTINGS_TIMEOUT though the ACK came one RTT after its SETTINGS could leave.
 *
 * Paths: the simulated network with a fixed one-way delay (deterministic, seeded) over our
 * TCP and over our TLS, and node:tls to node:http2's server (nghttp2) on loopback.
 */
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { createNetwork, type Network } from '@stepwire/sim';
import { VirtualClock } from '@stepwire/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVER_NAME, tlsFixtures } from '../../../../test/support/tls-peers.ts';
import { Http2Connection } from '../../src/h2/connection.ts';
import { ErrorCode } from '../../src/h2/errors.ts';
import {
  CONNECTION_PREFACE,
  decodeFramePayload,
  encodeFrame,
  FrameReader,
  type Http2Frame,
} from '../../src/h2/frames.ts';
import { connect, createServer, type Http2Session } from '../../src/h2/session.ts';

/** The frames in `bytes` after the client preface (what a raw server received). */
function framesAfterPreface(bytes: Uint8Array): Http2Frame[] {
  const r = new FrameReader(1 << 24);
  r.push(bytes.subarray(CONNECTION_PREFACE.length));
  const out: Http2Frame[] = [];
  for (let f = r.next(); f; f = r.next()) out.push(decodeFramePayload(f.header, f.payload));
  return out;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(chunks));
}

/** Runs the simulation until `ms` of virtual time have passed. */
function sleep(net: Network, ms: number): Promise<void> {
  return net.run(new Promise<void>((r) => net.clock.setTimer(net.clock.now() + ms, () => r())));
}

describe('sans-I/O core: the clock starts when output() takes the frame', () => {
  it('no deadline while our SETTINGS is only queued; settingsTimeoutMs after output(now)', () => {
    const c = new Http2Connection({ role: 'client' });
    c.start(0);
    expect(c.nextTimeout()).toBeUndefined();
    // The transport came up at 6 s: that is when the preface and SETTINGS leave.
    expect(c.output(6_000).length).toBeGreaterThan(CONNECTION_PREFACE.length);
    expect(c.nextTimeout()).toBe(16_000);
    expect(c.onTimeout(15_999).some((e) => e.type === 'close')).toBe(false);
    const close = c.onTimeout(16_000).find((e) => e.type === 'close');
    expect(close).toMatchObject({ type: 'close', errorCode: ErrorCode.SETTINGS_TIMEOUT });
    expect(c.counters.get('h2.settings-timeout')).toBe(1);
    const goaway = new FrameReader(1 << 24);
    goaway.push(c.output(16_000));
    const f = goaway.next();
    expect(f && decodeFramePayload(f.header, f.payload)).toMatchObject({
      type: 'GOAWAY',
      errorCode: ErrorCode.SETTINGS_TIMEOUT,
    });
  });

  it('each SETTINGS frame times out from when it left; an ACK answers the oldest', () => {
    const c = new Http2Connection({ role: 'server' });
    c.start(0);
    c.output(100);
    c.updateSettings({ maxConcurrentStreams: 10 }, 2_000);
    // Queued at 2 s, taken at 4 s.
    expect(c.nextTimeout()).toBe(10_100);
    c.output(4_000);
    c.receive(CONNECTION_PREFACE, 5_000);
    c.receive(encodeFrame({ type: 'SETTINGS', ack: false, settings: [] }), 5_000);
    c.receive(encodeFrame({ type: 'SETTINGS', ack: true, settings: [] }), 5_000);
    expect(c.nextTimeout()).toBe(14_000);
    c.receive(encodeFrame({ type: 'SETTINGS', ack: true, settings: [] }), 6_000);
    expect(c.nextTimeout()).toBeUndefined();
    expect(c.ackedLocalSettings.maxConcurrentStreams).toBe(10);
  });
});

describe('simulated network, 3 s one-way delay (TCP handshake 6 s)', () => {
  it('regression: SETTINGS acknowledged one RTT after it left, no SETTINGS_TIMEOUT past 10 s (FL repro)', async () => {
    const net = createNetwork({ seed: 1, link: { delay: 3_000, loss: 0 } });
    const server = net.host('server');
    const browser = net.host('browser');
    const app = createServer({ clock: net.clock, hostName: 'server' }, (stream) => {
      stream.respond({ ':status': 200 });
      stream.end('hi');
    });
    server.tcp.createServer((s) => app.handle(s)).listen(80);
    const session = connect(`http://${server.ipv4}`, {
      clock: net.clock,
      createConnection: () => browser.tcp.connect({ host: server.ipv4, port: 80 }),
    });
    const errors: unknown[] = [];
    session.on('error', (e: unknown) => errors.push(e));
    const closes: number[] = [];
    session.on('connectionClose', (code: number) => closes.push(code));
    const get = () =>
      new Promise<number>((resolve, reject) => {
        const st = session.request({ ':path': '/' });
        let status = 0;
        st.on('response', (h) => {
          status = Number(h[':status']);
        });
        st.on('data', () => {});
        st.on('end', () => resolve(status));
        st.on('error', reject);
      });
    expect(await net.run(get())).toBe(200);
    await sleep(net, 15_000);
    expect(await net.run(get())).toBe(200);
    expect(net.clock.now()).toBeGreaterThan(20_000);
    expect(errors).toEqual([]);
    expect(closes).toEqual([]);
    expect(session.connection.counters.get('h2.settings-timeout')).toBe(0);
    session.close();
    app.close();
    await net.run(() => true);
    net.close();
  });

  it('a peer that never ACKs: SETTINGS_TIMEOUT exactly 10 s after the SETTINGS left (at TCP connect)', async () => {
    const net = createNetwork({ seed: 2, link: { delay: 3_000, loss: 0 } });
    const server = net.host('server');
    const client = net.host('client');
    const received: Uint8Array[] = [];
    // A server that sends its own SETTINGS and never acknowledges ours.
    server.tcp
      .createServer((s) => {
        s.write(encodeFrame({ type: 'SETTINGS', ack: false, settings: [] }));
        s.on('data', (b: Buffer) => received.push(new Uint8Array(b)));
        s.on('end', () => s.end());
      })
      .listen(80);
    let connectedAt: number | undefined;
    const session = connect(`http://${server.ipv4}`, {
      clock: net.clock,
      createConnection: () => {
        const s = client.tcp.connect({ host: server.ipv4, port: 80 });
        s.once('connect', () => {
          connectedAt = net.clock.now();
        });
        return s;
      },
    });
    const closed = new Promise<{ code: number; at: number }>((resolve) =>
      session.on('connectionClose', (code: number) => resolve({ code, at: net.clock.now() })),
    );
    session.on('error', () => {});
    const { code, at } = await net.run(closed);
    expect(code).toBe(ErrorCode.SETTINGS_TIMEOUT);
    expect(connectedAt).toBeGreaterThanOrEqual(6_000);
    expect(at).toBe((connectedAt ?? Number.NaN) + 10_000);
    await sleep(net, 10_000);
    // The peer was told why (RFC 9113 §5.4.1): GOAWAY SETTINGS_TIMEOUT after our SETTINGS.
    const frames = framesAfterPreface(concat(received));
    expect(frames[0]).toMatchObject({ type: 'SETTINGS', ack: false });
    expect(frames.find((f) => f.type === 'GOAWAY')).toMatchObject({ errorCode: ErrorCode.SETTINGS_TIMEOUT });
    net.close();
  });

  it('over our TLS: the clock starts at the end of the TLS handshake, SETTINGS_TIMEOUT 10 s later', async () => {
    const net = createNetwork({ seed: 3, link: { delay: 3_000, loss: 0 } });
    const server = net.host('server');
    const client = net.host('client');
    const received: Uint8Array[] = [];
    const tlsServer = server.tls.createServer({ port: 443, ALPNProtocols: ['h2'] }, (s) => {
      s.write(encodeFrame({ type: 'SETTINGS', ack: false, settings: [] }));
      s.on('data', (b: Buffer) => received.push(new Uint8Array(b)));
      s.on('error', () => {});
    });
    let secureAt: number | undefined;
    const session = connect(`https://${server.ipv4}`, {
      clock: net.clock,
      createConnection: () => {
        const s = client.tls.connect({
          host: server.ipv4,
          port: 443,
          servername: 'server.test',
          ALPNProtocols: ['h2'],
        });
        s.once('secureConnect', () => {
          secureAt = net.clock.now();
        });
        return s;
      },
    });
    const closed = new Promise<{ code: number; at: number }>((resolve) =>
      session.on('connectionClose', (code: number) => resolve({ code, at: net.clock.now() })),
    );
    session.on('error', () => {});
    const { code, at } = await net.run(closed);
    await sleep(net, 10_000);
    expect(code).toBe(ErrorCode.SETTINGS_TIMEOUT);
    // TCP (one 6 s RTT) then TLS 1.3 (one more) before application data can leave: the
    // clock queued-time would have fired at 10 s, before the handshake was even done.
    expect(secureAt).toBeGreaterThanOrEqual(12_000);
    expect(at).toBe((secureAt ?? Number.NaN) + 10_000);
    const frames = framesAfterPreface(concat(received));
    expect(frames[0]).toMatchObject({ type: 'SETTINGS', ack: false });
    expect(frames.find((f) => f.type === 'GOAWAY')).toMatchObject({ errorCode: ErrorCode.SETTINGS_TIMEOUT });
    tlsServer.close();
    await net.run(() => true);
    net.close();
  });

  it('PING RTT counts from when the PING left: one round trip, not the TCP handshake too', async () => {
    const net = createNetwork({ seed: 4, link: { delay: 3_000, loss: 0 } });
    const server = net.host('server');
    const client = net.host('client');
    const app = createServer({ clock: net.clock });
    server.tcp.createServer((s) => app.handle(s)).listen(80);
    const session = connect(`http://${server.ipv4}`, {
      clock: net.clock,
      createConnection: () => client.tcp.connect({ host: server.ipv4, port: 80 }),
    });
    // Asked for at t = 0, while TCP is still connecting.
    const rtt = new Promise<number>((resolve, reject) =>
      session.ping(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), (err, ms) => (err ? reject(err) : resolve(ms))),
    );
    const ms = await net.run(rtt);
    // 2 × 3 s, plus serialization; the old clock also counted the 6 s TCP handshake.
    expect(ms).toBeGreaterThanOrEqual(6_000);
    expect(ms).toBeLessThan(7_000);
    session.close();
    app.close();
    await net.run(() => true);
    net.close();
  });

  it('PINGs awaiting an ACK are bounded (pingBurst) and cancelled when the session is destroyed', async () => {
    const net = createNetwork({ seed: 6, link: { delay: 10, loss: 0 } });
    const server = net.host('server');
    const client = net.host('client');
    // A peer that reads and never answers: no ACK will come.
    server.tcp
      .createServer((s) => {
        s.on('data', () => {});
        s.on('error', () => {});
      })
      .listen(80);
    const session = connect(`http://${server.ipv4}`, {
      clock: net.clock,
      limits: { pingBurst: 4 },
      createConnection: () => client.tcp.connect({ host: server.ipv4, port: 80 }),
    });
    session.on('error', () => {});
    const results: string[] = [];
    for (let i = 0; i < 5; i++)
      session.ping(new Uint8Array(8).fill(i), (err) =>
        results.push(err ? String((err as { code?: string }).code ?? err.message) : 'ack'),
      );
    expect(results).toEqual(['too many PINGs awaiting an ACK']);
    await sleep(net, 1_000);
    session.destroy();
    expect(results).toEqual(['too many PINGs awaiting an ACK', ...Array(4).fill('ERR_HTTP2_PING_CANCEL')]);
    await sleep(net, 1_000);
    net.close();
  });

  it('close() while connecting: the GOAWAY still reaches the server (linger starts once bytes can leave)', async () => {
    const net = createNetwork({ seed: 5, link: { delay: 3_000, loss: 0 } });
    const server = net.host('server');
    const client = net.host('client');
    const received: Uint8Array[] = [];
    server.tcp
      .createServer((s) => {
        s.on('data', (b: Buffer) => received.push(new Uint8Array(b)));
        s.on('end', () => s.end());
        s.on('error', () => {});
      })
      .listen(80);
    const session = connect(`http://${server.ipv4}`, {
      clock: net.clock,
      createConnection: () => client.tcp.connect({ host: server.ipv4, port: 80 }),
    });
    session.on('error', () => {});
    const closed = new Promise<void>((r) => session.close(() => r()));
    await net.run(closed);
    await sleep(net, 10_000);
    const frames = framesAfterPreface(concat(received));
    expect(frames.map((f) => f.type)).toContain('GOAWAY');
    expect(frames.find((f) => f.type === 'GOAWAY')).toMatchObject({ errorCode: ErrorCode.NO_ERROR });
    net.close();
  });
});

describe('node:tls to node:http2 (nghttp2) on loopback', () => {
  const fx = tlsFixtures();
  const id = fx.server['P-256'];
  let server: http2.Http2SecureServer;
  let port = 0;
  const sessions = new Set<http2.ServerHttp2Session>();
  beforeAll(async () => {
    server = http2.createSecureServer({ cert: id.leaf.certPem, key: id.leaf.keyPem }, (_req, res) => {
      res.end('node');
    });
    server.on('session', (s) => {
      sessions.add(s);
      s.on('close', () => sessions.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    for (const s of sessions) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('the SETTINGS deadline is taken when secureConnect fires, not when the socket was made', async () => {
    // A virtual clock the test moves: 5 s "pass" during the TCP connect, before TLS is done.
    const clock = new VirtualClock();
    let deadlineAtSecure: number | undefined;
    let pendingBeforeSecure: number | undefined;
    const session: Http2Session = connect(`https://${SERVER_NAME}:${port}`, {
      clock,
      createConnection: () => {
        const s = tls.connect({
          host: '127.0.0.1',
          port,
          servername: SERVER_NAME,
          ca: id.ca.certPem,
          ALPNProtocols: ['h2'],
        });
        s.once('connect', () => {
          pendingBeforeSecure = session.connection.nextTimeout();
          clock.advance(5_000);
        });
        // This listener runs before the session's: look once the session has heard it too
        // (a tick, before any I/O can bring node:http2's ACK).
        s.once('secureConnect', () =>
          process.nextTick(() => {
            deadlineAtSecure = session.connection.nextTimeout();
          }),
        );
        return s;
      },
    });
    const body = await new Promise<string>((resolve, reject) => {
      const st = session.request({ ':path': '/' });
      let text = '';
      st.setEncoding('utf8');
      st.on('data', (d: string) => {
        text += d;
      });
      st.on('end', () => resolve(text));
      st.on('error', reject);
    });
    expect(body).toBe('node');
    expect(pendingBeforeSecure).toBeUndefined();
    expect(deadlineAtSecure).toBe(15_000);
    // node:http2 acknowledged it: no deadline left.
    expect(session.connection.nextTimeout()).toBeUndefined();
    await new Promise<void>((r) => session.close(() => r()));
  });
});
