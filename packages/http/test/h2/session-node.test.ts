/**
 * The session API against node:http2 over node:net on loopback: node's client against our
 * server, our client against node's server, and the h1 (req, res) handler answering h2.
 */
import http2 from 'node:http2';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, createServer, type Http2Stream, h2RequestResponse } from '../../src/h2/internal.ts';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup.splice(0)) c();
});

function listen(server: net.Server): Promise<number> {
  return new Promise((r) =>
    server.listen(0, '127.0.0.1', () => r((server.address() as net.AddressInfo).port)),
  );
}

async function ourServer(onStream: (s: Http2Stream, h: Record<string, unknown>) => void): Promise<number> {
  const h2 = createServer({}, onStream);
  const tcp = net.createServer((sock) => h2.handle(sock));
  cleanup.push(() => {
    for (const s of h2.sessions) s.destroy();
    tcp.close();
  });
  return listen(tcp);
}

function nodeGet(
  port: number,
  path: string,
  body?: Buffer,
): Promise<{ status: number; body: Buffer; trailers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const c = http2.connect(`http://127.0.0.1:${port}`);
    c.on('error', reject);
    const req = c.request({ ':path': path, ':method': body ? 'POST' : 'GET' }, { endStream: !body });
    let status = 0;
    let trailers = {};
    const parts: Buffer[] = [];
    req.on('response', (h) => {
      status = Number(h[':status']);
    });
    req.on('trailers', (t) => {
      trailers = t;
    });
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      c.close();
      resolve({ status, body: Buffer.concat(parts), trailers });
    });
    req.on('error', reject);
    if (body) req.end(body);
  });
}

describe('node:http2 client against our server', () => {
  it('GET, POST echo of 1 MB, trailers, 50 concurrent streams', async () => {
    const port = await ourServer((stream, headers) => {
      if (headers[':path'] === '/echo') {
        stream.respond({ ':status': 200 });
        stream.pipe(stream);
        return;
      }
      if (headers[':path'] === '/trailers') {
        stream.respond({ ':status': 200 }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'x-sum': '42' }));
        stream.end('body');
        return;
      }
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end(`hello ${headers[':path']}`);
    });
    const r = await nodeGet(port, '/a');
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('hello /a');
    const big = Buffer.alloc(1 << 20, 7);
    big.write('start');
    const e = await nodeGet(port, '/echo', big);
    expect(e.body.equals(big)).toBe(true);
    const t = await nodeGet(port, '/trailers');
    expect(t.body.toString()).toBe('body');
    expect(t.trailers['x-sum']).toBe('42');
    const many = await Promise.all(Array.from({ length: 50 }, (_, i) => nodeGet(port, `/m${i}`)));
    expect(many.map((m) => m.body.toString())).toEqual(Array.from({ length: 50 }, (_, i) => `hello /m${i}`));
  });

  it('the HTTP/1.1 (req, res) handler answers h2 through h2RequestResponse', async () => {
    const port = await ourServer((stream, headers) => {
      const { req, res } = h2RequestResponse(stream, headers as Record<string, string>);
      const parts: Buffer[] = [];
      req.on('data', (d: Buffer) => parts.push(d));
      req.on('end', () => {
        res.setHeader('content-type', 'text/plain');
        res.setHeader('x-method', req.method);
        res.addTrailers?.({ 'x-done': 'yes' });
        res.end(`${req.method} ${req.url} ${req.headers.host} ${Buffer.concat(parts).length}`);
      });
    });
    const r = await nodeGet(port, '/compat?q=1', Buffer.alloc(1000));
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe(`POST /compat?q=1 127.0.0.1:${port} 1000`);
  });
});

describe('our client against node:http2 server', () => {
  it('GET and POST, push refused by default, graceful close', async () => {
    const server = http2.createServer();
    server.on('stream', (stream, headers) => {
      if (headers[':method'] === 'POST') {
        const parts: Buffer[] = [];
        stream.on('data', (d: Buffer) => parts.push(d));
        stream.on('end', () => {
          stream.respond({ ':status': 201 });
          stream.end(String(Buffer.concat(parts).length));
        });
        return;
      }
      stream.respond({ ':status': 200, 'x-path': String(headers[':path']) });
      stream.end('from node');
    });
    const tcp = net.createServer();
    tcp.on('connection', (s) => server.emit('connection', s));
    const port = await listen(tcp);
    cleanup.push(() => tcp.close());
    const session = connect(`http://127.0.0.1:${port}`);
    const get = (path: string, body?: Buffer) =>
      new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
        const req = session.request({ ':path': path, ':method': body ? 'POST' : 'GET' });
        let headers: Record<string, unknown> = {};
        const parts: Buffer[] = [];
        req.on('response', (h) => {
          headers = h;
        });
        req.on('data', (d: Buffer) => parts.push(d));
        req.on('end', () =>
          resolve({ status: Number(headers[':status']), headers, body: Buffer.concat(parts).toString() }),
        );
        req.on('error', reject);
        if (body) req.end(body);
      });
    const a = await get('/x');
    expect(a).toMatchObject({ status: 200, body: 'from node' });
    expect(a.headers['x-path']).toBe('/x');
    const b = await get('/p', Buffer.alloc(300_000, 1));
    expect(b).toMatchObject({ status: 201, body: '300000' });
    const all = await Promise.all(Array.from({ length: 20 }, (_, i) => get(`/c${i}`)));
    expect(all.every((x) => x.status === 200)).toBe(true);
    await new Promise<void>((r) => session.close(r));
    expect(session.closed).toBe(true);
  });
});

describe('server push from node:http2 to our client', () => {
  it('accepted when our client enables push, refused (node sees push disabled) by default', async () => {
    const pushErrors: string[] = [];
    const server = http2.createServer();
    server.on('stream', (stream) => {
      if (stream.pushAllowed) {
        stream.pushStream({ ':path': '/style.css' }, (err, push) => {
          if (err || !push) return;
          push.respond({ ':status': 200, 'content-type': 'text/css' });
          push.end('body{}');
        });
      } else pushErrors.push('push not allowed');
      stream.respond({ ':status': 200 });
      stream.end('page');
    });
    const tcp = net.createServer();
    tcp.on('connection', (s) => server.emit('connection', s));
    const port = await listen(tcp);
    cleanup.push(() => tcp.close());
    const fetchWithPush = (enablePush: boolean) =>
      new Promise<{ page: string; pushed: { path: string; body: string }[] }>((resolve, reject) => {
        const session = connect(`http://127.0.0.1:${port}`, { settings: { enablePush } });
        session.once('remoteSettings', () => {
          const pushed: { path: string; body: string }[] = [];
          const waits: Promise<void>[] = [];
          const req = session.request({ ':path': '/' });
          req.on('push', (ps: Http2Stream, headers: Record<string, unknown>) => {
            let b = '';
            ps.on('data', (c: Buffer) => {
              b += c;
            });
            waits.push(
              new Promise((r) =>
                ps.on('end', () => {
                  pushed.push({ path: String(headers[':path']), body: b });
                  r();
                }),
              ),
            );
          });
          let page = '';
          req.on('data', (c: Buffer) => {
            page += c;
          });
          req.on('error', reject);
          req.on('end', async () => {
            await Promise.all(waits);
            session.close();
            resolve({ page, pushed });
          });
        });
      });
    const withPush = await fetchWithPush(true);
    expect(withPush.page).toBe('page');
    expect(withPush.pushed).toEqual([{ path: '/style.css', body: 'body{}' }]);
    const without = await fetchWithPush(false);
    expect(without).toEqual({ page: 'page', pushed: [] });
    expect(pushErrors).toEqual(['push not allowed']);
  });
});
