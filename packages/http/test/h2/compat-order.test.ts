/**
 * Frame order of (req, res) responses over h2 with many streams at once: a response
 * without trailers ends with END_STREAM on its last DATA frame (RFC 9113 §8.1: the last
 * frame of the message carries END_STREAM), not on an empty DATA frame queued behind other
 * streams' data; trailers still end the stream with a HEADERS frame.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncomingMessage, ServerResponse } from '../../src/h1/messages.ts';
import { createCompatHttp2Server, type Http2Frame } from '../../src/h2/internal.ts';
import { endsStream, RawClient } from './raw-client.ts';

const LARGE = 40_000; // more than two 16 KiB frames

function handler(req: IncomingMessage, res: ServerResponse): void {
  const u = req.url ?? '/';
  if (u.startsWith('/small')) res.end(`small ${u}\n`);
  else if (u.startsWith('/large')) res.end(Buffer.alloc(LARGE, 'l'));
  else if (u.startsWith('/parts')) {
    res.write('part one,');
    res.end('part two');
  } else if (u.startsWith('/empty')) {
    res.statusCode = 204;
    res.end();
  } else if (u.startsWith('/trailers')) {
    res.addTrailers({ 'x-checksum': 'abc' });
    res.end('with trailers');
  } else res.end('?');
}

const server = createCompatHttp2Server(handler);
let tcp: net.Server;
let port = 0;
/** Writes our server made to its sockets and chunks it read from them. */
const io = { writes: 0, reads: 0 };
beforeAll(async () => {
  tcp = net.createServer((s) => {
    const write = s.write.bind(s) as (...a: unknown[]) => boolean;
    (s as { write: unknown }).write = (...a: unknown[]) => {
      io.writes++;
      return write(...a);
    };
    s.on('data', () => {
      io.reads++;
    });
    server.handle(s);
  });
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
  port = (tcp.address() as net.AddressInfo).port;
});
afterAll(() => {
  for (const s of server.sessions) s.destroy();
  tcp.close();
});

const KINDS = ['small', 'large', 'parts', 'empty', 'trailers'] as const;

/** Opens `n` streams in one write, cycling through the kinds; waits for every stream to end. */
async function manyStreams(n: number): Promise<{ frames: Http2Frame[]; kindOf: Map<number, string> }> {
  const c = await RawClient.connect(port, [[0x4, 1 << 20]]);
  const kindOf = new Map<number, string>();
  const parts: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const id = 1 + 2 * i;
    const kind = KINDS[i % KINDS.length] as string;
    kindOf.set(id, kind);
    parts.push(c.request(id, `/${kind}/${i}`));
  }
  c.write(...parts);
  const done = () =>
    new Set(
      c
        .streamFrames()
        .filter(endsStream)
        .map((f) => (f as { streamId: number }).streamId),
    );
  await c.until(() => done().size === n);
  c.destroy();
  return { frames: c.streamFrames(), kindOf };
}

describe('(req, res) over h2: each response ends with its own last frame', () => {
  it('60 concurrent streams: END_STREAM rides on the last DATA frame (or HEADERS); no empty DATA frame ends a stream', async () => {
    const n = 60;
    const { frames, kindOf } = await manyStreams(n);
    for (const [id, kind] of kindOf) {
      const mine = frames.filter((f) => 'streamId' in f && f.streamId === id);
      const ends = mine.filter(endsStream);
      expect(ends, `stream ${id} (${kind}) ends once`).toHaveLength(1);
      const last = mine[mine.length - 1] as Http2Frame;
      expect(endsStream(last), `stream ${id}: nothing after END_STREAM`).toBe(true);
      if (kind === 'trailers') {
        expect(last.type, `stream ${id}: trailers end it`).toBe('HEADERS');
      } else if (kind === 'empty') {
        // No body: the response HEADERS frame itself ends the stream.
        expect(mine.map((f) => f.type)).toEqual(['HEADERS']);
      } else {
        expect(last.type).toBe('DATA');
        expect(
          (last as { data: Uint8Array }).data.length,
          `stream ${id} (${kind}): END_STREAM on data, not an empty frame`,
        ).toBeGreaterThan(0);
      }
      if (kind === 'large') {
        const body = mine
          .filter((f) => f.type === 'DATA')
          .reduce((a, f) => a + (f as { data: Uint8Array }).data.length, 0);
        expect(body).toBe(LARGE);
      }
    }
  });

  it('a response whose data is all written ends before the next streams send anything more', async () => {
    const { frames, kindOf } = await manyStreams(40);
    // For every small/parts/empty/trailers response (all fit the windows at once), no frame
    // of another stream lies between its first frame and its END_STREAM: it is not held
    // back behind other streams' data.
    for (const [id, kind] of kindOf) {
      if (kind === 'large') continue;
      const first = frames.findIndex((f) => 'streamId' in f && f.streamId === id);
      const end = frames.findIndex((f) => 'streamId' in f && f.streamId === id && endsStream(f));
      const between = frames.slice(first, end + 1).filter((f) => 'streamId' in f && f.streamId !== id);
      expect(
        between.map((f) => `${f.type}:${(f as { streamId: number }).streamId}`),
        `stream ${id} (${kind})`,
      ).toEqual([]);
    }
  });

  it('the answers to one received batch leave in one write (not one per stream)', async () => {
    io.writes = 0;
    io.reads = 0;
    const c = await RawClient.connect(port, [[0x4, 1 << 20]]);
    const parts: Uint8Array[] = [];
    for (let i = 0; i < 30; i++) parts.push(c.request(1 + 2 * i, `/small/${i}`));
    c.write(...parts);
    await c.until(() => c.streamFrames().filter(endsStream).length === 30);
    c.destroy();
    // One write for the server's preface, then at most one per chunk read.
    expect(io.writes).toBeLessThanOrEqual(io.reads + 1);
    expect(io.reads).toBeGreaterThan(0);
  });
});
