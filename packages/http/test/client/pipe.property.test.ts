import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import { fc, test as fcTest } from '@fast-check/vitest';
import { Prng } from '@stepwire/wire';
import { describe, expect } from 'vitest';
import { Agent } from '../../src/client/agent.ts';
import { fetch } from '../../src/client/fetch.ts';
import { createHttpServer } from '../../src/h1/server.ts';

/** In-memory byte streams that deliver each write in seeded random pieces on later turns. */
function pipePair(prng: Prng): [Duplex, Duplex] {
  const ends: (Duplex & { peer?: Duplex })[] = [];
  for (let i = 0; i < 2; i++) {
    const d: Duplex & { peer?: Duplex } = new Duplex({
      allowHalfOpen: true,
      read() {},
      write(chunk: Buffer, _enc, cb) {
        let o = 0;
        while (o < chunk.length) {
          const piece = chunk.subarray(o, o + 1 + prng.int(0, 200));
          o += piece.length;
          setImmediate(() => d.peer?.push(piece));
        }
        setImmediate(cb);
      },
      final(cb) {
        setImmediate(() => d.peer?.push(null));
        cb();
      },
    });
    ends.push(d);
  }
  const [a, b] = ends as [Duplex & { peer?: Duplex }, Duplex & { peer?: Duplex }];
  a.peer = b;
  b.peer = a;
  return [a, b];
}

const arbitraryExchange = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT'),
  path: fc.stringMatching(/^\/[a-z0-9/]{0,20}$/),
  body: fc.uint8Array({ maxLength: 3000 }),
  streamed: fc.boolean(),
});

describe('our client and our server over a stream that splits every write at random', () => {
  fcTest.prop(
    [
      fc.array(arbitraryExchange, { minLength: 1, maxLength: 6 }),
      fc.integer(),
      fc.integer({ min: 1, max: 3 }),
    ],
    {
      numRuns: 30,
    },
  )(
    'every response matches its request, over a pool of kept connections',
    async (exchanges, seed, maxSockets) => {
      const prng = new Prng(seed);
      const source = new EventEmitter();
      const server = createHttpServer((req, res) => {
        const parts: Buffer[] = [];
        req.on('data', (c: Buffer) => parts.push(c));
        req.on('end', () => {
          const body = Buffer.concat(parts);
          res.setHeader('x-request', `${req.method} ${req.url} ${body.length}`);
          // Echo reversed, half of the time chunked (no length known up front).
          const out = Buffer.from(body).reverse();
          if (body.length % 2) {
            res.write(out.subarray(0, out.length >> 1));
            res.end(out.subarray(out.length >> 1));
          } else res.end(out);
        });
      });
      server.listen(source);
      const agent = new Agent({
        maxSockets,
        connect: () => {
          const [c, s] = pipePair(prng);
          setImmediate(() => source.emit('connection', s));
          return c;
        },
      });
      const results = await Promise.all(
        exchanges.map(async (x) => {
          const hasBody = x.method !== 'GET';
          const body = !hasBody
            ? undefined
            : x.streamed
              ? new ReadableStream<Uint8Array>({
                  start(c) {
                    c.enqueue(x.body.subarray(0, 100));
                    c.enqueue(x.body.subarray(100));
                    c.close();
                  },
                })
              : x.body;
          const r = await fetch(`http://pipe.test${x.path}`, {
            method: x.method,
            body,
            duplex: 'half',
            agent,
          });
          return { head: r.headers.get('x-request'), body: new Uint8Array(await r.arrayBuffer()) };
        }),
      );
      expect(results).toEqual(
        exchanges.map((x) => {
          const sent = x.method === 'GET' ? new Uint8Array(0) : x.body;
          return {
            head: `${x.method} ${x.path} ${sent.length}`,
            body: new Uint8Array(Buffer.from(sent).reverse()),
          };
        }),
      );
      const stats = Object.values(agent.stats().origins)[0];
      expect(stats?.created).toBeLessThanOrEqual(maxSockets);
      agent.destroy();
      server.close();
    },
  );
});
