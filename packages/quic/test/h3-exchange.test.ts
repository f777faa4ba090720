import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from '@stepwire/http';
import { Prng, TraceBus, type TraceEvent } from '@stepwire/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FakeQuicPair,
  type FakeQuicPairOptions,
  H3_GOAWAY_MAX_ID,
  H3ErrorCode,
  H3RequestError,
  type H3Response,
  Http3Client,
  type Http3ClientOptions,
  Http3Server,
  type Http3ServerOptions,
} from '../src/h3/index.ts';

/**
 * A client and a server over the in-memory QUIC pair, the server running the same
 * node:http-style (req, res) handler the HTTP/1.1 and HTTP/2 servers run.
 */

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

function setup(
  handler: Handler,
  opts: { pair?: FakeQuicPairOptions; server?: Http3ServerOptions; client?: Http3ClientOptions } = {},
) {
  const pair = new FakeQuicPair(opts.pair);
  const server = new Http3Server(handler, opts.server);
  const sconn = server.accept(pair.server);
  pair.server.handler = (e) => sconn.handle(e);
  const client = new Http3Client(pair.client, { authority: 'example.com', ...opts.client });
  pair.client.handler = (e) => client.handle(e);
  pair.connect();
  pair.run();
  return { pair, server, sconn, client };
}

/** Runs the pair and the event loop (the handler answers asynchronously) until `p` settles. */
async function drive<T>(pair: FakeQuicPair, p: Promise<T>): Promise<T> {
  let done = false;
  const watched = p.finally(() => {
    done = true;
  });
  watched.catch(() => {});
  for (let round = 0; round < 20_000 && !done; round++) {
    pair.run();
    await new Promise((r) => setImmediate(r));
  }
  pair.run();
  return watched;
}

/** Lets the handler run and the pair deliver until nothing moves for a few turns. */
async function settle(pair: FakeQuicPair): Promise<void> {
  let quiet = 0;
  for (let round = 0; round < 20_000 && quiet < 5; round++) {
    quiet = pair.run() === 0 ? quiet + 1 : 0;
    await new Promise((r) => setImmediate(r));
  }
}

const field = (r: H3Response, name: string) => r.headers.find(([n]) => n === name)?.[1];
const text = (b: Uint8Array) => Buffer.from(b).toString();
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const echo: Handler = (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    res.setHeader('x-method', req.method ?? '');
    res.setHeader('x-url', req.url ?? '');
    res.setHeader('x-host', String(req.headers.host));
    res.setHeader('x-version', req.httpVersion);
    if (Object.keys(req.trailers).length > 0) res.setHeader('x-got-trailers', JSON.stringify(req.trailers));
    res.end(body);
  });
};

describe('HTTP/3 exchange over an in-memory QUIC pair', () => {
  it('GET: the (req, res) handler answers, with content-length from end(body)', async () => {
    const { pair, client } = setup((req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(`hello ${req.url} over HTTP/${req.httpVersion}`);
    });
    const r = await drive(pair, client.request({ ':path': '/hi' }));
    expect(r.status).toBe(200);
    expect(text(r.body)).toBe('hello /hi over HTTP/3.0');
    expect(field(r, 'content-type')).toBe('text/plain');
    expect(field(r, 'content-length')).toBe(String(r.body.length));
    // RFC 9114 §4.2: no connection-specific field reaches the wire.
    expect(r.headers.map(([n]) => n)).not.toContain('connection');
    expect(r.headers[0]).toEqual([':status', '200']);
  });

  it('POST: the request reaches the handler as node:http shows it (method, url, Host from :authority)', async () => {
    const { pair, client } = setup(echo);
    const r = await drive(pair, client.request({ ':method': 'POST', ':path': '/p?q=1' }, 'payload'));
    expect(text(r.body)).toBe('payload');
    expect(field(r, 'x-method')).toBe('POST');
    expect(field(r, 'x-url')).toBe('/p?q=1');
    expect(field(r, 'x-host')).toBe('example.com');
    expect(field(r, 'x-version')).toBe('3.0');
  });

  it('large bodies both ways, cut into 1200-byte deliveries, arrive intact', async () => {
    const body = new Prng(7).bytes(3 * 1024 * 1024 + 17);
    const { pair, client } = setup(echo, { pair: { maxChunk: 1200 } });
    const r = await drive(pair, client.request({ ':method': 'PUT', ':path': '/big' }, body));
    expect(r.body.length).toBe(body.length);
    expect(sha(r.body)).toBe(sha(body));
  });

  it('a streamed response (write, write, end) has no content-length and arrives whole', async () => {
    const { pair, client } = setup((_req, res) => {
      res.write('one,');
      setImmediate(() => {
        res.write('two,');
        res.end('three');
      });
    });
    const r = await drive(pair, client.request({ ':path': '/s' }));
    expect(text(r.body)).toBe('one,two,three');
    expect(field(r, 'content-length')).toBeUndefined();
  });

  it('trailers both ways (RFC 9114 §4.1: a trailing HEADERS frame)', async () => {
    const { pair, client } = setup((req, res) => {
      req.resume();
      req.on('end', () => {
        res.setHeader('x-req-trailer', String(req.trailers['x-checksum']));
        res.write('body');
        res.addTrailers({ 'x-digest': 'abc123' });
        res.end();
      });
    });
    const r = await drive(
      pair,
      client.request({ ':method': 'POST', ':path': '/t' }, 'data', [['x-checksum', '42']]),
    );
    expect(field(r, 'x-req-trailer')).toBe('42');
    expect(text(r.body)).toBe('body');
    expect(r.trailers).toEqual([['x-digest', 'abc123']]);
  });

  it('interim responses: writeEarlyHints / 100-continue reach the client before the final response', async () => {
    const { pair, client } = setup((_req, res) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload' });
      res.end('done');
    });
    const r = await drive(pair, client.request({ ':path': '/' }));
    expect(r.informational).toEqual([
      [
        [':status', '103'],
        ['link', '</style.css>; rel=preload'],
      ],
    ]);
    expect(text(r.body)).toBe('done');
  });

  it('HEAD: the response carries content-length but no content', async () => {
    const { pair, client } = setup((_req, res) => {
      res.setHeader('content-length', '5');
      res.end();
    });
    const r = await drive(pair, client.request({ ':method': 'HEAD', ':path': '/' }));
    expect(field(r, 'content-length')).toBe('5');
    expect(r.body.length).toBe(0);
  });

  it('QPACK dynamic table: repeated fields are inserted once and referenced after (RFC 9204 §2.1)', async () => {
    const { pair, client, sconn } = setup(echo);
    const headers = {
      ':path': '/same/path',
      'x-session': 'c7f3a9e1-long-session-token',
      'user-agent': 'stepwire-test',
    };
    const first = await drive(pair, client.request(headers));
    expect(first.status).toBe(200);
    // The client's encoder stream (its second unidirectional stream, ID 6) carried inserts.
    const encoderBytes = pair.client.bytesOf(6).length;
    expect(encoderBytes).toBeGreaterThan(1);
    expect(sconn.h3.decoder.table.insertCount).toBeGreaterThan(0);
    const sizes: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await drive(pair, client.request(headers));
      expect(r.status).toBe(200);
      // Bytes of the HEADERS frame on that request stream.
      sizes.push(pair.client.bytesOf(r.streamId).length);
    }
    // Nothing new to insert: later requests cost a few index bytes each.
    expect(pair.client.bytesOf(6).length).toBe(encoderBytes);
    expect(Math.max(...sizes)).toBeLessThan(12);
    // The server's decoder acknowledged, so the client's encoder knows the entries arrived.
    expect(client.h3.encoder.knownReceivedCount).toBe(client.h3.encoder.table.insertCount);
    // And the response direction uses the server's table too.
    expect(client.h3.decoder.table.insertCount).toBeGreaterThan(0);
  });

  it('QPACK blocked stream: HEADERS that overtake the encoder stream wait for it (RFC 9204 §2.2.1)', async () => {
    const { pair, client, sconn } = setup(echo);
    // SETTINGS have crossed: the client may use a dynamic table and up to 16 blocked streams.
    expect(client.h3.peerSettings).toBeDefined();
    pair.pause('server', 6); // hold the client's encoder stream
    const p = client.request(
      { ':method': 'POST', ':path': '/blocked', 'x-new-field': 'never seen before' },
      'abc',
      [['x-trailer', 'after']],
    );
    await settle(pair);
    expect(sconn.h3.counters.get('h3.qpack.blocked')).toBe(1);
    expect(sconn.h3.decoder.blockedStreams).toBe(1);
    pair.resume('server', 6);
    const r = await drive(pair, p);
    expect(text(r.body)).toBe('abc');
    expect(field(r, 'x-got-trailers')).toBe(JSON.stringify({ 'x-trailer': 'after' }));
    expect(sconn.h3.decoder.blockedStreams).toBe(0);
  });

  it('property: concurrent requests under any stream delivery order all complete intact', async () => {
    let blocked = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        fc.integer({ min: 1, max: 6 }),
        async (seed, n) => {
          const { pair, client, sconn } = setup(echo, { pair: { reorder: true, seed, maxChunk: 700 } });
          await settle(pair);
          const bodies = Array.from({ length: n }, (_, i) => new Prng(seed + i).bytes(100 + i * 997));
          const rs = await drive(
            pair,
            Promise.all(
              bodies.map((b, i) =>
                client.request(
                  { ':method': 'POST', ':path': `/r${i}`, 'x-index': String(i), 'x-common': 'shared-value' },
                  b,
                ),
              ),
            ),
          );
          rs.forEach((r, i) => {
            expect(field(r, 'x-url')).toBe(`/r${i}`);
            expect(sha(r.body)).toBe(sha(bodies[i] ?? new Uint8Array(0)));
          });
          expect(sconn.h3.closed).toBe(false);
          blocked += sconn.h3.counters.get('h3.qpack.blocked') + client.h3.counters.get('h3.qpack.blocked');
        },
      ),
      { numRuns: 25 },
    );
    // The reordering did make HEADERS overtake encoder instructions, in some runs at least.
    expect(blocked).toBeGreaterThan(0);
  });

  it('stream limit: 30 requests with the server allowing 8 at a time all complete, the rest waiting for MAX_STREAMS (RFC 9000 §4.6)', async () => {
    const { pair, client } = setup(echo, { pair: { maxBidiStreams: 8 } });
    const ps = Array.from({ length: 30 }, (_, i) =>
      client.request({ ':method': 'POST', ':path': `/q${i}` }, `body ${i}`),
    );
    expect(client.queued).toBe(22);
    const rs = await drive(pair, Promise.all(ps));
    rs.forEach((r, i) => {
      expect(text(r.body)).toBe(`body ${i}`);
    });
    expect(client.queued).toBe(0);
    expect(pair.client.openedBidi).toBe(30);
    expect(pair.client.maxOpenBidi).toBe(8);
  });

  it('GOAWAY: the request in flight completes, then the connection closes with H3_NO_ERROR (RFC 9114 §5.2)', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const { pair, client, server, sconn } = setup((req, res) => {
      req.resume();
      void gate.then(() => res.end('finished'));
    });
    const p = client.request({ ':path': '/slow' });
    await settle(pair);
    server.shutdown();
    await settle(pair);
    expect(client.h3.goawayReceived).toBe(4);
    // §5.2: no new request on this connection.
    await expect(client.request({ ':path': '/late' })).rejects.toThrow(/GOAWAY/);
    release();
    const r = await drive(pair, p);
    expect(text(r.body)).toBe('finished');
    await settle(pair);
    expect(sconn.h3.closed).toBe(true);
    expect(pair.server.closedWith?.code ?? pair.client.closedWith?.code).toBe(H3ErrorCode.H3_NO_ERROR);
  });

  it('GOAWAY in two phases: a maximal ID first, the real one after; requests sent in between are served (§5.2)', async () => {
    const { pair, client, sconn } = setup((_req, res) => res.end('ok'));
    sconn.h3.shutdown(H3_GOAWAY_MAX_ID);
    await settle(pair);
    expect(client.h3.goawayReceived).toBe(H3_GOAWAY_MAX_ID);
    expect(client.h3.closed).toBe(true); // nothing in flight: the client closes at once
    expect(pair.client.closedWith?.code).toBe(H3ErrorCode.H3_NO_ERROR);

    const two = setup((req, res) => {
      req.resume();
      req.on('end', () => setImmediate(() => res.end('ok')));
    });
    const p = two.client.request({ ':path': '/in-flight' });
    two.pair.run();
    two.sconn.h3.shutdown(H3_GOAWAY_MAX_ID);
    two.pair.run();
    two.sconn.h3.shutdown();
    const r = await drive(two.pair, p);
    expect(text(r.body)).toBe('ok');
    await settle(two.pair);
    // The second GOAWAY named the first request not processed: the one after stream 0.
    expect(two.client.h3.goawayReceived).toBe(4);
    expect(two.client.h3.closed).toBe(true);
    // A larger ID after a smaller one is never sent (§5.2).
    two.sconn.h3.shutdown(H3_GOAWAY_MAX_ID);
    expect(two.sconn.h3.goawaySent).toBe(4);
  });

  it('GOAWAY: requests at or above its ID are rejected and may be retried (H3_REQUEST_REJECTED)', async () => {
    const { pair, client, sconn } = setup((req, res) => {
      req.resume();
      req.on('end', () => setImmediate(() => res.end('ok')));
    });
    const a = client.request({ ':path': '/a' });
    const b = client.request({ ':path': '/b' });
    pair.run();
    // The server has read both requests, but decides to process only stream 0.
    sconn.h3.shutdown(4);
    const [ra, rb] = await drive(pair, Promise.allSettled([a, b]));
    expect(ra.status === 'fulfilled' && text(ra.value.body)).toBe('ok');
    expect(rb.status).toBe('rejected');
    const err = rb.status === 'rejected' ? rb.reason : undefined;
    expect(err).toBeInstanceOf(H3RequestError);
    expect((err as H3RequestError).retryable).toBe(true);
  });

  it('a handler that throws away the request: res.destroy() resets the stream, the connection lives', async () => {
    const { pair, client } = setup((req, res) => {
      if (req.url === '/bad') res.destroy();
      else res.end('fine');
    });
    await expect(drive(pair, client.request({ ':path': '/bad' }))).rejects.toBeInstanceOf(H3RequestError);
    const r = await drive(pair, client.request({ ':path': '/good' }));
    expect(text(r.body)).toBe('fine');
  });

  it('a client that abandons an upload: both directions are reset and the handler sees the request aborted', async () => {
    let aborted = false;
    const { pair, client, sconn } = setup((req) => {
      req.on('aborted', () => {
        aborted = true;
      });
      req.resume();
    });
    const id = client.h3.sendRequest([
      [':method', 'POST'],
      [':scheme', 'https'],
      [':authority', 'example.com'],
      [':path', '/upload'],
    ]);
    client.h3.sendData(id, new Uint8Array(1000));
    await settle(pair);
    expect(sconn.h3.activeStreams).toBe(1);
    client.h3.resetStream(id, H3ErrorCode.H3_REQUEST_CANCELLED);
    await settle(pair);
    expect(aborted).toBe(true);
    expect(pair.client.resets).toContainEqual({ id, code: H3ErrorCode.H3_REQUEST_CANCELLED });
    expect(pair.client.stopSendings).toContainEqual({ id, code: H3ErrorCode.H3_REQUEST_CANCELLED });
    // The server answers STOP_SENDING with RESET_STREAM: no half of the stream is left open.
    expect(pair.server.resets).toContainEqual({ id, code: H3ErrorCode.H3_REQUEST_CANCELLED });
    expect(sconn.h3.activeStreams).toBe(0);
    expect(client.h3.activeStreams).toBe(0);
  });

  it('maxResponseBody: a response larger than the client accepts is cancelled', async () => {
    // Written in pieces, so the stream is still open when the client gives up on it.
    const { pair, client } = setup(
      (req, res) => {
        if (req.url === '/again') return res.end('small');
        let n = 0;
        const more = () => {
          if (n++ === 10) res.end();
          else res.write(Buffer.alloc(600), () => setImmediate(more));
        };
        more();
      },
      { client: { maxResponseBody: 1000 } },
    );
    const err = await drive(pair, client.request({ ':path': '/' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(H3RequestError);
    expect((err as H3RequestError).code).toBe(H3ErrorCode.H3_EXCESSIVE_LOAD);
    // The request had ended: cancelling it is STOP_SENDING on the response (RFC 9114 §4.1.1).
    expect(pair.client.stopSendings.map((x) => x.code)).toContain(H3ErrorCode.H3_REQUEST_CANCELLED);
    // The server, told to stop, resets its side and the connection carries on.
    await settle(pair);
    expect(pair.server.resets.map((x) => x.code)).toContain(H3ErrorCode.H3_REQUEST_CANCELLED);
    expect(text((await drive(pair, client.request({ ':path': '/again' }))).body)).toBe('small');
  });

  it('the trace shows each frame in and out, one ladder line per frame', async () => {
    const trace = new TraceBus();
    const lines: TraceEvent[] = [];
    trace.on((e) => lines.push(e));
    const { pair, client } = setup((_req, res) => res.end('x'), { server: { trace, host: 'S' } });
    await drive(pair, client.request({ ':path': '/' }));
    const summaries = lines.filter((e) => e.layer === 'h3').map((e) => `${e.dir} ${e.summary.split(' ')[0]}`);
    expect(summaries).toEqual(
      expect.arrayContaining(['out SETTINGS', 'in SETTINGS', 'in HEADERS', 'out HEADERS', 'out DATA']),
    );
    // The decoded request reads as one line too.
    expect(lines.map((e) => e.summary)).toContain('request GET / stream=0');
    expect(lines.every((e) => e.host === 'S')).toBe(true);
  });
});
