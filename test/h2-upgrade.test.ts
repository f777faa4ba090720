/**
 * h2c upgrade through the HTTP server (RFC 7540 §3.2): `curl --http2 http://…` sends its
 * request with `Upgrade: h2c` and `HTTP2-Settings`; the server answers 101 and continues in
 * HTTP/2 with that request as stream 1, the same (req, res) handler answering. Checked with
 * curl and with a raw node:net socket reading the frames; a request with a body, or a server
 * with http2: false, stays HTTP/1.1.
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncomingMessage, ServerResponse } from '../packages/http/src/h1/messages.ts';
import { createServer as createHttpServer } from '../packages/http/src/h1/server.ts';
import { CONNECTION_PREFACE, encodeFrame } from '../packages/http/src/h2/internal.ts';
import { RawClient } from '../packages/http/test/h2/raw-client.ts';

function handler(req: IncomingMessage, res: ServerResponse): void {
  let n = 0;
  req.on('data', (d: Buffer) => {
    n += d.length;
  });
  req.on('end', () => {
    res.setHeader('content-type', 'text/plain');
    res.end(`${req.httpVersion} ${req.method} ${req.url} ${n}\n`);
  });
}

const servers: { server: ReturnType<typeof createHttpServer>; port: number }[] = [];
beforeAll(async () => {
  for (const http2 of [true, false]) {
    const server = createHttpServer({ http2 }, handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    servers.push({ server, port: (server.address() as net.AddressInfo).port });
  }
});
afterAll(async () => {
  for (const { server } of servers) {
    server.closeAllConnections?.();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
const port = (i = 0) => servers[i]?.port ?? 0;

// curl as a child process, bounded by --max-time, on loopback.
function curl(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-s', '--max-time', '10', ...args], { timeout: 20_000 }, (_e, stdout, stderr) =>
      resolve({ stdout, stderr }),
    );
  });
}

const SETTINGS = Buffer.from(
  encodeFrame({ type: 'SETTINGS', ack: false, settings: [[0x3, 100]] }).subarray(9),
).toString('base64url');

describe('h2c upgrade', () => {
  it('curl --http2 http://…: 101, then the answer over HTTP/2 on stream 1', async () => {
    const r = await curl(['-v', '--http2', `http://127.0.0.1:${port()}/up?x=1`]);
    expect(r.stderr).toMatch(/< HTTP\/1\.1 101 Switching Protocols/);
    expect(r.stderr).toMatch(/< HTTP\/2 200/);
    expect(r.stdout).toBe('2.0 GET /up?x=1 0\n');
  });

  it('curl --http2 twice on one connection: the second request is stream 3 of the same session', async () => {
    const r = await curl(['-v', '--http2', `http://127.0.0.1:${port()}/a`, `http://127.0.0.1:${port()}/b`]);
    expect(r.stdout).toBe('2.0 GET /a 0\n2.0 GET /b 0\n');
    expect(r.stderr.match(/101 Switching Protocols/g)).toHaveLength(1);
    expect(r.stderr).toMatch(/Re-using existing connection|re-using/i);
  });

  it('a raw socket: request, 101, preface, then SETTINGS, HEADERS and DATA on stream 1', async () => {
    const s = net.connect(port(), '127.0.0.1');
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write(
      `GET /raw HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: ${SETTINGS}\r\n\r\n`,
    );
    // The 101 first, as HTTP/1.1 text; then h2 frames.
    let head = Buffer.alloc(0);
    const rest = await new Promise<Buffer>((resolve) => {
      const on = (d: Buffer) => {
        head = Buffer.concat([head, d]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        s.off('data', on);
        resolve(head.subarray(end + 4));
      };
      s.on('data', on);
    });
    expect(head.toString('latin1')).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
    expect(head.toString('latin1')).toMatch(/\r\nUpgrade: h2c\r\n/i);
    const c = RawClient.adopt(s, rest);
    c.write(CONNECTION_PREFACE, encodeFrame({ type: 'SETTINGS', ack: false, settings: [] }));
    await c.until(
      () =>
        c.frames.some((f) => f.type === 'DATA' && f.streamId === 1 && f.endStream) &&
        c.frames.some((f) => f.type === 'SETTINGS' && f.ack),
    );
    expect(c.frames[0]).toMatchObject({ type: 'SETTINGS', ack: false });
    const stream1 = c.frames.filter((f) => 'streamId' in f && f.streamId === 1);
    expect(stream1.map((f) => f.type)).toEqual(['HEADERS', 'DATA']);
    const data = stream1[1] as { data: Uint8Array };
    expect(Buffer.from(data.data).toString()).toBe('2.0 GET /raw 0\n');
    // One SETTINGS ACK, for the frame after the preface (the 101 acknowledged HTTP2-Settings).
    expect(c.frames.filter((f) => f.type === 'SETTINGS' && f.ack)).toHaveLength(1);
    c.destroy();
  });

  it('a request with a body asking for h2c is answered in HTTP/1.1 (RFC 7540 §3.2 lets the server ignore it)', async () => {
    const r = await curl(['-v', '--http2', '-d', 'abc', `http://127.0.0.1:${port()}/post`]);
    expect(r.stderr).not.toMatch(/101 Switching Protocols/);
    expect(r.stdout).toBe('1.1 POST /post 3\n');
  });

  it('a server with http2: false stays HTTP/1.1', async () => {
    const r = await curl(['-v', '--http2', `http://127.0.0.1:${port(1)}/plain`]);
    expect(r.stderr).not.toMatch(/101 Switching Protocols/);
    expect(r.stdout).toBe('1.1 GET /plain 0\n');
  });
});
