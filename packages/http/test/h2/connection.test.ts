/** The sans-I/O connection: exchanges between our client and server, both roles. */
import { TraceBus, type TraceEvent } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { ErrorCode, Http2Connection, SettingId, STREAM_TRANSITIONS } from '../../src/h2/internal.ts';
import { Pair, RawPeer, req, status } from './harness.ts';

const bytes = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

describe('stream state table (RFC 9113 §5.1)', () => {
  it('has a fallback row for every state and direction, each citing its section', () => {
    const states = new Set(STREAM_TRANSITIONS.map((r) => r[0]));
    expect(states.size).toBe(8);
    for (const st of states)
      for (const dir of ['send', 'recv'] as const)
        expect(
          STREAM_TRANSITIONS.some((r) => r[0] === st && r[1] === dir && r[2] === '*'),
          `${st} ${dir}`,
        ).toBe(true);
    for (const r of STREAM_TRANSITIONS) expect(r[4]).toMatch(/RFC 9113 §/);
  });
});

describe('exchanges', () => {
  it('preface, SETTINGS both ways with ACKs, a GET and its response', () => {
    const p = new Pair();
    const id = p.client.request(req('/hello'), true);
    p.pump();
    expect(p.serverEvents.filter((e) => e.type === 'settingsAck')).toHaveLength(1);
    expect(p.clientEvents.filter((e) => e.type === 'settingsAck')).toHaveLength(1);
    const h = p.serverEvents.find((e) => e.type === 'headers');
    expect(h).toMatchObject({ streamId: 1, kind: 'request', endStream: true });
    expect(p.server.streamState(id)).toBe('half-closed (remote)');
    p.server.respond(id, status(200, { 'content-type': 'text/plain' }), false);
    p.server.sendData(id, new TextEncoder().encode('hi'), false);
    p.server.sendTrailers(id, [{ name: 'x-checksum', value: 'abc' }]);
    p.pump();
    const kinds = p.clientEvents.filter((e) => e.type === 'headers').map((e) => (e as { kind: string }).kind);
    expect(kinds).toEqual(['response', 'trailers']);
    expect(new TextDecoder().decode(p.bodyOf('client', id))).toBe('hi');
    expect(p.client.streamState(id)).toBe('closed');
    expect(p.server.streamState(id)).toBe('closed');
  });

  it('many concurrent streams, each body intact, through small windows (flow control at both levels)', () => {
    const p = new Pair(
      { settings: { initialWindowSize: 1000 }, connectionWindow: 65_535 },
      { settings: { initialWindowSize: 1000 } },
    );
    const ids = Array.from({ length: 20 }, (_, i) => p.client.request(req(`/${i}`, 'POST'), false));
    ids.forEach((id, i) => {
      p.client.sendData(id, bytes(50_000, i), true);
    });
    p.pump(100_000);
    ids.forEach((id, i) => {
      expect(Buffer.from(p.bodyOf('server', id)).equals(bytes(50_000, i))).toBe(true);
    });
    for (const id of ids) {
      p.server.respond(id, status(200), false);
      p.server.sendData(id, bytes(30_000, id), true);
    }
    p.pump(100_000);
    for (const id of ids) expect(Buffer.from(p.bodyOf('client', id)).equals(bytes(30_000, id))).toBe(true);
  });

  it('a sender never exceeds the windows: without WINDOW_UPDATE it stops at exactly the window', () => {
    const p = new Pair({}, { settings: { initialWindowSize: 10_000 } });
    p.autoConsume = false;
    p.pump();
    const id = p.client.request(req('/', 'POST'), false);
    p.client.sendData(id, bytes(100_000), true);
    p.pump();
    expect(p.bodyOf('server', id).length).toBe(10_000);
    expect(p.client.bufferedAmount(id)).toBe(90_000);
    p.server.consumed(id, 10_000);
    p.pump();
    expect(p.bodyOf('server', id).length).toBe(20_000);
  });

  it('SETTINGS_INITIAL_WINDOW_SIZE changes apply to open streams (RFC 9113 §6.9.2)', () => {
    const p = new Pair({}, { settings: { initialWindowSize: 5_000 } });
    p.autoConsume = false;
    p.pump();
    const id = p.client.request(req('/', 'POST'), false);
    p.client.sendData(id, bytes(20_000), false);
    p.pump();
    expect(p.client.sendWindow(id)).toBe(0);
    p.server.updateSettings({ initialWindowSize: 8_000 });
    p.pump();
    expect(p.bodyOf('server', id).length).toBe(8_000);
    // Lowering makes the window negative (allowed, §6.9.2): nothing more is sent.
    p.server.updateSettings({ initialWindowSize: 1_000 });
    p.pump();
    expect(p.client.sendWindow(id)).toBe(-7_000);
    expect(p.bodyOf('server', id).length).toBe(8_000);
  });

  it('WINDOW_UPDATE policy keeps a fast sender busy: credit returns after a quarter window', () => {
    const p = new Pair({}, { settings: { initialWindowSize: 64 * 1024 } });
    p.pump();
    const id = p.client.request(req('/', 'POST'), false);
    p.client.sendData(id, bytes(16 * 1024), false);
    p.pump();
    // 16 KiB consumed of 64 KiB: one update of 16 KiB, the window is full again.
    expect(p.client.sendWindow(id)).toBe(64 * 1024);
  });

  it('WINDOW_UPDATE policy on a long link: 16 MiB arrive in a few round trips, not one per 64 KiB', () => {
    // Each pump exchange is half a round trip of a high-latency link: both sides send all
    // they may and it arrives. The 1 MiB stream window is credited back in quarters, so
    // the sender moves a full window per round trip: 16 MiB in about 16 round trips,
    // where RFC 9113's default 65 535-octet windows need 256.
    const p = new Pair();
    p.pump();
    const id = p.client.request(req('/', 'POST'), false);
    p.client.sendData(id, new Uint8Array(16 << 20), true);
    const rtts = p.pump();
    expect(
      p.serverEvents.reduce((n, e) => n + (e.type === 'data' && e.streamId === id ? e.data.length : 0), 0),
    ).toBe(16 << 20);
    expect(rtts / 2).toBeLessThanOrEqual(20);
    // The RFC's default windows, for comparison.
    const slow = new Pair(
      { settings: { initialWindowSize: 65_535 }, connectionWindow: 65_535 },
      { settings: { initialWindowSize: 65_535 }, connectionWindow: 65_535 },
    );
    slow.pump();
    const id2 = slow.client.request(req('/', 'POST'), false);
    slow.client.sendData(id2, new Uint8Array(16 << 20), true);
    expect(slow.pump(10_000) / 2).toBeGreaterThanOrEqual(256);
  });

  it('a request split across HEADERS and CONTINUATION (large headers)', () => {
    const p = new Pair();
    p.pump();
    const big = Array.from({ length: 40 }, (_, i) => ({ name: `x-h${i}`, value: 'v'.repeat(1000) + i }));
    const id = p.client.request([...req('/'), ...big], true);
    p.pump();
    const h = p.serverEvents.find((e) => e.type === 'headers' && e.streamId === id) as { headers: unknown[] };
    expect(h.headers).toHaveLength(44);
  });

  it('PING is answered with the same payload', () => {
    const p = new Pair();
    p.client.ping(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]));
    p.pump();
    expect(p.clientEvents.find((e) => e.type === 'pingAck')).toMatchObject({
      payload: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]),
    });
  });

  it('server push when the client allows it; refused with RST_STREAM by a client that does not want it', () => {
    const p = new Pair({ settings: { enablePush: true } });
    const id = p.client.request(req('/'), true);
    p.pump();
    const pid = p.server.push(id, req('/style.css'));
    p.server.respond(id, status(200), false);
    p.server.sendData(id, bytes(10), true);
    p.server.respond(pid, status(200), false);
    p.server.sendData(pid, bytes(20), true);
    p.pump();
    const push = p.clientEvents.find((e) => e.type === 'push');
    expect(push).toMatchObject({ streamId: id, promisedStreamId: 2 });
    expect(Buffer.from(p.bodyOf('client', pid)).equals(bytes(20))).toBe(true);
    // The client refuses the next one.
    const id2 = p.client.request(req('/2'), true);
    p.pump();
    const pid2 = p.server.push(id2, req('/x.js'));
    p.pump();
    p.client.reset(pid2, ErrorCode.REFUSED_STREAM);
    p.pump();
    expect(p.serverEvents.find((e) => e.type === 'streamReset' && e.streamId === pid2)).toMatchObject({
      errorCode: ErrorCode.REFUSED_STREAM,
      remote: true,
    });
  });

  it('a server never pushes to a client that disabled push (our client default)', () => {
    const p = new Pair();
    const id = p.client.request(req('/'), true);
    p.pump();
    expect(() => p.server.push(id, req('/a'))).toThrow(/disabled push/);
  });

  it('GOAWAY graceful shutdown: in-flight streams finish, later ones are refused, then close', () => {
    const p = new Pair();
    const a = p.client.request(req('/a'), true);
    p.pump();
    p.server.goaway();
    const b = p.client.request(req('/b'), true);
    p.pump();
    // b was sent before the client saw GOAWAY: it is above last-stream-id and refused locally.
    expect(p.clientEvents.find((e) => e.type === 'goaway')).toMatchObject({ lastStreamId: a });
    expect(p.clientEvents.find((e) => e.type === 'streamReset' && e.streamId === b)).toMatchObject({
      errorCode: ErrorCode.REFUSED_STREAM,
    });
    // The refusal comes before the stream is announced closed: a driver forgets a stream
    // it hears closed, and would drop the refusal (the request then hung, never retried).
    const refusedAt = p.clientEvents.findIndex((e) => e.type === 'streamReset' && e.streamId === b);
    const closedAt = p.clientEvents.findIndex((e) => e.type === 'streamClosed' && e.streamId === b);
    expect(refusedAt).toBeGreaterThanOrEqual(0);
    expect(closedAt).toBeGreaterThan(refusedAt);
    expect(p.server.isClosed).toBe(false);
    p.server.respond(a, status(204), true);
    p.pump();
    expect(p.clientEvents.find((e) => e.type === 'headers' && e.streamId === a)).toBeDefined();
    expect(p.server.isClosed).toBe(true);
    expect(p.client.isClosed).toBe(true);
    expect(() => p.client.request(req('/c'), true)).toThrow(/going away/);
  });

  it('concurrency limit: streams beyond SETTINGS_MAX_CONCURRENT_STREAMS wait on our side', () => {
    const p = new Pair({}, { settings: { maxConcurrentStreams: 2 } });
    p.pump();
    const ids = [1, 2, 3, 4].map((i) => p.client.request(req(`/${i}`), true));
    p.pump();
    expect(p.serverEvents.filter((e) => e.type === 'headers')).toHaveLength(2);
    p.server.respond(ids[0] as number, status(200), true);
    p.pump();
    expect(p.serverEvents.filter((e) => e.type === 'headers')).toHaveLength(3);
  });

  it('RFC 9218 priorities: the lower urgency stream is sent first', () => {
    const p = new Pair();
    const lo = p.client.request([...req('/lo'), { name: 'priority', value: 'u=5' }], true);
    const hi = p.client.request([...req('/hi'), { name: 'priority', value: 'u=0' }], true);
    p.pump();
    p.server.respond(lo, status(200), false);
    p.server.sendData(lo, bytes(1000), true);
    p.server.respond(hi, status(200), false);
    p.server.sendData(hi, bytes(1000), true);
    p.pump();
    const order = p.clientEvents
      .filter((e) => e.type === 'data')
      .map((e) => (e as { streamId: number }).streamId);
    expect(order[0]).toBe(hi);
  });

  it('extended CONNECT (RFC 8441): :protocol accepted only after SETTINGS_ENABLE_CONNECT_PROTOCOL, stream stays open both ways', () => {
    const connect = [
      { name: ':method', value: 'CONNECT' },
      { name: ':protocol', value: 'websocket' },
      { name: ':scheme', value: 'https' },
      { name: ':authority', value: 'test' },
      { name: ':path', value: '/chat' },
    ];
    const p = new Pair({}, { settings: { enableConnectProtocol: true } });
    p.pump();
    expect(p.client.remoteSettings.enableConnectProtocol).toBe(true);
    const id = p.client.request(connect, false);
    p.pump();
    expect(p.serverEvents.find((e) => e.type === 'headers')).toMatchObject({
      streamId: id,
      kind: 'request',
      endStream: false,
    });
    p.server.respond(id, status(200), false);
    p.client.sendData(id, Uint8Array.of(1, 2, 3), false);
    p.server.sendData(id, Uint8Array.of(4, 5), false);
    p.pump();
    expect(p.server.streamState(id)).toBe('open');
    expect([...p.bodyOf('server', id)]).toEqual([1, 2, 3]);
    expect([...p.bodyOf('client', id)]).toEqual([4, 5]);
    // Without the setting, :protocol makes the request malformed (RFC 8441 §4).
    const q = new Pair();
    const id2 = q.client.request(connect, false);
    q.pump();
    expect(q.clientEvents.find((e) => e.type === 'streamReset')).toMatchObject({
      streamId: id2,
      errorCode: ErrorCode.PROTOCOL_ERROR,
    });
  });

  it('traces every frame and every stream state change with the RFC rule that made it', () => {
    const trace = new TraceBus();
    const seen: TraceEvent[] = [];
    trace.on((e) => seen.push(e));
    const p = new Pair({}, { trace, hostName: 'srv' });
    const id = p.client.request(req('/'), true);
    p.pump();
    p.server.respond(id, status(204), true);
    p.pump();
    const states = seen.filter((e) => e.state).map((e) => `${e.state?.from}→${e.state?.to}`);
    expect(states).toEqual(['idle→open', 'open→half-closed (remote)', 'half-closed (remote)→closed']);
    expect(seen.filter((e) => e.state).every((e) => /RFC 9113 §5\.1/.test(e.rfc ?? ''))).toBe(true);
    expect(seen.some((e) => e.dir === 'in' && e.summary.startsWith('HEADERS s=1'))).toBe(true);
    expect(seen.some((e) => e.dir === 'out' && e.summary.startsWith('HEADERS s=1'))).toBe(true);
  });

  it('RFC 9218 PRIORITY_UPDATE re-prioritizes a stream the server has not answered yet', () => {
    const p = new Pair();
    const a = p.client.request(req('/a'), true);
    const b = p.client.request(req('/b'), true);
    p.pump();
    p.client.priorityUpdate(b, 'u=0');
    p.pump();
    expect(p.serverEvents.find((e) => e.type === 'priorityUpdate')).toMatchObject({
      streamId: b,
      urgency: 0,
    });
    for (const id of [a, b]) {
      p.server.respond(id, status(200), false);
      p.server.sendData(id, bytes(100), true);
    }
    p.pump();
    const order = p.clientEvents
      .filter((e) => e.type === 'data')
      .map((e) => (e as { streamId: number }).streamId);
    expect(order[0]).toBe(b);
  });

  it('SETTINGS with every defined setting are applied and acknowledged', () => {
    const peer = new RawPeer(new Http2Connection({ role: 'server' }));
    peer.handshake([
      [SettingId.HEADER_TABLE_SIZE, 0],
      [SettingId.ENABLE_PUSH, 0],
      [SettingId.MAX_CONCURRENT_STREAMS, 7],
      [SettingId.INITIAL_WINDOW_SIZE, 1234],
      [SettingId.MAX_FRAME_SIZE, 20000],
      [SettingId.MAX_HEADER_LIST_SIZE, 9999],
      [SettingId.ENABLE_CONNECT_PROTOCOL, 1],
      [SettingId.NO_RFC7540_PRIORITIES, 1],
      [0x7777, 5],
    ]);
    expect(peer.conn.remoteSettings).toEqual({
      headerTableSize: 0,
      enablePush: false,
      maxConcurrentStreams: 7,
      initialWindowSize: 1234,
      maxFrameSize: 20000,
      maxHeaderListSize: 9999,
      enableConnectProtocol: true,
      noRfc7540Priorities: true,
    });
  });
});
