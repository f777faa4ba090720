/**
 * Frame-level MUSTs of RFC 9113 §4–§8 a server can be tested on: a raw peer writes frames
 * to our server connection and checks the answer (GOAWAY or RST_STREAM with the right code).
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode, encodeFrame, Http2Connection, type Http2Frame } from '../../src/h2/internal.ts';
import { RawPeer, req } from './harness.ts';

const server = (o: ConstructorParameters<typeof Http2Connection>[0] = { role: 'server' }) => {
  const p = new RawPeer(new Http2Connection(o));
  p.handshake();
  return p;
};
const rst = (fs: Http2Frame[], id: number) =>
  fs.find((f) => f.type === 'RST_STREAM' && f.streamId === id) as
    | Extract<Http2Frame, { type: 'RST_STREAM' }>
    | undefined;

describe('connection errors answered with GOAWAY', () => {
  const cases: [string, (p: RawPeer) => void, number][] = [
    [
      'DATA on stream 0 (§6.1)',
      (p) => p.send(Uint8Array.from([0, 0, 1, 0, 0, 0, 0, 0, 0, 0xaa])),
      ErrorCode.PROTOCOL_ERROR,
    ],
    [
      'HEADERS on an even stream id from a client (§5.1.1)',
      (p) => p.headers(2, req()),
      ErrorCode.PROTOCOL_ERROR,
    ],
    [
      'a stream id lower than one already opened (§5.1.1)',
      (p) => {
        p.headers(5, req());
        p.headers(3, req());
      },
      ErrorCode.PROTOCOL_ERROR,
    ],
    [
      'DATA on an idle stream (§5.1)',
      (p) => p.frame({ type: 'DATA', streamId: 1, endStream: false, data: new Uint8Array(1) }),
      ErrorCode.PROTOCOL_ERROR,
    ],
    [
      'connection window overflow (§6.9.1)',
      (p) => p.frame({ type: 'WINDOW_UPDATE', streamId: 0, windowSizeIncrement: 0x7fffffff }),
      ErrorCode.FLOW_CONTROL_ERROR,
    ],
    [
      'SETTINGS_ENABLE_PUSH 2 (§6.5.2)',
      (p) =>
        p.frame({
          type: 'UNKNOWN',
          frameType: 4,
          flags: 0,
          streamId: 0,
          payload: Uint8Array.from([0, 2, 0, 0, 0, 2]),
        }),
      ErrorCode.PROTOCOL_ERROR,
    ],
    [
      'SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1 (§6.5.2)',
      (p) =>
        p.frame({
          type: 'UNKNOWN',
          frameType: 4,
          flags: 0,
          streamId: 0,
          payload: Uint8Array.from([0, 4, 0x80, 0, 0, 0]),
        }),
      ErrorCode.FLOW_CONTROL_ERROR,
    ],
    [
      'SETTINGS_MAX_FRAME_SIZE below 16384 (§6.5.2)',
      (p) =>
        p.frame({
          type: 'UNKNOWN',
          frameType: 4,
          flags: 0,
          streamId: 0,
          payload: Uint8Array.from([0, 5, 0, 0, 0x3f, 0xff]),
        }),
      ErrorCode.PROTOCOL_ERROR,
    ],
    [
      'a frame larger than SETTINGS_MAX_FRAME_SIZE (§4.2)',
      (p) => {
        p.headers(1, req(), false);
        p.frame({ type: 'DATA', streamId: 1, endStream: false, data: new Uint8Array(16_385) });
      },
      ErrorCode.FRAME_SIZE_ERROR,
    ],
    [
      'PING of 7 octets (§6.7)',
      (p) => p.frame({ type: 'UNKNOWN', frameType: 6, flags: 0, streamId: 0, payload: new Uint8Array(7) }),
      ErrorCode.FRAME_SIZE_ERROR,
    ],
    [
      'CONTINUATION without a preceding HEADERS (§6.10)',
      (p) =>
        p.frame({
          type: 'CONTINUATION',
          streamId: 1,
          endHeaders: true,
          headerBlockFragment: new Uint8Array(0),
        }),
      ErrorCode.PROTOCOL_ERROR,
    ],
    [
      'another frame inside a header block (§6.10)',
      (p) => {
        p.frame({
          type: 'HEADERS',
          streamId: 1,
          endStream: true,
          endHeaders: false,
          headerBlockFragment: p.enc.encode(req()),
        });
        p.frame({ type: 'PING', ack: false, opaqueData: new Uint8Array(8) });
      },
      ErrorCode.PROTOCOL_ERROR,
    ],
    [
      'an undecodable header block (§4.3)',
      (p) =>
        p.frame({
          type: 'HEADERS',
          streamId: 1,
          endStream: true,
          endHeaders: true,
          headerBlockFragment: Uint8Array.from([0x80]),
        }),
      ErrorCode.COMPRESSION_ERROR,
    ],
    [
      'HEADERS on a stream closed by END_STREAM both ways (§5.1)',
      (p) => {
        p.headers(1, req());
        p.conn.respond(1, [{ name: ':status', value: '200' }], true);
        p.read();
        p.headers(1, req());
      },
      ErrorCode.STREAM_CLOSED,
    ],
    [
      'PUSH_PROMISE from a client (§8.4)',
      (p) =>
        p.frame({
          type: 'PUSH_PROMISE',
          streamId: 1,
          endHeaders: true,
          promisedStreamId: 2,
          headerBlockFragment: new Uint8Array(0),
        }),
      ErrorCode.PROTOCOL_ERROR,
    ],
    [
      'SETTINGS ACK with a payload (§6.5)',
      (p) => p.send(Uint8Array.from([0, 0, 6, 4, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0x10, 0])),
      ErrorCode.FRAME_SIZE_ERROR,
    ],
  ];
  for (const [title, act, code] of cases) {
    it(title, () => {
      const p = server();
      act(p);
      const g = p.goaway();
      expect(g?.errorCode, title).toBe(code);
      expect(p.conn.isClosed).toBe(true);
      expect(p.events.find((e) => e.type === 'close')).toMatchObject({ errorCode: code });
    });
  }

  it('a preface that is not HTTP/2 (§3.4)', () => {
    const p = new RawPeer(new Http2Connection({ role: 'server' }));
    p.send(new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect(p.goaway()?.errorCode).toBe(ErrorCode.PROTOCOL_ERROR);
  });

  it('a first frame that is not SETTINGS (§3.4)', () => {
    const p = new RawPeer(new Http2Connection({ role: 'server' }));
    p.send(new TextEncoder().encode('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
    p.frame({ type: 'PING', ack: false, opaqueData: new Uint8Array(8) });
    expect(p.goaway()?.errorCode).toBe(ErrorCode.PROTOCOL_ERROR);
  });

  it('GOAWAY carries the last stream id processed (§6.8)', () => {
    const p = server();
    p.headers(1, req(), false);
    p.headers(3, req(), false);
    p.send(
      encodeFrame({ type: 'DATA', streamId: 0, endStream: false, data: new Uint8Array(0) }).subarray(0, 9),
    );
    expect(p.goaway()?.lastStreamId).toBe(3);
  });
});

describe('stream errors answered with RST_STREAM', () => {
  it('stream window overflow (§6.9.1): FLOW_CONTROL_ERROR', () => {
    const p = server();
    p.headers(1, req(), false);
    p.frame({ type: 'WINDOW_UPDATE', streamId: 1, windowSizeIncrement: 0x7fffffff });
    expect(rst(p.read(), 1)?.errorCode).toBe(ErrorCode.FLOW_CONTROL_ERROR);
    expect(p.conn.isClosed).toBe(false);
  });
  it('DATA after END_STREAM (half-closed remote, §5.1): STREAM_CLOSED', () => {
    const p = server();
    p.headers(1, req(), true);
    p.frame({ type: 'DATA', streamId: 1, endStream: false, data: new Uint8Array(1) });
    expect(rst(p.read(), 1)?.errorCode).toBe(ErrorCode.STREAM_CLOSED);
  });
  it('WINDOW_UPDATE of 0 on a stream (§6.9): PROTOCOL_ERROR', () => {
    const p = server();
    p.headers(1, req(), false);
    p.send(Uint8Array.from([0, 0, 4, 8, 0, 0, 0, 0, 1, 0, 0, 0, 0]));
    expect(rst(p.read(), 1)?.errorCode).toBe(ErrorCode.PROTOCOL_ERROR);
  });
  it('a HEADERS frame that depends on itself (§5.3.1): PROTOCOL_ERROR', () => {
    const p = server();
    p.frame({
      type: 'HEADERS',
      streamId: 1,
      endStream: true,
      endHeaders: true,
      priority: { exclusive: false, streamDependency: 1, weight: 15 },
      headerBlockFragment: p.enc.encode(req()),
    });
    expect(rst(p.read(), 1)?.errorCode).toBe(ErrorCode.PROTOCOL_ERROR);
  });
  const malformed: [string, { name: string; value: string }[]][] = [
    ['uppercase field name (§8.2.1)', [...req(), { name: 'X-Upper', value: '1' }]],
    ['connection-specific field (§8.2.2)', [...req(), { name: 'connection', value: 'keep-alive' }]],
    ['TE other than trailers (§8.2.2)', [...req(), { name: 'te', value: 'gzip' }]],
    ['missing :path (§8.3.1)', req().filter((f) => f.name !== ':path')],
    ['pseudo-header after a regular field (§8.3)', [{ name: 'x', value: '1' }, ...req()]],
    ['a response pseudo-header in a request (§8.3)', [...req(), { name: ':status', value: '200' }]],
    [
      'duplicate :method (§8.3.1)',
      [...req(), { name: ':method', value: 'GET' }].sort(
        (a, b) => Number(b.name.startsWith(':')) - Number(a.name.startsWith(':')),
      ),
    ],
    ['field value with a newline (§8.2.1)', [...req(), { name: 'x', value: 'a\nb' }]],
  ];
  for (const [title, fields] of malformed) {
    it(`malformed request: ${title}: PROTOCOL_ERROR`, () => {
      const p = server();
      p.headers(1, fields);
      expect(rst(p.read(), 1)?.errorCode).toBe(ErrorCode.PROTOCOL_ERROR);
      expect(p.events.some((e) => e.type === 'headers')).toBe(false);
    });
  }
  it('content-length that the DATA contradicts (§8.1.1): PROTOCOL_ERROR', () => {
    const p = server();
    p.headers(1, [...req('/', 'POST'), { name: 'content-length', value: '3' }], false);
    p.frame({ type: 'DATA', streamId: 1, endStream: true, data: new Uint8Array(5) });
    expect(rst(p.read(), 1)?.errorCode).toBe(ErrorCode.PROTOCOL_ERROR);
  });
  it('trailers with a pseudo-header (§8.1): PROTOCOL_ERROR', () => {
    const p = server();
    p.headers(1, req('/', 'POST'), false);
    p.headers(1, [{ name: ':path', value: '/' }], true);
    expect(rst(p.read(), 1)?.errorCode).toBe(ErrorCode.PROTOCOL_ERROR);
  });
  it('streams above SETTINGS_MAX_CONCURRENT_STREAMS are refused (§5.1.2): REFUSED_STREAM', () => {
    const p = server({ role: 'server', settings: { maxConcurrentStreams: 2 } });
    p.headers(1, req(), false);
    p.headers(3, req(), false);
    p.headers(5, req(), false);
    expect(rst(p.read(), 5)?.errorCode).toBe(ErrorCode.REFUSED_STREAM);
  });
  it('frames in flight after our RST_STREAM are ignored (§5.1)', () => {
    const p = server();
    p.headers(1, req(), false);
    p.conn.reset(1);
    p.read();
    p.frame({ type: 'DATA', streamId: 1, endStream: true, data: new Uint8Array(10) });
    expect(p.read().filter((f) => f.type === 'RST_STREAM' || f.type === 'GOAWAY')).toEqual([]);
  });
  it('unknown frame types and unknown settings are ignored (§5.5, §6.5.2)', () => {
    const p = server();
    p.frame({ type: 'UNKNOWN', frameType: 0xfe, flags: 0xff, streamId: 7, payload: new Uint8Array(3) });
    p.frame({ type: 'SETTINGS', ack: false, settings: [[0xabc, 1]] });
    expect(p.read().filter((f) => f.type === 'GOAWAY')).toEqual([]);
  });
});
