/**
 * Our HTTP/1.1 server on our TCP on a TUN device, with the Linux kernel's curl, wrk and a
 * raw Python socket as clients inside a network namespace this file creates and removes
 * (198.18.0.0/15 and fd00::/8 only): keep-alive reuse, chunked upload, HTTP/1.0,
 * 100-continue, HEAD, pipelining, and load with zero errors.
 */
import { createHash } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createHttpServer, type HttpServer } from '@stepwire/http';
import type { Netns } from '@stepwire/link';
import { netnsExists } from '@stepwire/link';
import type { TcpServer } from '@stepwire/tcp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRootAndPrograms } from '../packages/cli/src/tun/kernel.ts';
import { TunSession } from '../packages/cli/src/tun/session.ts';
import { bash, runInfo } from './support/tcp-tun.ts';

const NS = `sw-h1tun-${process.pid}`;
const US = '198.18.0.2';
let s: TunSession;
let ns: Netns;
let app: HttpServer;
let tcpServer: TcpServer;

beforeAll(() => {
  requireRootAndPrograms(['ip', 'curl', 'wrk', '/usr/bin/python3']);
  s = TunSession.open({ netns: NS, replace: true, pollTimeoutMs: 50 });
  ns = s.namespace as Netns;
  app = createHttpServer((req, res) => {
    if (req.url === '/sha256') {
      const h = createHash('sha256');
      let n = 0;
      req.on('data', (d: Buffer) => {
        h.update(d);
        n += d.length;
      });
      req.on('end', () => res.end(`${n} ${h.digest('hex')}\n`));
    } else if (req.url === '/chunked') {
      res.write('one,');
      res.end('two\n');
    } else res.end(`hello ${req.method} ${req.url}\n`);
  });
  tcpServer = s.tcp.createServer({ allowHalfOpen: true });
  tcpServer.listen(80);
  app.listen(tcpServer);
});

afterAll(async () => {
  app?.closeAllConnections();
  app?.close();
  tcpServer?.close();
  await s?.close();
  expect(netnsExists(NS)).toBe(false);
});

const curl = (args: string[], timeoutMs = 20_000) =>
  ns.run('curl', ['-sS', '--max-time', String(timeoutMs / 1000 - 2), ...args], { timeoutMs });

describe('the kernel as client of our HTTP/1.1 server over TUN', () => {
  it('curl reuses one keep-alive connection for two URLs', async () => {
    const before = app.stats().accepted;
    const r = await curl(['-v', `http://${US}/a`, `http://${US}/b`]);
    expect(r.code, runInfo(r)).toBe(0);
    expect(r.stdout).toBe('hello GET /a\nhello GET /b\n');
    expect(r.stderr).toMatch(/Re-using existing connection/);
    expect(app.stats().accepted - before).toBe(1);
  });

  it('curl uploads chunked from stdin (-T -)', async () => {
    const r = await bash(
      ns,
      `head -c 400000 /dev/zero | curl -sS --max-time 20 -T - -X POST http://${US}/sha256`,
    );
    expect(r.code, runInfo(r)).toBe(0);
    expect(r.stdout).toBe(`400000 ${createHash('sha256').update(Buffer.alloc(400_000)).digest('hex')}\n`);
  });

  it('curl --http1.0 gets a close-delimited body', async () => {
    const r = await curl(['-i', '--http1.0', `http://${US}/chunked`]);
    expect(r.code, runInfo(r)).toBe(0);
    expect(r.stdout).not.toMatch(/transfer-encoding/i);
    expect(r.stdout).toMatch(/\r\n\r\none,two\n$/);
  });

  it('curl with Expect: 100-continue and a 3 MB body', async () => {
    const file = path.join(tmpdir(), `sw-h1tun-${process.pid}.bin`);
    const body = Buffer.alloc(3_000_000, 0x33);
    writeFileSync(file, body);
    try {
      const r = await curl(
        ['-v', '-H', 'Expect: 100-continue', '--data-binary', `@${file}`, `http://${US}/sha256`],
        40_000,
      );
      expect(r.code, runInfo(r)).toBe(0);
      expect(r.stderr).toMatch(/HTTP\/1\.1 100 Continue/);
      expect(r.stdout).toBe(`3000000 ${createHash('sha256').update(body).digest('hex')}\n`);
    } finally {
      rmSync(file, { force: true });
    }
  });

  it('curl -I (HEAD) over IPv6', async () => {
    const r = await curl(['-I', 'http://[fd00:5757::2]/x']);
    expect(r.code, runInfo(r)).toBe(0);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(r.stdout).toMatch(/Content-Length: 14\r\n/);
  });

  it('three pipelined requests from a raw socket come back in order', async () => {
    const script = `
import socket
s = socket.create_connection(("${US}", 80), timeout=10)
s.sendall(b"GET /1 HTTP/1.1\\r\\nHost: b\\r\\n\\r\\nGET /2 HTTP/1.1\\r\\nHost: b\\r\\n\\r\\nGET /3 HTTP/1.1\\r\\nHost: b\\r\\nConnection: close\\r\\n\\r\\n")
out = b""
while True:
    d = s.recv(65536)
    if not d: break
    out += d
print(out.decode().count("HTTP/1.1 200 OK"), [p.split(b"\\r\\n\\r\\n")[1].decode().strip() for p in out.split(b"HTTP/1.1 200 OK")[1:]])
`;
    const r = await ns.run('/usr/bin/python3', ['-c', script], { timeoutMs: 20_000 });
    expect(r.code, runInfo(r)).toBe(0);
    expect(r.stdout.trim()).toBe("3 ['hello GET /1', 'hello GET /2', 'hello GET /3']");
  });

  it('wrk for 2 s over our whole stack: zero errors', async () => {
    const before = app.stats();
    const r = await ns.run('wrk', ['-t1', '-c8', '-d2s', `http://${US}/`], { timeoutMs: 30_000 });
    expect(r.code, runInfo(r)).toBe(0);
    expect(r.stdout).not.toMatch(/Socket errors|Non-2xx/);
    const n = Number(/(\d+) requests in/.exec(r.stdout)?.[1]);
    expect(n).toBeGreaterThan(20);
    expect(app.stats().parseErrors).toEqual(before.parseErrors);
  });
});
