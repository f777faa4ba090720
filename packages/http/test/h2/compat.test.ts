/**
 * One handler, both protocols: the HTTP/1.1 server and an h2 server share a (req, res)
 * handler on one cleartext port, chosen by the client preface; curl checks both.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncomingMessage, ServerResponse } from '../../src/h1/messages.ts';
import { createServer as createHttpServer } from '../../src/h1/server.ts';
import { createCompatHttp2Server, routeByPreface } from '../../src/h2/internal.ts';

const handler = (req: IncomingMessage, res: ServerResponse) => {
  let n = 0;
  req.on('data', (d: Buffer) => {
    n += d.length;
  });
  req.on('end', () => {
    res.setHeader('content-type', 'text/plain');
    res.end(`${req.httpVersion} ${req.method} ${req.url} ${n}\n`);
  });
};

let tcp: net.Server;
let port = 0;
const h1 = createHttpServer(handler);
const h2 = createCompatHttp2Server(handler);

beforeAll(async () => {
  tcp = net.createServer((s) => routeByPreface(s, h2, h1));
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
  port = (tcp.address() as net.AddressInfo).port;
});
afterAll(() => {
  for (const s of h2.sessions) s.destroy();
  h1.closeAllConnections?.();
  tcp.close();
});

// curl as a child process, bounded by --max-time and a kill by PID, on loopback.
const curl = (args: string[]) =>
  new Promise<{ stdout: string }>((resolve, reject) => {
    const p = spawn('curl', ['-s', '--max-time', '20', ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    p.stdout.on('data', (d) => {
      stdout += d;
    });
    const t = setTimeout(() => {
      if (p.pid) process.kill(p.pid, 'SIGKILL');
    }, 30_000);
    p.on('error', reject);
    p.on('close', () => {
      clearTimeout(t);
      resolve({ stdout });
    });
  });

describe('one port, one handler, HTTP/1.1 and h2 by preface', () => {
  it('curl over HTTP/1.1 gets the handler through the h1 server', async () => {
    const r = await curl(['-d', 'abc', `http://127.0.0.1:${port}/one`]);
    expect(r.stdout).toBe('1.1 POST /one 3\n');
  });
  it('curl --http2-prior-knowledge gets the same handler through h2', async () => {
    const r = await curl(['--http2-prior-knowledge', '-d', 'abcdef', `http://127.0.0.1:${port}/two`]);
    expect(r.stdout).toBe('2.0 POST /two 6\n');
  });
});

describe('header values are octets', () => {
  it('a header with a character above U+00FF is refused rather than cut to one octet', async () => {
    const { http2HeaderList } = await import('../../src/h2/index.ts');
    expect(() => http2HeaderList({ ':status': 200, 'x-name': 'caf\u00e9 \u2603' })).toThrow(
      /Invalid character/,
    );
    expect(http2HeaderList({ ':status': 200, 'x-name': 'caf\u00e9' })).toEqual([
      { name: ':status', value: '200' },
      { name: 'x-name', value: 'caf\u00e9' },
    ]);
  });
});
