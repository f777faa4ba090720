/**
 * `stepwire fetch`: our HTTP/1.1 client as a curl-like command. Against node:http and
 * node:https (OpenSSL; the shared test CA and leaves of test/support/tls-peers.ts) on loopback, and over
 * TUN against python's http.server on the kernel side of a namespace this file makes and
 * removes (root; fails, never skips, without it).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHttpServer } from '@stepwire/http';
import { netnsDown, netnsExists, netnsUp } from '@stepwire/link';
import { createServer as tlsCreateServer } from '@stepwire/tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tlsFixtures } from '../../../test/support/tls-peers.ts';
import { EXIT, type FetchCliOptions, type FetchIo, runFetch } from '../src/commands/fetch.ts';
import { runCli } from '../src/commands/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'sw-fetch-'));
let server: http.Server;
let base = '';
let tlsServer: https.Server;
let tlsPort = 0;
let caFile = '';
let wrongServer: https.Server;
let wrongPort = 0;
const BIG = Buffer.alloc(2 * 1024 * 1024 + 7).map((_, i) => (i * 31) & 0xff);
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      const hop = /^\/hop\/(\d+)\/(\d+)$/.exec(req.url ?? '');
      if (hop) {
        // /hop/<status>/<n>: redirect with that status n more times, then /hello.
        const n = Number(hop[2]);
        res.writeHead(Number(hop[1]), { location: n > 1 ? `/hop/${hop[1]}/${n - 1}` : '/hello' }).end();
      } else if (req.url === '/silent') {
        // Never answers: for --max-time.
      } else if (req.url === '/big') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG.length });
        res.end(BIG);
      } else if (req.url === '/missing') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not here\n');
      } else {
        res.writeHead(200, { 'content-type': 'application/json', 'x-served-by': 'node:http' });
        res.end(
          JSON.stringify({
            method: req.method,
            url: req.url,
            body: body.toString('latin1'),
            contentType: req.headers['content-type'] ?? null,
            trace: req.headersDistinct['x-trace'] ?? [],
            userAgent: req.headers['user-agent'],
          }),
        );
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  // The shared fixtures: a P-256 CA and a leaf for stepwire.test it signed; a leaf for
  // other.test only (a name mismatch) from the same CA.
  const pki = tlsFixtures();
  const leaf = pki.server['P-256'].leaf;
  caFile = pki.server['P-256'].ca.certFile;
  const serve = (id: { certPem: string; keyPem: string }) =>
    https.createServer({ cert: id.certPem, key: id.keyPem, minVersion: 'TLSv1.3' }, (req, res) =>
      res.end(`secure ${req.method} ${req.url} sni=${(req.socket as { servername?: string }).servername}`),
    );
  tlsServer = serve(leaf);
  wrongServer = serve(pki.wrongName);
  wrongServer.listen(0, '127.0.0.1');
  await once(wrongServer, 'listening');
  wrongPort = (wrongServer.address() as AddressInfo).port;
  tlsServer.listen(0, '127.0.0.1');
  await once(tlsServer, 'listening');
  tlsPort = (tlsServer.address() as AddressInfo).port;
});

afterAll(() => {
  server.closeAllConnections();
  server.close();
  for (const x of [tlsServer, wrongServer]) {
    x.closeAllConnections();
    x.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

/** runFetch with buffers for stdout and stderr. */
async function fetchCli(url: string, o: FetchCliOptions = {}, tty = { err: false, out: false }) {
  const out: Buffer[] = [];
  let err = '';
  const io: FetchIo = {
    out: (b) => out.push(Buffer.from(b)),
    err: (t) => (err += t),
    errIsTty: tty.err,
    outIsTty: tty.out,
  };
  const code = await runFetch(url, o, io);
  const stdout = Buffer.concat(out);
  return { code, stdout, text: stdout.toString(), err };
}

describe('stepwire fetch against node:http on loopback', () => {
  it('GET prints the body; -i puts the status line and fields before it', async () => {
    const plain = await fetchCli(`${base}/hello?x=1`);
    expect(plain.code).toBe(0);
    expect(JSON.parse(plain.text)).toMatchObject({
      method: 'GET',
      url: '/hello?x=1',
      userAgent: 'stepwire-fetch',
    });
    const head = await fetchCli(`${base}/hello`, { include: true });
    expect(head.code).toBe(0);
    const [top, rest] = head.text.split('\r\n\r\n');
    expect(top?.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    expect(top).toMatch(/^x-served-by: node:http$/im);
    expect(JSON.parse(rest ?? '').url).toBe('/hello');
  });

  it('POST with -d (and -d @file without newlines, --data-binary @file byte for byte), repeatable -H', async () => {
    const r = await fetchCli(`${base}/echo`, {
      data: ['a=1', 'b=2'],
      header: ['X-Trace: one', 'X-Trace: two'],
    });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.text)).toMatchObject({
      method: 'POST',
      body: 'a=1&b=2',
      contentType: 'application/x-www-form-urlencoded',
      trace: ['one', 'two'],
    });
    const file = join(dir, 'form.txt');
    writeFileSync(file, 'line1\r\nline2\n');
    const fromFile = JSON.parse((await fetchCli(`${base}/echo`, { data: [`@${file}`] })).text);
    expect(fromFile.body).toBe('line1line2');
    const binary = JSON.parse(
      (
        await fetchCli(`${base}/echo`, {
          dataBinary: [`@${file}`],
          request: 'put',
          header: ['Content-Type: text/plain'],
        })
      ).text,
    );
    expect(binary).toMatchObject({ method: 'PUT', body: 'line1\r\nline2\n', contentType: 'text/plain' });
  });

  it('-o writes the body to a file, stdout stays empty; a terminal stderr gets a progress bar for a large body', async () => {
    const file = join(dir, 'big.bin');
    const r = await fetchCli(`${base}/big`, { output: file }, { err: true, out: true });
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(0);
    expect(sha256(readFileSync(file))).toBe(sha256(BIG));
    expect(r.err).toMatch(/100%\s+2\.0 MiB \/ 2\.0 MiB/);
    expect(r.err.endsWith('\n')).toBe(true);
    // No terminal, no bar; a small body, no bar either.
    expect((await fetchCli(`${base}/big`, { output: file })).err).toBe('');
    expect((await fetchCli(`${base}/small`, { output: file }, { err: true, out: true })).err).toBe('');
  });

  it('-f: status 404 exits 22 without the body; without -f the body is printed and the exit is 0', async () => {
    const failed = await fetchCli(`${base}/missing`, { fail: true });
    expect(failed.code).toBe(EXIT.httpError);
    expect(failed.code).toBe(22);
    expect(failed.stdout.length).toBe(0);
    expect(failed.err).toMatch(/\(22\) The requested URL returned error: 404/);
    const shown = await fetchCli(`${base}/missing`);
    expect(shown.code).toBe(0);
    expect(shown.text).toBe('not here\n');
  });

  it("curl's exit codes: 7 connection refused, 6 unknown name (no DNS query is made), 2 usage", async () => {
    const closed = http.createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    closed.close();
    await once(closed, 'close');
    const refused = await fetchCli(`http://127.0.0.1:${port}/`);
    expect(refused.code).toBe(7);
    expect(refused.err).toMatch(/ECONNREFUSED/);
    const unknown = await fetchCli('http://no-such-host.invalid/');
    expect(unknown.code).toBe(6);
    expect(unknown.err).toMatch(/Could not resolve host: no-such-host\.invalid/);
    // localhost and --resolve do resolve.
    expect((await fetchCli(`${base.replace('127.0.0.1', 'localhost')}/x`)).code).toBe(0);
    const via = await fetchCli(`http://api.test:${new URL(base).port}/r`, {
      resolve: [`api.test:${new URL(base).port}:127.0.0.1`],
    });
    expect(JSON.parse(via.text).url).toBe('/r');
    let err = '';
    const io = { out: () => {}, err: (t: string) => (err += t) };
    expect(await runCli(['fetch', '-H', 'no colon', `${base}/`], io)).toBe(2);
    expect(err).toMatch(/-H expects 'Name: value'/);
    expect(await runCli(['fetch', 'ftp://127.0.0.1/'], io)).toBe(2);
    expect(await runCli(['fetch'], io)).toBe(2);
  });

  it('the command as a program: exit status 22 with -f, the body on stdout otherwise', async () => {
    const main = join(import.meta.dirname, '../src/main.ts');
    // Asynchronous children: the server they talk to lives in this process.
    const run = async (args: string[]) => {
      const child = spawn(process.execPath, ['--import', 'tsx', main, 'fetch', ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d));
      const [code] = (await once(child, 'exit')) as [number | null];
      return { code, out };
    };
    const [failed, shown] = await Promise.all([run(['-f', `${base}/missing`]), run([`${base}/missing`])]);
    expect(failed).toEqual({ code: 22, out: '' });
    expect(shown).toEqual({ code: 0, out: 'not here\n' });
  });
});

describe('stepwire fetch: redirects, -v, --max-time', () => {
  it('-L follows redirects: 302 after POST becomes GET, 307 keeps the method and body; without -L the 3xx is the answer', async () => {
    const post = await fetchCli(`${base}/hop/302/2`, { data: ['x=1'], location: true, include: true });
    expect(post.code).toBe(0);
    expect(post.text.match(/^HTTP\/1\.1 302 Found\r$/gm)).toHaveLength(2);
    expect(JSON.parse(post.text.slice(post.text.lastIndexOf('\r\n\r\n') + 4))).toMatchObject({
      method: 'GET',
      url: '/hello',
      body: '',
    });
    const kept = await fetchCli(`${base}/hop/307/3`, { data: ['x=1'], location: true });
    expect(JSON.parse(kept.text)).toMatchObject({ method: 'POST', url: '/hello', body: 'x=1' });
    const stay = await fetchCli(`${base}/hop/302/1`, { include: true });
    expect(stay.code).toBe(0);
    expect(stay.text).toMatch(/^HTTP\/1\.1 302 Found\r\n/);
    expect(stay.text).toMatch(/^location: \/hello\r$/im);
  });

  it('-L gives up after 20 redirects with exit 47', async () => {
    const r = await fetchCli(`${base}/hop/301/25`, { location: true });
    expect(r.code).toBe(47);
    expect(r.err).toMatch(/Maximum \(20\) redirects followed/);
  });

  it('-v shows the connection, the request head and the response head on stderr, not in the body', async () => {
    const r = await fetchCli(`${base}/hello`, { verbose: true, header: ['X-Trace: v'] });
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/^\* Connected to 127\.0\.0\.1 \(127\.0\.0\.1\) port \d+$/m);
    expect(r.err).toMatch(/^> GET \/hello HTTP\/1\.1$/m);
    expect(r.err).toMatch(/^> X-Trace: v$/m);
    expect(r.err).toMatch(/^< HTTP\/1\.1 200 OK$/m);
    expect(JSON.parse(r.text).trace).toEqual(['v']);
  });

  it('--max-time: a server that never answers ends in exit 28', async () => {
    const r = await fetchCli(`${base}/silent`, { maxTime: 0.3 });
    expect(r.code).toBe(28);
    expect(r.err).toMatch(/timed out after 0\.3 s/);
  });
});

describe('stepwire fetch over https (node:https, OpenSSL) on loopback', () => {
  it('--cacert and --resolve: verified against the name in the URL, SNI sent', async () => {
    const url = `https://stepwire.test:${tlsPort}/secure`;
    const r = await fetchCli(url, {
      cacert: caFile,
      resolve: [`stepwire.test:${tlsPort}:127.0.0.1`],
    });
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.text).toBe('secure GET /secure sni=stepwire.test');
  });

  it('a certificate for another name, though from the trusted CA, is refused with exit 60', async () => {
    const r = await fetchCli(`https://stepwire.test:${wrongPort}/`, {
      cacert: caFile,
      resolve: [`stepwire.test:${wrongPort}:127.0.0.1`],
    });
    expect(r.code).toBe(60);
    expect(r.stdout.length).toBe(0);
  });

  it('without the CA the certificate is refused with exit 60; -k accepts it', async () => {
    const url = `https://stepwire.test:${tlsPort}/`;
    const resolve = [`stepwire.test:${tlsPort}:127.0.0.1`];
    const refused = await fetchCli(url, { resolve });
    expect(refused.code).toBe(60);
    expect((await fetchCli(url, { resolve, cacert: join(dir, 'absent.pem') })).code).toBe(77);
    const insecure = await fetchCli(url, { resolve, insecure: true });
    expect(insecure.code).toBe(0);
    expect(insecure.text).toBe('secure GET / sni=stepwire.test');
  });
});

describe('stepwire fetch --tun (root): our IP/TCP stack against python http.server on the kernel side', () => {
  const NS = `sw-fetch-${process.pid}`;
  let py: ChildProcess | undefined;
  let ssl: ChildProcess | undefined;
  const served = mkdtempSync(join(tmpdir(), 'sw-fetch-www-'));
  const page = Buffer.alloc(300 * 1024).map((_, i) => (i * 7 + 3) & 0xff);

  afterAll(() => {
    for (const p of [py, ssl]) if (p?.exitCode === null) p.kill('SIGKILL');
    netnsDown(NS);
    rmSync(served, { recursive: true, force: true });
    expect(netnsExists(NS)).toBe(false);
  });

  it('downloads a 300 KiB file over TUN with -o and the hash matches, fetches https from openssl s_server; a namespace it makes is removed after', async () => {
    expect(process.getuid?.()).toBe(0);
    netnsUp(NS);
    writeFileSync(join(served, 'page.bin'), page);
    py = spawn(
      'ip',
      [
        'netns',
        'exec',
        NS,
        '/usr/bin/python3',
        '-m',
        'http.server',
        '8000',
        '--bind',
        '198.18.0.1',
        '--directory',
        served,
      ],
      { stdio: 'ignore' },
    );
    for (let i = 0; i < 100; i++) {
      const ss = spawnSync('ip', ['netns', 'exec', NS, 'ss', '-Hltn', 'sport = :8000'], { encoding: 'utf8' });
      if (ss.stdout.trim() !== '') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const file = join(served, 'copy.bin');
    const r = await fetchCli('http://198.18.0.1:8000/page.bin', {
      tun: true,
      netns: NS,
      output: file,
      include: false,
    });
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(sha256(readFileSync(file))).toBe(sha256(page));
    // The same over the device with offloads: the kernel's GRO super-segments and partial
    // checksums come up to our TCP, which takes them whole.
    const viaOffloads = await fetchCli('http://198.18.0.1:8000/page.bin', {
      tun: true,
      offloads: true,
      netns: NS,
      output: file,
      include: false,
    });
    expect(viaOffloads.err).toBe('');
    expect(viaOffloads.code).toBe(0);
    expect(sha256(readFileSync(file))).toBe(sha256(page));
    const head = await fetchCli('http://198.18.0.1:8000/page.bin', {
      tun: true,
      netns: NS,
      include: true,
      fail: true,
    });
    expect(head.text.split('\r\n')[0]).toBe('HTTP/1.0 200 OK');
    // The namespace was there before: fetch leaves it.
    expect(netnsExists(NS)).toBe(true);

    // https over TUN: openssl s_server on the kernel side, our TLS on our TCP, verified with
    // the CA for the name given by --resolve.
    const leaf = tlsFixtures().server['P-256'].leaf;
    ssl = spawn(
      'ip',
      [
        'netns',
        'exec',
        NS,
        'openssl',
        's_server',
        '-accept',
        '198.18.0.1:4433',
        '-cert',
        leaf.certFile,
        '-key',
        leaf.keyFile,
        '-www',
        '-tls1_3',
      ],
      { stdio: 'ignore' },
    );
    for (let i = 0; i < 100; i++) {
      const ss = spawnSync('ip', ['netns', 'exec', NS, 'ss', '-Hltn', 'sport = :4433'], { encoding: 'utf8' });
      if (ss.stdout.trim() !== '') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const secure = await fetchCli('https://stepwire.test:4433/', {
      tun: true,
      netns: NS,
      cacert: caFile,
      resolve: ['stepwire.test:4433:198.18.0.1'],
      include: true,
    });
    expect(secure.err).toBe('');
    expect(secure.code).toBe(0);
    expect(secure.text).toMatch(/^HTTP\/1\.0 200 ok\r\n/);
    expect(secure.text).toMatch(/TLSv1\.3/);

    // A namespace fetch makes itself is gone after; nothing listens there, so the kernel resets: 7.
    const own = `${NS}-own`;
    const refused = await fetchCli('http://198.18.0.1:8000/', { tun: true, netns: own });
    expect(refused.code).toBe(7);
    expect(netnsExists(own)).toBe(false);
  });
});

describe('stepwire fetch --http2 against our createHttpServer on loopback', () => {
  it('--http2 speaks h2c to an http URL and -i prints HTTP/2 as curl; https offers h2 by ALPN; without --http2 http stays HTTP/1.1', async () => {
    const app = createHttpServer((req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(`${req.httpVersion} ${req.method} ${req.url}`);
    });
    const plain = net.createServer((s) => app.handle(s));
    const leaf = tlsFixtures().server['P-256'].leaf;
    const tls = tlsCreateServer({ cert: leaf.certPem, key: leaf.keyPem, ALPNProtocols: ['h2', 'http/1.1'] });
    app.listen(tls, 'secureConnection');
    const secure = net.createServer((s) => tls.emit('connection', s));
    try {
      for (const s of [plain, secure]) {
        s.listen(0, '127.0.0.1');
        await once(s, 'listening');
      }
      const port = (plain.address() as AddressInfo).port;
      const h2 = await fetchCli(`http://127.0.0.1:${port}/two`, {
        http2: true,
        include: true,
        data: ['x=1'],
      });
      expect(h2.code, h2.err).toBe(0);
      const [top, body] = h2.text.split('\r\n\r\n');
      const lines = top?.split('\r\n') ?? [];
      expect(lines[0]).toBe('HTTP/2 200');
      expect(lines).toContain('content-type: text/plain');
      expect(body).toBe('2.0 POST /two');
      const h1 = await fetchCli(`http://127.0.0.1:${port}/one`, { include: true });
      expect(h1.text.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
      expect(h1.text.endsWith('1.1 GET /one')).toBe(true);
      const securePort = (secure.address() as AddressInfo).port;
      const viaAlpn = await fetchCli(`https://stepwire.test:${securePort}/s`, {
        cacert: caFile,
        resolve: [`stepwire.test:${securePort}:127.0.0.1`],
      });
      expect(viaAlpn.code, viaAlpn.err).toBe(0);
      expect(viaAlpn.text).toBe('2.0 GET /s');
    } finally {
      app.closeAllConnections();
      app.close();
      plain.close();
      secure.close();
    }
  });
});
