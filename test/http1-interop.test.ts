import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { createHttpServer, type HttpServer } from '@stepwire/http';
import { createServer as createOurTlsServer } from '@stepwire/tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Real HTTP/1.1 peers against our server on node:net over loopback: curl, undici, wrk,
// nginx as a reverse proxy. (node:http's client is in packages/http/test/h1/server.test.ts, undici in
// packages/http/test/h1/undici.test.ts, where that package is a dependency.)

let server: HttpServer;
let port = 0;
let base = '';

beforeAll(async () => {
  server = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/sha256') {
      const h = createHash('sha256');
      let n = 0;
      req.on('data', (d: Buffer) => {
        h.update(d);
        n += d.length;
      });
      req.on('end', () => res.end(`${n} ${h.digest('hex')}\n`));
    } else if (url.pathname === '/chunked') {
      res.write('one,');
      res.write('two,');
      res.end('three\n');
    } else if (url.pathname === '/headers') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ headers: req.headers, url: req.url, version: req.httpVersion }));
    } else {
      res.setHeader('content-type', 'text/plain');
      res.end(`hello ${req.method} ${url.pathname}\n`);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

function run(
  cmd: string,
  args: string[],
  input?: Buffer,
  timeoutMs = 20_000,
): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve, reject) => {
    const p = execFile(
      cmd,
      args,
      { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'latin1' },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        if (err && typeof (err as { code?: unknown }).code !== 'number') reject(err);
        else resolve({ stdout, stderr, code });
      },
    );
    if (input) p.stdin?.end(input);
    else p.stdin?.end();
  });
}

describe('curl 7.88 against our HTTP/1.1 server', () => {
  it('reuses one keep-alive connection for two URLs in one invocation', async () => {
    const before = server.stats().accepted;
    const r = await run('curl', ['-sv', `${base}/a`, `${base}/b`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('hello GET /a\nhello GET /b\n');
    expect(r.stderr).toMatch(/Re-using existing connection/);
    expect(server.stats().accepted - before).toBe(1);
  });

  it('uploads chunked from stdin (-T -)', async () => {
    const body = Buffer.alloc(300_000, 'z');
    const r = await run('curl', ['-s', '-T', '-', '-X', 'POST', `${base}/sha256`], body);
    expect(r.stdout).toBe(`300000 ${createHash('sha256').update(body).digest('hex')}\n`);
  });

  it("uploads with -H 'Transfer-Encoding: chunked'", async () => {
    const r = await run('curl', [
      '-s',
      '-H',
      'Transfer-Encoding: chunked',
      '--data-binary',
      'abcdef',
      `${base}/sha256`,
    ]);
    expect(r.stdout).toBe(`6 ${createHash('sha256').update('abcdef').digest('hex')}\n`);
  });

  it('speaks HTTP/1.0 (--http1.0): no chunked framing, closes', async () => {
    const r = await run('curl', ['-si', '--http1.0', `${base}/chunked`]);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(r.stdout).not.toMatch(/transfer-encoding/i);
    expect(r.stdout).toMatch(/\r\n\r\none,two,three\n$/);
  });

  it('Expect: 100-continue with a large body', async () => {
    const body = Buffer.alloc(2_000_000, 1);
    const file = path.join(os.tmpdir(), `stepwire-h1-${process.pid}.bin`);
    fs.writeFileSync(file, body);
    try {
      const r = await run('curl', [
        '-sv',
        '-H',
        'Expect: 100-continue',
        '--data-binary',
        `@${file}`,
        `${base}/sha256`,
      ]);
      expect(r.stderr).toMatch(/HTTP\/1\.1 100 Continue/);
      expect(r.stdout).toBe(`2000000 ${createHash('sha256').update(body).digest('hex')}\n`);
    } finally {
      fs.rmSync(file, { force: true });
    }
  });

  it('HEAD (-I) gets the headers and no body', async () => {
    const r = await run('curl', ['-sI', `${base}/x`]);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(r.stdout).toMatch(/Content-Length: 14\r\n/i);
    expect(r.stdout.endsWith('\r\n\r\n')).toBe(true);
  });
});

describe('over TLS: listen() on a node:tls server and on our TLS server over node:net', () => {
  it('curl --cacert fetches through node:tls and through our TLS 1.3', async () => {
    const { ephemeralServeIdentity } = await import('../packages/cli/src/services/https.ts');
    const id = ephemeralServeIdentity();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stepwire-h1-tls-'));
    const caFile = path.join(dir, 'ca.pem');
    fs.writeFileSync(caFile, id.caPem ?? '');
    const app = createHttpServer((req, res) => res.end(`secure ${req.url}\n`));
    const nodeTls = tls.createServer({ cert: id.certPem, key: id.keyPem, ALPNProtocols: ['http/1.1'] });
    app.listen(nodeTls);
    const ours = createOurTlsServer({ cert: id.certPem, key: id.keyPem, ALPNProtocols: ['http/1.1'] });
    const kernel = net.createServer();
    ours.listen(kernel);
    app.listen(ours);
    try {
      for (const srv of [nodeTls, kernel]) {
        await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
        const p = (srv.address() as AddressInfo).port;
        const r = await run('curl', [
          '-s',
          '--cacert',
          caFile,
          '--resolve',
          `stepwire.test:${p}:127.0.0.1`,
          `https://stepwire.test:${p}/a`,
          `https://stepwire.test:${p}/b`,
        ]);
        expect(r.stdout).toBe('secure /a\nsecure /b\n');
      }
      // two connections in all, each reused for its second URL
      expect(app.stats().accepted).toBe(2);
      expect(app.stats().requests).toBe(4);
    } finally {
      app.closeAllConnections();
      app.close();
      ours.close(true);
      await new Promise((r) => nodeTls.close(r));
      await new Promise((r) => kernel.close(r));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('wrk load', () => {
  it('keep-alive load for 2 s with zero errors', async () => {
    const before = server.stats().parseErrors;
    const r = await run('wrk', ['-t1', '-c16', '-d2s', `${base}/`], undefined, 30_000);
    expect(r.code).toBe(0);
    const m = /(\d+) requests in/.exec(r.stdout);
    expect(Number(m?.[1])).toBeGreaterThan(100);
    expect(r.stdout).not.toMatch(/Socket errors|Non-2xx/);
    expect(server.stats().parseErrors).toEqual(before);
  });
});

describe('nginx (Debian) as a reverse proxy in front of our server', () => {
  it('proxies GET, a chunked response and a POST body with keep-alive upstream', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stepwire-nginx-'));
    const nginxPort = await freePort();
    const conf = `
error_log ${dir}/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  # bodies stay in memory: the worker may run as another user than the temp dir's owner
  client_body_buffer_size 4m; client_max_body_size 8m;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream ours { server 127.0.0.1:${port}; keepalive 4; }
  server {
    listen 127.0.0.1:${nginxPort};
    location / { proxy_pass http://ours; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`;
    fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
    fs.chmodSync(dir, 0o755);
    const p = spawn(
      'nginx',
      ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', `daemon off; pid ${dir}/nginx.pid;`],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    p.stderr.on('data', (d) => {
      stderr += d;
    });
    try {
      await waitForPort(nginxPort, 10_000);
      const via = `http://127.0.0.1:${nginxPort}`;
      const before = server.stats().accepted;
      const a = await (await fetch(`${via}/through`)).text();
      expect(a).toBe('hello GET /through\n');
      expect(await (await fetch(`${via}/chunked`)).text()).toBe('one,two,three\n');
      const body = Buffer.alloc(500_000, 9);
      const s = await (await fetch(`${via}/sha256`, { method: 'POST', body })).text();
      expect(s).toBe(`500000 ${createHash('sha256').update(body).digest('hex')}\n`);
      const h = (await (await fetch(`${via}/headers`)).json()) as {
        headers: Record<string, string>;
        version: string;
      };
      expect(h.version).toBe('1.1');
      expect(h.headers.host).toBe('ours');
      // nginx kept its upstream connection alive across these requests
      expect(server.stats().accepted - before).toBeLessThan(4);
    } catch (e) {
      const log = fs.existsSync(path.join(dir, 'error.log'))
        ? fs.readFileSync(path.join(dir, 'error.log'), 'utf8')
        : '';
      throw new Error(`${(e as Error).message}\nnginx error.log:\n${log}`);
    } finally {
      p.kill('SIGTERM');
      await new Promise((r) => p.once('exit', r));
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(stderr).not.toMatch(/emerg/);
  });
});

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

async function waitForPort(p: number, limitMs: number): Promise<void> {
  const until = Date.now() + limitMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(p, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on ${p}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
