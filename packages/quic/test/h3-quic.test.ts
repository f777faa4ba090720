import type { IncomingMessage, ServerResponse } from '@stepwire/http';
import { pki } from '@stepwire/tls';
import { bytesEqual, Prng } from '@stepwire/wire';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { altSvcH3, H3ErrorCode } from '../src/h3/index.ts';
import { closeLoopback, h3Pair } from './support/h3-loopback.ts';
import { waitFor } from './support/wait.ts';

/**
 * Our HTTP/3 client and server over our QUIC and TLS on node:dgram (loopback): the whole
 * stack end to end, with the (req, res) handler the HTTP/1.1 and HTTP/2 servers run.
 */

let creds: ReturnType<typeof pki.createStepwireCredentials>;
beforeAll(() => {
  creds = pki.createStepwireCredentials(new Date());
});

afterEach(closeLoopback);

const pair = (handler: (req: IncomingMessage, res: ServerResponse) => void) => h3Pair(creds, handler);

describe('our HTTP/3 client ↔ our HTTP/3 server over our QUIC (node:dgram, loopback)', () => {
  it('GET with Alt-Svc, POST of 256 kB echoed with trailers, then GOAWAY and a clean close', async () => {
    const { service, session, conns, port } = await pair((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.method === 'GET') {
          res.setHeader('alt-svc', altSvcH3({ port }));
          res.end(`hello ${req.headers.host} over HTTP/${req.httpVersion}`);
          return;
        }
        res.write(Buffer.concat(chunks));
        res.addTrailers({ 'x-length': String(Buffer.concat(chunks).length) });
        res.end();
      });
    });
    const get = await session.client.request({ ':path': '/' });
    expect(get.status).toBe(200);
    expect(Buffer.from(get.body).toString()).toBe(`hello 127.0.0.1:${port} over HTTP/3.0`);
    expect(get.headers).toContainEqual(['alt-svc', `h3=":${port}"; ma=86400`]);

    const body = new Prng(3).bytes(256 * 1024);
    const post = await session.client.request({ ':method': 'POST', ':path': '/echo' }, body);
    expect(bytesEqual(post.body, body)).toBe(true);
    expect(post.trailers).toEqual([['x-length', String(body.length)]]);

    // RFC 9114 §5.2: GOAWAY with nothing in flight; the client closes with H3_NO_ERROR.
    service.shutdown();
    await waitFor('the client to close', () => session.client.h3.closed);
    expect(session.client.h3.closeInfo).toMatchObject({ code: H3ErrorCode.H3_NO_ERROR, local: true });
    await waitFor('the server to see it', () => conns.every((c) => c.h3.closed));
    expect(conns[0]?.h3.closeInfo).toMatchObject({ code: H3ErrorCode.H3_NO_ERROR, local: false });
    await waitFor('QUIC to drain', () => session.connection.isDrained, 10_000);
    expect(service.connectionCount).toBe(0);
    for (const c of conns) expect(c.h3.counters.total('h3.connection-error')).toBe(0);
  });
});
