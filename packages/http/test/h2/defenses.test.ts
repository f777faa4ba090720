/** Flood and exhaustion defenses: each bounded by a limit, each answered, each counted. */
import { describe, expect, it } from 'vitest';
import { ErrorCode, Http2Connection, type Http2Frame } from '../../src/h2/internal.ts';
import { Pair, RawPeer, req } from './harness.ts';

const server = (limits = {}, settings = {}) => {
  const p = new RawPeer(new Http2Connection({ role: 'server', limits, settings }));
  p.handshake();
  return p;
};

describe('defenses', () => {
  it('rapid reset (CVE-2023-44487): a burst of open-and-cancel streams ends in GOAWAY ENHANCE_YOUR_CALM', () => {
    const p = server();
    let id = 1;
    for (; id < 2000 && !p.conn.isClosed; id += 2) {
      p.headers(id, req(), false);
      p.frame({ type: 'RST_STREAM', streamId: id, errorCode: ErrorCode.CANCEL });
    }
    expect(p.goaway()?.errorCode).toBe(ErrorCode.ENHANCE_YOUR_CALM);
    // Stopped at the burst limit (200), not after 1000 streams.
    expect(id).toBeLessThan(2 * 210);
    expect(p.conn.counters.get('h2.flood.rapid-reset')).toBe(1);
  });

  it('rapid reset: the same number of cancels spread over time is allowed', () => {
    const p = server();
    for (let id = 1; id < 1000; id += 2) {
      p.now += 20; // 50 per second, under the 100/s refill
      p.headers(id, req(), false);
      p.frame({ type: 'RST_STREAM', streamId: id, errorCode: ErrorCode.CANCEL });
    }
    expect(p.conn.isClosed).toBe(false);
  });

  it('CONTINUATION flood (CVE-2024-27316): endless CONTINUATION frames are cut off at the frame limit', () => {
    const p = server();
    const block = p.enc.encode(req());
    p.frame({ type: 'HEADERS', streamId: 1, endStream: true, endHeaders: false, headerBlockFragment: block });
    let sent = 0;
    for (; sent < 10_000 && !p.conn.isClosed; sent++)
      p.frame({
        type: 'CONTINUATION',
        streamId: 1,
        endHeaders: false,
        headerBlockFragment: Uint8Array.of(0x40, 1, 0x61, 1, 0x62),
      });
    expect(p.goaway()?.errorCode).toBe(ErrorCode.ENHANCE_YOUR_CALM);
    expect(sent).toBe(65);
  });

  it('CONTINUATION flood: a header block above the byte limit is refused before it is decoded', () => {
    const p = server({ maxHeaderBlockSize: 10_000 });
    p.frame({
      type: 'HEADERS',
      streamId: 1,
      endStream: true,
      endHeaders: false,
      headerBlockFragment: new Uint8Array(8000),
    });
    p.frame({
      type: 'CONTINUATION',
      streamId: 1,
      endHeaders: false,
      headerBlockFragment: new Uint8Array(8000),
    });
    expect(p.goaway()?.errorCode).toBe(ErrorCode.ENHANCE_YOUR_CALM);
  });

  it('HPACK bomb: a header list above SETTINGS_MAX_HEADER_LIST_SIZE gets 431 and the connection lives on', () => {
    const p = server({}, { maxHeaderListSize: 16_384 });
    // One 4000-octet entry into the table, then a block of 1000 one-octet references to it.
    p.headers(1, [...req(), { name: 'x-big', value: 'b'.repeat(4000) }]);
    const bomb = new Uint8Array(1000).fill(0xbe);
    p.frame({
      type: 'HEADERS',
      streamId: 3,
      endStream: true,
      endHeaders: true,
      headerBlockFragment: Uint8Array.of(...p.enc.encode(req()), ...bomb),
    });
    const out = p.read();
    const h = out.find((f) => f.type === 'HEADERS' && f.streamId === 3);
    expect(h).toBeDefined();
    expect(p.dec.decode((h as Extract<Http2Frame, { type: 'HEADERS' }>).headerBlockFragment)).toEqual([
      { name: ':status', value: '431' },
    ]);
    expect(p.conn.isClosed).toBe(false);
    expect(p.conn.counters.get('h2.header-list-too-large')).toBe(1);
  });

  it('SETTINGS flood: more SETTINGS than the rate allows ends in ENHANCE_YOUR_CALM', () => {
    const p = server();
    for (let i = 0; i < 1000 && !p.conn.isClosed; i++)
      p.frame({ type: 'SETTINGS', ack: false, settings: [] });
    expect(p.goaway()?.errorCode).toBe(ErrorCode.ENHANCE_YOUR_CALM);
    expect(p.conn.counters.get('h2.flood.settings')).toBe(1);
  });

  it('PING flood: more PINGs than the rate allows ends in ENHANCE_YOUR_CALM', () => {
    const p = server();
    let n = 0;
    for (; n < 1000 && !p.conn.isClosed; n++)
      p.frame({ type: 'PING', ack: false, opaqueData: new Uint8Array(8) });
    expect(p.goaway()?.errorCode).toBe(ErrorCode.ENHANCE_YOUR_CALM);
    expect(n).toBe(65);
  });

  it('PING flood against a peer that does not read: the owed-frames queue is bounded', () => {
    const p = server({ pingBurst: 1e9, pingsPerSecond: 1e9, maxQueuedControlFrames: 100 });
    for (let i = 0; i < 1000 && !p.conn.isClosed; i++)
      p.frame({ type: 'PING', ack: false, opaqueData: new Uint8Array(8) });
    expect(p.conn.isClosed).toBe(true);
    expect(p.conn.counters.get('h2.flood.control-queue')).toBe(1);
    expect(p.goaway()?.errorCode).toBe(ErrorCode.ENHANCE_YOUR_CALM);
  });

  it('empty DATA flood (CVE-2019-9518): frames without payload are cut off', () => {
    const p = server();
    p.headers(1, req('/', 'POST'), false);
    let n = 0;
    for (; n < 10_000 && !p.conn.isClosed; n++)
      p.frame({ type: 'DATA', streamId: 1, endStream: false, data: new Uint8Array(0) });
    expect(p.goaway()?.errorCode).toBe(ErrorCode.ENHANCE_YOUR_CALM);
    expect(n).toBe(101);
  });

  it('WINDOW_UPDATE flood: more updates than the rate allows ends in ENHANCE_YOUR_CALM', () => {
    const p = server({ windowUpdateBurst: 500 });
    p.headers(1, req(), false);
    let n = 0;
    for (; n < 10_000 && !p.conn.isClosed; n++)
      p.frame({ type: 'WINDOW_UPDATE', streamId: 1, windowSizeIncrement: 1 });
    expect(p.goaway()?.errorCode).toBe(ErrorCode.ENHANCE_YOUR_CALM);
    expect(n).toBe(501);
  });

  it('zero-window stall: a response held behind a window that never opens is reset and its memory freed', () => {
    const conn = new Http2Connection({ role: 'server', limits: { stallTimeoutMs: 5_000 } });
    const p = new RawPeer(conn);
    p.handshake([[4, 0]]); // SETTINGS_INITIAL_WINDOW_SIZE 0
    p.headers(1, req(), true);
    conn.respond(1, [{ name: ':status', value: '200' }], false);
    conn.sendData(1, new Uint8Array(1 << 20), true);
    p.read();
    expect(conn.bufferedAmount(1)).toBe(1 << 20);
    const deadline = conn.nextTimeout();
    expect(deadline).toBe(5_000);
    conn.onTimeout(4_999);
    expect(conn.bufferedAmount(1)).toBe(1 << 20);
    const evs = conn.onTimeout(5_000);
    expect(evs.find((e) => e.type === 'streamReset')).toMatchObject({
      streamId: 1,
      errorCode: ErrorCode.CANCEL,
    });
    expect(conn.bufferedAmount(1)).toBe(0);
    expect(p.read().find((f) => f.type === 'RST_STREAM')).toMatchObject({
      streamId: 1,
      errorCode: ErrorCode.CANCEL,
    });
    expect(conn.counters.get('h2.stall.stream')).toBe(1);
  });

  it('SETTINGS never acknowledged: SETTINGS_TIMEOUT (RFC 9113 §6.5.3)', () => {
    const conn = new Http2Connection({ role: 'server', limits: { settingsTimeoutMs: 1000 } });
    const p = new RawPeer(conn);
    p.send(new TextEncoder().encode('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
    p.frame({ type: 'SETTINGS', ack: false, settings: [] });
    // The clock starts when our SETTINGS is taken to be sent (output), here at t = 0.
    expect(conn.nextTimeout()).toBeUndefined();
    p.read();
    expect(conn.nextTimeout()).toBe(1000);
    conn.onTimeout(1000);
    expect(p.goaway()?.errorCode).toBe(ErrorCode.SETTINGS_TIMEOUT);
  });

  it('stream-id exhaustion: the client refuses a stream past 2^31-1 and goes away so a new connection is used', () => {
    const p = new Pair({ firstStreamId: 0x7ffffffd });
    const a = p.client.request(req('/a'), true);
    const b = p.client.request(req('/b'), true);
    expect([a, b]).toEqual([0x7ffffffd, 0x7fffffff]);
    expect(() => p.client.request(req('/c'), true)).toThrow(/exhausted/);
    p.pump();
    // The two last streams still complete.
    p.server.respond(a, [{ name: ':status', value: '200' }], true);
    p.server.respond(b, [{ name: ':status', value: '200' }], true);
    p.pump();
    expect(p.clientEvents.filter((e) => e.type === 'headers')).toHaveLength(2);
    expect(p.client.isClosed).toBe(true);
    expect(p.client.counters.get('h2.stream-ids-exhausted')).toBe(1);
  });
});
