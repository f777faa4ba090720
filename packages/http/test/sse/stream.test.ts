import { fc, test as fcTest } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import {
  EventStreamError,
  EventStreamParser,
  encodeComment,
  encodeEvent,
  type ReceivedEvent,
  type ServerSentEvent,
  type StreamItem,
} from '../../src/sse/stream.ts';
import { arbitraryServerSentEvent } from '../../src/sse/testing.ts';

const events = (items: StreamItem[]): ReceivedEvent[] =>
  items.flatMap((i) => (i.type === 'event' ? [i.event] : []));

function parseAll(chunks: (string | Uint8Array)[]): StreamItem[] {
  const p = new EventStreamParser();
  return chunks.flatMap((c) => p.push(c));
}

describe('WHATWG HTML §9.2.6 examples', () => {
  it('multi-line data: "YHOO\\n+2\\n10"', () => {
    expect(events(parseAll(['data: YHOO\ndata: +2\ndata: 10\n\n']))).toEqual([
      { type: 'message', data: 'YHOO\n+2\n10', lastEventId: '' },
    ]);
  });

  it('comment, ids, an id line that resets, and a last block without a blank line is discarded', () => {
    const s = ': test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n';
    const items = parseAll([s]);
    expect(events(items)).toEqual([
      { type: 'message', data: 'first event', lastEventId: '1' },
      { type: 'message', data: 'second event', lastEventId: '' },
    ]);
    expect(items[0]).toEqual({ type: 'comment', text: 'test stream' });
  });

  it('"data" lines without a colon: an empty event and a newline', () => {
    expect(events(parseAll(['data\n\ndata\ndata\n\ndata:']))).toEqual([
      { type: 'message', data: '', lastEventId: '' },
      { type: 'message', data: '\n', lastEventId: '' },
    ]);
  });

  it('one leading space is stripped, no more: "data:test" and "data: test" are the same', () => {
    expect(events(parseAll(['data:test\n\ndata: test\n\ndata:  test\n\n'])).map((e) => e.data)).toEqual([
      'test',
      'test',
      ' test',
    ]);
  });

  it('event types, retry (digits only), unknown fields, an id with NUL ignored, BOM dropped', () => {
    const items = parseAll([
      new Uint8Array([0xef, 0xbb, 0xbf]),
      'event: add\ndata: 1\nid: a\n\nretry: 250\nretry: 1x\nfoo: bar\nid: b\0c\ndata: 2\n\n',
    ]);
    expect(items.filter((i) => i.type === 'retry')).toEqual([{ type: 'retry', ms: 250 }]);
    expect(events(items)).toEqual([
      { type: 'add', data: '1', lastEventId: 'a' },
      { type: 'message', data: '2', lastEventId: 'a' },
    ]);
  });

  it('CR, LF and CR LF all end lines, also with the pair split across chunks', () => {
    expect(events(parseAll(['data: a\r', '\ndata: b\r\r', 'data: c\n', '\n']))).toEqual([
      { type: 'message', data: 'a\nb', lastEventId: '' },
      { type: 'message', data: 'c', lastEventId: '' },
    ]);
  });

  it('a line past the limit is an EventStreamError, not unbounded memory', () => {
    const p = new EventStreamParser({ maxLineLength: 100 });
    expect(() => p.push(`data: ${'x'.repeat(200)}`)).toThrow(EventStreamError);
    const q = new EventStreamParser({ maxEventSize: 100 });
    expect(() => q.push(`${'data: xxxxxxxxxx\n'.repeat(20)}`)).toThrow(EventStreamError);
  });
});

/** What a receiver sees for the events a writer sent: type defaulted, lastEventId carried forward. */
function expected(sent: ServerSentEvent[]): { events: ReceivedEvent[]; retries: number[] } {
  let last = '';
  const out: ReceivedEvent[] = [];
  const retries: number[] = [];
  for (const e of sent) {
    if (e.id !== undefined) last = e.id;
    if (e.retry !== undefined) retries.push(e.retry);
    out.push({ type: e.event || 'message', data: e.data, lastEventId: last });
  }
  return { events: out, retries };
}

function splitAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let o = 0;
  for (const p of points) {
    out.push(bytes.subarray(o, p));
    o = p;
  }
  out.push(bytes.subarray(o));
  return out;
}

describe('writer and parser laws', () => {
  fcTest.prop([
    fc.array(arbitraryServerSentEvent, { maxLength: 10 }),
    fc.array(fc.nat(), { maxLength: 20 }),
    fc.constantFrom('\n', '\r\n', '\r'),
    fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
  ])(
    'events written then parsed come back equal, for any chunking and any line ending',
    (sent, cuts, eol, comments) => {
      const stream = comments.map((c) => encodeComment(c)).join('') + sent.map(encodeEvent).join('');
      const bytes = new TextEncoder().encode(stream.replace(/\n/g, eol));
      const items = parseAll(splitAt(bytes, cuts));
      const want = expected(sent);
      expect(events(items)).toEqual(want.events);
      expect(items.flatMap((i) => (i.type === 'retry' ? [i.ms] : []))).toEqual(want.retries);
    },
  );

  fcTest.prop([fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(), { maxLength: 6 })])(
    'arbitrary bytes give items or an EventStreamError, nothing else',
    (b, cuts) => {
      const p = new EventStreamParser({ maxLineLength: 64 });
      try {
        for (const c of splitAt(b, cuts)) p.push(c);
      } catch (e) {
        expect(e).toBeInstanceOf(EventStreamError);
      }
    },
  );

  it('the writer refuses fields that would break the framing', () => {
    expect(() => encodeEvent({ event: 'a\nb', data: '' })).toThrow(RangeError);
    expect(() => encodeEvent({ id: 'a\0', data: '' })).toThrow(RangeError);
    expect(() => encodeEvent({ retry: -1, data: '' })).toThrow(RangeError);
  });
});
