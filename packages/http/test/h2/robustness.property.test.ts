/**
 * Hostile input never breaks the connection machine: any sequence of frames, or any bytes,
 * after the preface leaves it either working or closed with a GOAWAY, never throwing; what
 * it writes always decodes as frames. Stream ids are drawn from a few values so that frames
 * meet existing streams.
 */
import { concatBytes } from '@stepwire/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CONNECTION_PREFACE,
  decodeFrame,
  decodeFrameHeader,
  encodeFrame,
  Http2Connection,
  type Http2Frame,
} from '../../src/h2/internal.ts';
import { arbitraryHttp2Frame } from '../../src/h2/testing.ts';
import { HpackEncoder } from '../../src/hpack/index.ts';

const smallIds = (f: Http2Frame): Http2Frame => {
  if ('streamId' in f) return { ...f, streamId: f.streamId % 8 } as Http2Frame;
  return f;
};

/** A client's output starts with the 24-octet preface, which is not a frame. */
const withoutPreface = (b: Uint8Array) =>
  b.length >= 24 && b[0] === 0x50 && b[1] === 0x52 && b[2] === 0x49 ? b.subarray(24) : b;

function parseAll(bytes: Uint8Array): Http2Frame[] {
  const out: Http2Frame[] = [];
  let at = 0;
  while (at < bytes.length) {
    const h = decodeFrameHeader(bytes, at);
    out.push(decodeFrame(bytes.subarray(at, at + 9 + h.length)));
    at += 9 + h.length;
  }
  return out;
}

const validRequest = fc.integer({ min: 0, max: 3 }).map((i) => {
  const enc = new HpackEncoder();
  const block = enc.encode([
    { name: ':method', value: 'GET' },
    { name: ':scheme', value: 'http' },
    { name: ':authority', value: 'x' },
    { name: ':path', value: `/${i}` },
  ]);
  return {
    type: 'HEADERS',
    streamId: 2 * i + 1,
    endStream: i % 2 === 0,
    endHeaders: true,
    headerBlockFragment: block,
  } as Http2Frame;
});

describe('connection robustness', () => {
  for (const role of ['server', 'client'] as const) {
    it(`${role}: any frame sequence leaves it working or closed by GOAWAY, never throwing`, () => {
      fc.assert(
        fc.property(
          fc.array(fc.oneof(arbitraryHttp2Frame.map(smallIds), validRequest), { maxLength: 25 }),
          (frames) => {
            const c = new Http2Connection({ role });
            c.start(0);
            const head = role === 'server' ? [CONNECTION_PREFACE] : [];
            const wire = concatBytes(
              ...head,
              encodeFrame({ type: 'SETTINGS', ack: false, settings: [] }),
              ...frames.map(encodeFrame),
            );
            let t = 0;
            // Delivered in a few uneven pieces.
            for (let i = 0; i < wire.length; i += 37) {
              c.receive(wire.subarray(i, i + 37), (t += 1));
              // The user answers every request it sees.
              for (const e of c.takeEvents())
                if (e.type === 'headers' && e.kind === 'request' && c.canSend(e.streamId))
                  c.respond(e.streamId, [{ name: ':status', value: '200' }], true);
            }
            const out = parseAll(withoutPreface(c.output()));
            // Closed: by our GOAWAY, or after the peer's own GOAWAY with an error.
            if (c.isClosed)
              expect(out.some((f) => f.type === 'GOAWAY') || frames.some((f) => f.type === 'GOAWAY')).toBe(
                true,
              );
          },
        ),
        { numRuns: 300 },
      );
    });
    it(`${role}: arbitrary bytes after the preface never throw`, () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 300 }), (junk) => {
          const c = new Http2Connection({ role });
          c.start(0);
          if (role === 'server') c.receive(CONNECTION_PREFACE, 0);
          c.receive(encodeFrame({ type: 'SETTINGS', ack: false, settings: [] }), 0);
          c.receive(junk, 1);
          parseAll(withoutPreface(c.output()));
        }),
        { numRuns: 300 },
      );
    });
  }
});
