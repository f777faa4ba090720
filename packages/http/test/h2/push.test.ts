/**
 * Server push through the (req, res) layer, as node:http2's compat API has it:
 * `res.createPushResponse(headers, cb)` and `res.stream.pushStream` (RFC 9113 §8.4). Sent
 * only when the client allows push (SETTINGS_ENABLE_PUSH), refused with an error otherwise
 * while the response itself still goes out. Checked with node:http2's client and nghttp.
 */
import { spawn } from 'node:child_process';
import http2 from 'node:http2';
import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncomingMessage, ServerResponse } from '../../src/h1/messages.ts';
import { createServer as createHttpServer } from '../../src/h1/server.ts';
import { isHttp2Response } from '../../src/h2/internal.ts';

const outcomes: string[] = [];

function handler(req: IncomingMessage, res: ServerResponse): void {
  if (!isHttp2Response(res)) {
    res.end('no push over HTTP/1.1\n');
    return;
  }
  if (req.url === '/page') {
    res.createPushResponse({ ':path': '/style.css' }, (err, pushed) => {
      if (err || !pushed) {
        outcomes.push(`refused ${(err as { code?: string }).code}`);
      } else {
        outcomes.push('pushed');
        pushed.setHeader('content-type', 'text/css');
        pushed.end('body { color: teal }');
      }
      res.setHeader('content-type', 'text/html');
      res.end('<link rel=stylesheet href=/style.css>page');
    });
  } else if (req.url === '/raw') {
    // The session API under the response: res.stream.pushStream.
    res.stream.pushStream({ ':path': '/raw.js' }, (err, s) => {
      if (!err && s) {
        s.respond({ ':status': 200, 'content-type': 'text/javascript' });
        s.end('1;');
      }
      res.end(err ? `push refused: ${(err as { code?: string }).code}` : 'raw page');
    });
  } else if (req.url === '/late') {
    res.end('done', () => {
      res.createPushResponse({ ':path': '/x' }, (err) => {
        outcomes.push(`late ${(err as { code?: string } | null)?.code}`);
      });
    });
  } else res.end('?');
}

const server = createHttpServer(handler);
let port = 0;
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as net.AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function readAll(s: http2.ClientHttp2Stream): Promise<{ headers: http2.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    let headers: http2.IncomingHttpHeaders = {};
    let body = '';
    s.on('response', (h) => {
      headers = h;
    });
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      body += d;
    });
    s.on('end', () => resolve({ headers, body }));
    s.on('error', reject);
  });
}

describe('res.createPushResponse against node:http2', () => {
  it('the client allows push: PUSH_PROMISE for /style.css, its response, then the page', async () => {
    outcomes.length = 0;
    const client = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const pushed = new Promise<{
        promise: http2.IncomingHttpHeaders;
        headers: http2.IncomingHttpHeaders;
        body: string;
      }>((resolve, reject) => {
        client.on('stream', (stream, promise) => {
          readAll(stream as unknown as http2.ClientHttp2Stream).then(
            ({ body }) => resolve({ promise, headers: pushedHeaders, body }),
            reject,
          );
          let pushedHeaders: http2.IncomingHttpHeaders = {};
          stream.on('push', (h) => {
            pushedHeaders = h;
          });
        });
      });
      const page = await readAll(client.request({ ':path': '/page' }));
      const p = await pushed;
      expect(page.body).toBe('<link rel=stylesheet href=/style.css>page');
      expect(p.promise[':path']).toBe('/style.css');
      expect(p.promise[':method']).toBe('GET');
      expect(p.promise[':scheme']).toBe('http');
      expect(p.promise[':authority']).toBe(`127.0.0.1:${port}`);
      expect(p.headers[':status']).toBe(200);
      expect(p.headers['content-type']).toBe('text/css');
      expect(p.body).toBe('body { color: teal }');
      expect(outcomes).toEqual(['pushed']);
    } finally {
      client.close();
    }
  });

  it('the client disables push (SETTINGS_ENABLE_PUSH = 0): refused with ERR_HTTP2_PUSH_DISABLED, no PUSH_PROMISE, the page arrives', async () => {
    outcomes.length = 0;
    const client = http2.connect(`http://127.0.0.1:${port}`, { settings: { enablePush: false } });
    try {
      let streams = 0;
      client.on('stream', () => streams++);
      // Our server must have seen the setting before the request: wait for the SETTINGS ACK.
      await new Promise<void>((r) => client.once('localSettings', () => r()));
      const page = await readAll(client.request({ ':path': '/page' }));
      expect(page.body).toBe('<link rel=stylesheet href=/style.css>page');
      expect(outcomes).toEqual(['refused ERR_HTTP2_PUSH_DISABLED']);
      const raw = await readAll(client.request({ ':path': '/raw' }));
      expect(raw.body).toBe('push refused: ERR_HTTP2_PUSH_DISABLED');
      expect(streams).toBe(0);
    } finally {
      client.close();
    }
  });

  it('res.stream.pushStream pushes too; a push after the response ended is refused', async () => {
    outcomes.length = 0;
    const client = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const pushedBody = new Promise<string>((resolve, reject) => {
        client.on('stream', (stream) => {
          readAll(stream as unknown as http2.ClientHttp2Stream).then(({ body }) => resolve(body), reject);
        });
      });
      const raw = await readAll(client.request({ ':path': '/raw' }));
      expect(raw.body).toBe('raw page');
      expect(await pushedBody).toBe('1;');
      const late = await readAll(client.request({ ':path': '/late' }));
      expect(late.body).toBe('done');
      await new Promise<void>((r) => {
        const t = setInterval(() => {
          if (outcomes.length > 0) {
            clearInterval(t);
            r();
          }
        }, 5);
      });
      expect(outcomes).toEqual(['late ERR_HTTP2_INVALID_STREAM']);
    } finally {
      client.close();
    }
  });
});

// nghttp as a child process, bounded by its own timeout and a kill by PID, on loopback.
function nghttp(args: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('nghttp', ['-t', '10', ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    p.stdout.on('data', (d) => {
      stdout += d;
    });
    const t = setTimeout(() => {
      if (p.pid) process.kill(p.pid, 'SIGKILL');
    }, 20_000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout });
    });
  });
}

describe('res.createPushResponse against nghttp', () => {
  it('nghttp -v: PUSH_PROMISE on the request stream promising stream 2, the pushed body received', async () => {
    const r = await nghttp(['-v', `http://127.0.0.1:${port}/page`]);
    expect(r.code).toBe(0);
    // nghttp 1.52 opens its request on stream 13 (after its PRIORITY-tree streams): read it off.
    const id = /send HEADERS frame <length=\d+, flags=0x\w+, stream_id=(\d+)>/.exec(r.stdout)?.[1];
    expect(id).toBeDefined();
    expect(r.stdout).toMatch(
      new RegExp(`recv PUSH_PROMISE frame <length=\\d+, flags=0x04, stream_id=${id}>`),
    );
    expect(r.stdout).toContain(`recv (stream_id=${id}) :scheme: http\n`);
    expect(r.stdout).toMatch(/promised_stream_id=2/);
    expect(r.stdout).toContain(`recv (stream_id=${id}) :path: /style.css`);
    expect(r.stdout).toMatch(/recv DATA frame <length=20, flags=0x01, stream_id=2>/);
    expect(r.stdout).toContain('<link rel=stylesheet href=/style.css>page');
  });

  it('nghttp --no-push: no PUSH_PROMISE, the page still answers', async () => {
    const r = await nghttp(['-v', '--no-push', `http://127.0.0.1:${port}/page`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\[SETTINGS_ENABLE_PUSH\(0x02\):0\]/);
    expect(r.stdout).not.toMatch(/PUSH_PROMISE/);
    expect(r.stdout).toContain('<link rel=stylesheet href=/style.css>page');
  });
});
