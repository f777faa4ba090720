import { test as fcTest } from '@fast-check/vitest';
import { ByteWriter } from '@stepwire/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  encodeH3Frame,
  FakeQuicPair,
  H3ErrorCode,
  type H3ErrorName,
  type H3Event,
  type H3Frame,
  Http3Connection,
  type Http3ConnectionOptions,
  h3ErrorName,
  h3TransportOverQuic,
} from '../src/h3/index.ts';
import type { Field } from '../src/qpack/decoder.ts';
import { QpackEncoder } from '../src/qpack/encoder.ts';
import { writeEncoderInstruction } from '../src/qpack/instructions.ts';
import { arbitraryH3Frame } from '../src/testing.ts';

/**
 * RFC 9114's rules, one named test each: a raw peer writes bytes on streams of a fake
 * QUIC connection, and the HTTP/3 connection under test must answer with the error the
 * RFC names — closing the connection (a connection error) or resetting the stream (a
 * stream error) — and never throw.
 */

const frame = (f: H3Frame) => encodeH3Frame(f);
const cat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
const streamType = (t: number) => new Uint8Array([t]);
const SETTINGS = frame({ type: 'SETTINGS', settings: [] });
const REQUEST: Field[] = [
  [':method', 'GET'],
  [':scheme', 'https'],
  [':authority', 'example.com'],
  [':path', '/'],
];
const section = (fields: readonly Field[], id = 0) => new QpackEncoder().encodeFieldSection(id, fields);
const headers = (fields: readonly Field[]) => frame({ type: 'HEADERS', fieldSection: section(fields) });
const data = (s: string) => frame({ type: 'DATA', data: new TextEncoder().encode(s) });

/** The connection under test (`role`) and a raw peer on the other side of a fake QUIC pair. */
function rig(role: 'client' | 'server', opts: Partial<Http3ConnectionOptions> = {}) {
  const pair = new FakeQuicPair();
  const self = role === 'server' ? pair.server : pair.client;
  const peer = role === 'server' ? pair.client : pair.server;
  const h3 = new Http3Connection(self, { role, grease: false, ...opts });
  const events: H3Event[] = [];
  self.handler = (e) => events.push(...h3.handle(e));
  pair.connect();
  pair.run();
  const send = (id: number, bytes: Uint8Array, fin = false) => {
    peer.write(id, bytes, fin);
    pair.run();
  };
  /** The raw peer's control stream, already carrying SETTINGS unless told otherwise. */
  const control = peer.openStream('uni');
  const openControl = (first: Uint8Array = SETTINGS) => send(control, cat(streamType(0x00), first));
  const closedWith = (): string | undefined => {
    const c = self.closedWith;
    return c ? h3ErrorName(c.code) : undefined;
  };
  const resetCodes = (id: number) => self.resets.filter((r) => r.id === id).map((r) => h3ErrorName(r.code));
  return { pair, h3, events, send, peer, self, control, openControl, closedWith, resetCodes };
}

const connectionErrors: [string, H3ErrorName, (r: ReturnType<typeof rig>) => void][] = [
  [
    '§6.2.1: a control stream whose first frame is not SETTINGS',
    'H3_MISSING_SETTINGS',
    (r) => r.openControl(frame({ type: 'GOAWAY', id: 0 })),
  ],
  [
    '§6.2.1: even a reserved frame type before SETTINGS',
    'H3_MISSING_SETTINGS',
    (r) => r.openControl(frame({ type: 'unknown', frameType: 0x21, payload: new Uint8Array(0) })),
  ],
  ['§7.2.4: a second SETTINGS frame', 'H3_FRAME_UNEXPECTED', (r) => r.openControl(cat(SETTINGS, SETTINGS))],
  [
    '§7.2.1: DATA on the control stream',
    'H3_FRAME_UNEXPECTED',
    (r) => r.openControl(cat(SETTINGS, data('x'))),
  ],
  [
    '§7.2.2: HEADERS on the control stream',
    'H3_FRAME_UNEXPECTED',
    (r) => r.openControl(cat(SETTINGS, headers(REQUEST))),
  ],
  [
    '§7.2.4: a setting repeated',
    'H3_SETTINGS_ERROR',
    (r) =>
      r.openControl(
        frame({
          type: 'SETTINGS',
          settings: [
            { id: 6, value: 100 },
            { id: 6, value: 200 },
          ],
        }),
      ),
  ],
  [
    '§7.2.4.1: an HTTP/2 setting (SETTINGS_ENABLE_PUSH 0x02)',
    'H3_SETTINGS_ERROR',
    (r) => r.openControl(frame({ type: 'SETTINGS', settings: [{ id: 0x02, value: 0 }] })),
  ],
  [
    '§7.2.8: an HTTP/2 frame type (WINDOW_UPDATE 0x08) on the control stream',
    'H3_FRAME_UNEXPECTED',
    (r) =>
      r.openControl(cat(SETTINGS, frame({ type: 'unknown', frameType: 0x08, payload: new Uint8Array(4) }))),
  ],
  [
    '§6.2.1: the control stream ends',
    'H3_CLOSED_CRITICAL_STREAM',
    (r) => {
      r.openControl();
      r.send(r.control, new Uint8Array(0), true);
    },
  ],
  [
    'RFC 9204 §4.2: the QPACK encoder stream is reset',
    'H3_CLOSED_CRITICAL_STREAM',
    (r) => {
      const id = r.peer.openStream('uni');
      r.send(id, streamType(0x02));
      r.peer.resetStream(id, 0x100);
      r.pair.run();
    },
  ],
  [
    '§6.2.1: a second control stream',
    'H3_STREAM_CREATION_ERROR',
    (r) => {
      r.openControl();
      r.send(r.peer.openStream('uni'), cat(streamType(0x00), SETTINGS));
    },
  ],
  [
    'RFC 9204 §4.2: a second QPACK decoder stream',
    'H3_STREAM_CREATION_ERROR',
    (r) => {
      r.send(r.peer.openStream('uni'), streamType(0x03));
      r.send(r.peer.openStream('uni'), streamType(0x03));
    },
  ],
  [
    '§6.2.2: a push stream from a client',
    'H3_STREAM_CREATION_ERROR',
    (r) => r.send(r.peer.openStream('uni'), cat(streamType(0x01), new Uint8Array([0]))),
  ],
  [
    '§4.1: DATA before HEADERS on a request stream',
    'H3_FRAME_UNEXPECTED',
    (r) => r.send(r.peer.openStream('bidi'), data('early')),
  ],
  [
    '§4.1: HEADERS after the trailers',
    'H3_FRAME_UNEXPECTED',
    (r) =>
      r.send(r.peer.openStream('bidi'), cat(headers(REQUEST), headers([['x', '1']]), headers([['y', '2']]))),
  ],
  [
    '§7.2.4: SETTINGS on a request stream',
    'H3_FRAME_UNEXPECTED',
    (r) => r.send(r.peer.openStream('bidi'), cat(headers(REQUEST), SETTINGS)),
  ],
  [
    '§7.2.6: GOAWAY on a request stream',
    'H3_FRAME_UNEXPECTED',
    (r) => r.send(r.peer.openStream('bidi'), cat(headers(REQUEST), frame({ type: 'GOAWAY', id: 0 }))),
  ],
  [
    '§7.2.5: PUSH_PROMISE from a client',
    'H3_FRAME_UNEXPECTED',
    (r) =>
      r.send(
        r.peer.openStream('bidi'),
        cat(headers(REQUEST), frame({ type: 'PUSH_PROMISE', pushId: 0, fieldSection: section(REQUEST) })),
      ),
  ],
  [
    '§7.2.8: an HTTP/2 frame type (PRIORITY 0x02) on a request stream',
    'H3_FRAME_UNEXPECTED',
    (r) =>
      r.send(
        r.peer.openStream('bidi'),
        cat(headers(REQUEST), frame({ type: 'unknown', frameType: 0x02, payload: new Uint8Array(5) })),
      ),
  ],
  [
    '§7.1: a request stream that ends inside a frame',
    'H3_FRAME_ERROR',
    (r) => r.send(r.peer.openStream('bidi'), cat(headers(REQUEST), data('abc').subarray(0, 3)), true),
  ],
  [
    '§7.1: a frame payload with bytes after its fields (CANCEL_PUSH)',
    'H3_FRAME_ERROR',
    (r) => r.openControl(cat(SETTINGS, new Uint8Array([0x03, 0x02, 0x00, 0x00]))),
  ],
  [
    '§7.2.3: CANCEL_PUSH for a push never promised',
    'H3_ID_ERROR',
    (r) => r.openControl(cat(SETTINGS, frame({ type: 'CANCEL_PUSH', pushId: 3 }))),
  ],
  [
    'RFC 9204 §4.3.1: an encoder stream setting a capacity above our maximum',
    'QPACK_ENCODER_STREAM_ERROR',
    (r) => {
      const w = new ByteWriter(8);
      writeEncoderInstruction(w, { type: 'SetDynamicTableCapacity', capacity: 1 << 20 });
      r.send(r.peer.openStream('uni'), cat(streamType(0x02), w.finish()));
    },
  ],
  [
    'RFC 9204 §4.4.3: an Insert Count Increment of 0 on the decoder stream',
    'QPACK_DECODER_STREAM_ERROR',
    (r) => r.send(r.peer.openStream('uni'), cat(streamType(0x03), new Uint8Array([0x00]))),
  ],
  [
    'RFC 9204 §4.5.1.1: a field section whose Required Insert Count cannot be',
    'QPACK_DECOMPRESSION_FAILED',
    // Encoded Required Insert Count 0xff is beyond 2 * MaxEntries for a 4096-byte table.
    (r) =>
      r.send(
        r.peer.openStream('bidi'),
        frame({ type: 'HEADERS', fieldSection: new Uint8Array([0xff, 0x80, 0x00]) }),
      ),
  ],
];

describe('RFC 9114 connection errors (server under test)', () => {
  for (const [name, code, act] of connectionErrors) {
    it(`${name} → ${code}`, () => {
      const r = rig('server');
      act(r);
      expect(r.closedWith()).toBe(code);
      expect(r.events.at(-1)).toMatchObject({ type: 'closed', local: true, code: H3ErrorCode[code] });
      expect(r.h3.counters.get(`h3.connection-error.${code}`)).toBe(1);
    });
  }
});

const clientErrors: [string, H3ErrorName, (r: ReturnType<typeof rig>) => void][] = [
  [
    '§6.1: a server-initiated bidirectional stream',
    'H3_STREAM_CREATION_ERROR',
    (r) => r.send(r.peer.openStream('bidi'), headers([[':status', '200']])),
  ],
  [
    '§5.2: GOAWAY naming a stream that is not client-initiated bidirectional',
    'H3_ID_ERROR',
    (r) => r.openControl(cat(SETTINGS, frame({ type: 'GOAWAY', id: 2 }))),
  ],
  [
    '§5.2: a GOAWAY with a larger ID than the one before',
    'H3_ID_ERROR',
    (r) => {
      // Requests below the first GOAWAY's ID keep the connection open for the second.
      for (let i = 0; i < 3; i++) r.h3.sendRequest(REQUEST, true);
      r.openControl(cat(SETTINGS, frame({ type: 'GOAWAY', id: 4 }), frame({ type: 'GOAWAY', id: 8 })));
    },
  ],
  [
    '§7.2.7: MAX_PUSH_ID from a server',
    'H3_FRAME_UNEXPECTED',
    (r) => r.openControl(cat(SETTINGS, frame({ type: 'MAX_PUSH_ID', pushId: 1 }))),
  ],
  [
    '§4.6: a push stream when no MAX_PUSH_ID was sent',
    'H3_ID_ERROR',
    (r) => r.send(r.peer.openStream('uni'), cat(streamType(0x01), new Uint8Array([0]))),
  ],
  [
    '§7.2.5: PUSH_PROMISE when no MAX_PUSH_ID was sent',
    'H3_ID_ERROR',
    (r) => {
      const id = r.h3.sendRequest(REQUEST, true);
      r.pair.run();
      r.send(id, frame({ type: 'PUSH_PROMISE', pushId: 0, fieldSection: section(REQUEST) }));
    },
  ],
];

describe('RFC 9114 connection errors (client under test)', () => {
  for (const [name, code, act] of clientErrors) {
    it(`${name} → ${code}`, () => {
      const r = rig('client');
      act(r);
      expect(r.closedWith()).toBe(code);
    });
  }
});

describe('RFC 9114 stream errors: the stream is reset, the connection lives', () => {
  const streamErrors: [string, H3ErrorName, Uint8Array, boolean][] = [
    [
      '§4.3.1: a request without :scheme',
      'H3_MESSAGE_ERROR',
      headers(REQUEST.filter(([n]) => n !== ':scheme')),
      true,
    ],
    ['§4.2: an uppercase field name', 'H3_MESSAGE_ERROR', headers([...REQUEST, ['X-Up', '1']]), true],
    [
      '§4.2: a connection-specific field',
      'H3_MESSAGE_ERROR',
      headers([...REQUEST, ['transfer-encoding', 'chunked']]),
      true,
    ],
    [
      '§4.1.2: content-length larger than the content',
      'H3_MESSAGE_ERROR',
      cat(headers([...REQUEST, ['content-length', '10']]), data('abc')),
      true,
    ],
    [
      '§4.1.2: content larger than content-length',
      'H3_MESSAGE_ERROR',
      cat(headers([...REQUEST, ['content-length', '2']]), data('abc')),
      false,
    ],
    ['§4.1.2: a stream that ends before any HEADERS', 'H3_REQUEST_INCOMPLETE', new Uint8Array(0), true],
  ];
  for (const [name, code, bytes, fin] of streamErrors) {
    it(`${name} → ${code}`, () => {
      const r = rig('server');
      r.openControl();
      const id = r.peer.openStream('bidi');
      r.send(id, bytes, fin);
      expect(r.closedWith()).toBeUndefined();
      expect(r.resetCodes(id)).toEqual([code]);
      // Reading stops unless the stream had already ended.
      if (!fin || code === 'H3_REQUEST_INCOMPLETE')
        expect(r.self.stopSendings).toContainEqual({ id, code: H3ErrorCode[code] });
      expect(r.events).toContainEqual(expect.objectContaining({ type: 'stream-error', streamId: id }));
      // The connection still serves the next request.
      const next = r.peer.openStream('bidi');
      r.send(next, headers(REQUEST), true);
      expect(r.events).toContainEqual({ type: 'headers', streamId: next, kind: 'request', fields: REQUEST });
    });
  }

  it('§9: unknown and reserved frame types on a request stream are ignored', () => {
    const r = rig('server');
    const id = r.peer.openStream('bidi');
    const grease = frame({ type: 'unknown', frameType: 0x1f * 5 + 0x21, payload: new Uint8Array(300) });
    r.send(id, cat(grease, headers(REQUEST), grease, data('hi'), grease), true);
    expect(r.closedWith()).toBeUndefined();
    expect(r.events.filter((e) => e.type !== 'ready').map((e) => e.type)).toEqual(['headers', 'data', 'end']);
    expect(r.h3.counters.get('h3.frames.unknown')).toBe(3);
  });

  it('§6.2: a reserved stream type is stopped with H3_STREAM_CREATION_ERROR and the connection continues', () => {
    const r = rig('server');
    const id = r.peer.openStream('uni');
    // 0x1f * 2 + 0x21 = 0x5f: a 2-byte varint stream type.
    r.send(id, new Uint8Array([0x40, 0x5f, 1, 2, 3]));
    expect(r.self.stopSendings).toEqual([{ id, code: H3ErrorCode.H3_STREAM_CREATION_ERROR }]);
    expect(r.closedWith()).toBeUndefined();
  });

  it('§4.1: a response may carry interim 1xx sections before the final one; a 1xx after it is malformed', () => {
    const r = rig('client');
    r.openControl();
    const id = r.h3.sendRequest(REQUEST, true);
    r.pair.run();
    r.send(
      id,
      cat(
        headers([
          [':status', '103'],
          ['link', '</a>'],
        ]),
        headers([[':status', '200']]),
        data('ok'),
      ),
      true,
    );
    expect(r.events.filter((e) => e.type === 'headers').map((e) => e.type === 'headers' && e.kind)).toEqual([
      'informational',
      'response',
    ]);
    expect(r.events.at(-1)).toEqual({ type: 'end', streamId: id });
  });
});

describe('limits', () => {
  it('SETTINGS_MAX_FIELD_SECTION_SIZE: a larger request header section is answered 431 (§4.2.2)', () => {
    const r = rig('server', { settings: { maxFieldSectionSize: 200 } });
    const id = r.peer.openStream('bidi');
    r.send(id, headers([...REQUEST, ['x-big', 'a'.repeat(300)]]), true);
    expect(r.closedWith()).toBeUndefined();
    expect(r.h3.counters.get('h3.limit.field-section')).toBe(1);
    expect(r.self.stopSendings).toContainEqual({ id, code: H3ErrorCode.H3_NO_ERROR });
    // The response: a HEADERS frame with :status 431, then FIN.
    const out = r.self.bytesOf(id);
    expect(out[0]).toBe(0x01);
    expect(r.events.some((e) => e.type === 'headers')).toBe(false);
  });

  it("SETTINGS_MAX_FIELD_SECTION_SIZE: we do not send a section above the peer's limit (§4.2.2)", () => {
    const r = rig('client');
    r.openControl(frame({ type: 'SETTINGS', settings: [{ id: 0x06, value: 300 }] }));
    expect(() => r.h3.sendRequest([...REQUEST, ['x-big', 'a'.repeat(200)]])).toThrow(RangeError);
    expect(r.h3.activeStreams).toBe(0);
    expect(() => r.h3.sendRequest(REQUEST, true)).not.toThrow();
  });

  it('frame size: a HEADERS frame above maxFramePayload resets the stream with H3_EXCESSIVE_LOAD', () => {
    const r = rig('server', { limits: { maxFramePayload: 1000 } });
    const id = r.peer.openStream('bidi');
    // Only the frame header: the limit applies before a byte of payload is held.
    r.send(id, new Uint8Array([0x01, 0x44, 0x00]));
    expect(r.resetCodes(id)).toEqual(['H3_EXCESSIVE_LOAD']);
    expect(r.h3.counters.get('h3.limit.frame-size')).toBe(1);
    expect(r.closedWith()).toBeUndefined();
  });

  it('frame size: a SETTINGS frame above the limit is a connection error H3_EXCESSIVE_LOAD', () => {
    const r = rig('server', { limits: { maxFramePayload: 1000 } });
    r.openControl(new Uint8Array([0x04, 0x44, 0x00]));
    expect(r.closedWith()).toBe('H3_EXCESSIVE_LOAD');
  });

  it('number of streams: requests beyond maxConcurrentRequests are rejected with H3_REQUEST_REJECTED', () => {
    const r = rig('server', { limits: { maxConcurrentRequests: 3 } });
    const ids = [0, 1, 2, 3, 4].map(() => r.peer.openStream('bidi'));
    for (const id of ids) r.send(id, headers(REQUEST));
    expect(r.h3.activeStreams).toBe(3);
    expect(r.resetCodes(ids[3] ?? -1)).toEqual(['H3_REQUEST_REJECTED']);
    expect(r.resetCodes(ids[4] ?? -1)).toEqual(['H3_REQUEST_REJECTED']);
    expect(r.h3.counters.get('h3.request-rejected.limit')).toBe(2);
  });

  it('unknown unidirectional streams beyond maxIgnoredStreams open at once close the connection with H3_EXCESSIVE_LOAD', () => {
    const r = rig('server', { limits: { maxIgnoredStreams: 4 } });
    // Any number one after another: each ends (its peer answers our STOP_SENDING with a reset).
    for (let i = 0; i < 20; i++) {
      const id = r.peer.openStream('uni');
      r.send(id, new Uint8Array([0x21]));
      r.peer.resetStream(id, H3ErrorCode.H3_STREAM_CREATION_ERROR);
      r.pair.run();
    }
    expect(r.closedWith()).toBeUndefined();
    for (let i = 0; i < 4; i++) r.send(r.peer.openStream('uni'), new Uint8Array([0x21]));
    expect(r.closedWith()).toBeUndefined();
    r.send(r.peer.openStream('uni'), new Uint8Array([0x21]));
    expect(r.closedWith()).toBe('H3_EXCESSIVE_LOAD');
  });

  it('blocked streams: bytes held behind a blocked section are bounded (H3_EXCESSIVE_LOAD, Stream Cancellation)', () => {
    const r = rig('server', { limits: { maxBlockedStreamBuffer: 1000 } });
    const id = r.peer.openStream('bidi');
    const blocking = frame({ type: 'HEADERS', fieldSection: new Uint8Array([0x02, 0x00, 0x80]) });
    r.send(id, cat(blocking, data('x'.repeat(600))));
    expect(r.resetCodes(id)).toEqual([]);
    r.send(id, data('y'.repeat(600)));
    expect(r.resetCodes(id)).toEqual(['H3_EXCESSIVE_LOAD']);
    expect(r.h3.counters.get('h3.limit.blocked-buffer')).toBe(1);
    // RFC 9204 §4.4.2: the decoder forgets the section and tells the encoder.
    expect(r.h3.decoder.blockedStreams).toBe(0);
    expect(r.closedWith()).toBeUndefined();
  });

  it('blocked streams: a section beyond SETTINGS_QPACK_BLOCKED_STREAMS is QPACK_DECOMPRESSION_FAILED (RFC 9204 §2.2.1)', () => {
    const r = rig('server', { settings: { qpackBlockedStreams: 1 } });
    // Required Insert Count 1 (encoded 2) with no inserts received: the stream blocks.
    const blocking = frame({ type: 'HEADERS', fieldSection: new Uint8Array([0x02, 0x00, 0x80]) });
    r.send(r.peer.openStream('bidi'), blocking);
    expect(r.closedWith()).toBeUndefined();
    expect(r.h3.counters.get('h3.qpack.blocked')).toBe(1);
    r.send(r.peer.openStream('bidi'), blocking);
    expect(r.closedWith()).toBe('QPACK_DECOMPRESSION_FAILED');
  });
});

describe('h3TransportOverQuic', () => {
  it('closes with the time and an application error code (CONNECTION_CLOSE 0x1d, RFC 9114 §8)', () => {
    const calls: unknown[][] = [];
    const quic = {
      openStream: (d: 'bidi' | 'uni') => (d === 'bidi' ? 0 : 2),
      write: (...a: unknown[]) => void calls.push(['write', ...a]),
      resetStream: (...a: unknown[]) => void calls.push(['reset', ...a]),
      stopSending: (...a: unknown[]) => void calls.push(['stop', ...a]),
      close: (...a: unknown[]) => void calls.push(['close', ...a]),
    };
    const t = h3TransportOverQuic(quic, () => 1234);
    expect(t.openStream('uni')).toBe(2);
    t.close(H3ErrorCode.H3_FRAME_ERROR, 'bad frame');
    expect(calls).toEqual([['close', 1234, 0x106, 'bad frame', true]]);
  });
});

describe('hostile bytes never escape as exceptions', () => {
  fcTest.prop(
    [
      fc.constantFrom<'client' | 'server'>('client', 'server'),
      fc.array(
        fc.tuple(
          fc.constantFrom(0, 1, 2),
          fc.oneof(fc.uint8Array({ maxLength: 40 }), arbitraryH3Frame.map(frame)),
        ),
        {
          maxLength: 12,
        },
      ),
    ],
    { numRuns: 150 },
  )('frames and garbage on control, encoder and request streams', (role, writes) => {
    const r = rig(role);
    const ids = [r.control, r.peer.openStream('uni'), r.peer.openStream('bidi')];
    const prefix = [streamType(0x00), streamType(0x02), new Uint8Array(0)];
    const started = new Set<number>();
    for (const [which, bytes] of writes) {
      const id = ids[which] ?? 0;
      const head = started.has(which) ? new Uint8Array(0) : (prefix[which] ?? new Uint8Array(0));
      started.add(which);
      expect(() => r.send(id, cat(head, bytes))).not.toThrow();
    }
    // Whatever happened is visible as a close code or stream resets, never a crash.
    const c = r.self.closedWith;
    if (c) expect(h3ErrorName(c.code)).not.toMatch(/^0x/);
  });
});
