/**
 * `stepwire fetch --http3` (our HTTP/3 client on our QUIC, node:dgram on loopback) against
 * ngtcp2's gtlsserver (Debian ngtcp2-server; HTTP/3 by nghttp3, serving files from a
 * directory) and against our own `serve --loopback` services: bodies intact, curl-like
 * output (-i, -o, -v with the QUIC handshake) and curl's exit statuses.
 * gtlsserver is killed by its PID after each test; the temporary directory is removed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Prng, TraceBus } from '@stepwire/wire';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { EXIT, type FetchCliOptions, runFetch } from '../packages/cli/src/commands/fetch.ts';
import { patternChunk } from '../packages/cli/src/services/http-app.ts';
import { ephemeralServeIdentity } from '../packages/cli/src/services/https.ts';
import { type LoopbackService, serveLoopback } from '../packages/cli/src/services/loopback.ts';
import { selfSignedCertificate } from './support/peer-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'sw-quic-fetch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const { key, cert } = selfSignedCertificate(dir);
const htdocs = join(dir, 'htdocs');
mkdirSync(htdocs);
const INDEX = 'served by ngtcp2 gtlsserver over HTTP/3\n'.repeat(40);
const BIG = new Prng(10).bytes(700_000);
writeFileSync(join(htdocs, 'index.html'), INDEX);
writeFileSync(join(htdocs, 'big.bin'), BIG);

const children: ChildProcess[] = [];
const services: LoopbackService[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  for (const s of services.splice(0)) s.close();
});

async function freeUdpPort(): Promise<number> {
  const probe = createSocket('udp4');
  await new Promise<void>((r) => probe.bind(0, '127.0.0.1', r));
  const port = probe.address().port;
  await new Promise<void>((r) => probe.close(() => r()));
  return port;
}

async function gtlsserver(): Promise<number> {
  const port = await freeUdpPort();
  const server = spawn('gtlsserver', ['--quiet', '-d', htdocs, '127.0.0.1', String(port), key, cert], {
    stdio: 'ignore',
  });
  children.push(server);
  // Our client retransmits its Initial (PTO) if gtlsserver is not bound yet.
  await new Promise((r) => setTimeout(r, 200));
  return port;
}

async function fetch(url: string, o: FetchCliOptions) {
  const out: Buffer[] = [];
  let err = '';
  const code = await runFetch(
    url,
    { http3: true, ...o },
    {
      out: (b) => out.push(Buffer.from(b)),
      err: (t) => {
        err += t;
      },
      errIsTty: false,
      outIsTty: false,
    },
  );
  return { code, out: Buffer.concat(out), err };
}

describe('fetch --http3 against ngtcp2 gtlsserver', () => {
  it('GET with -i and -v: the QUIC handshake packets, the response head, the body', async () => {
    const port = await gtlsserver();
    const r = await fetch(`https://stepwire.test:${port}/index.html`, {
      cacert: cert,
      resolve: [`stepwire.test:${port}:127.0.0.1`],
      include: true,
      verbose: true,
    });
    expect(r.code, r.err).toBe(EXIT.ok);
    const text = r.out.toString();
    expect(text.startsWith('HTTP/3 200\r\n')).toBe(true);
    expect(text).toMatch(new RegExp(`\r\ncontent-length: ${INDEX.length}\r\n`));
    expect(text.endsWith(`\r\n\r\n${INDEX}`)).toBe(true);
    // -v: our Initial with the ClientHello, the server's Initial and Handshake, then the head.
    expect(r.err).toMatch(/^\* QUIC > Initial pn=0 .*CRYPTO off=0/m);
    expect(r.err).toMatch(/^\* QUIC < Handshake pn=0 .*CRYPTO/m);
    expect(r.err).toMatch(/^\* Connected to stepwire\.test \(127\.0\.0\.1\) port \d+ over QUIC, ALPN h3$/m);
    expect(r.err).toMatch(/^> GET \/index\.html HTTP\/3$/m);
    expect(r.err).toMatch(/^< HTTP\/3 200$/m);
  });

  it('-o writes a 700 kB body byte for byte; -f on a 404 exits 22 and writes nothing', async () => {
    const port = await gtlsserver();
    const file = join(dir, 'big.out');
    const r = await fetch(`https://stepwire.test:${port}/big.bin`, {
      cacert: cert,
      resolve: [`stepwire.test:${port}:127.0.0.1`],
      output: file,
    });
    expect(r.code, r.err).toBe(EXIT.ok);
    expect(Buffer.compare(readFileSync(file), Buffer.from(BIG))).toBe(0);
    const missing = await fetch(`https://stepwire.test:${port}/nothing-here`, {
      cacert: cert,
      resolve: [`stepwire.test:${port}:127.0.0.1`],
      fail: true,
    });
    expect(missing.code).toBe(EXIT.httpError);
    expect(missing.out.length).toBe(0);
    expect(missing.err).toMatch(/\(22\) The requested URL returned error: 404/);
  });

  it("a certificate we do not trust is curl's 60 (our unknown_ca alert as CRYPTO_ERROR 0x130); -k accepts it", async () => {
    const port = await gtlsserver();
    const bad = await fetch(`https://stepwire.test:${port}/index.html`, {
      resolve: [`stepwire.test:${port}:127.0.0.1`],
    });
    expect(bad.code).toBe(EXIT.peerCertificate);
    expect(bad.err).toMatch(/SSL certificate problem: .*0x130/);
    const ok = await fetch(`https://127.0.0.1:${port}/index.html`, { insecure: true });
    expect(ok.code, ok.err).toBe(EXIT.ok);
    expect(ok.out.toString()).toBe(INDEX);
  });
});

describe('fetch --http3 against our serve --loopback', () => {
  async function ours(trace?: TraceBus) {
    const identity = ephemeralServeIdentity();
    const ca = join(dir, 'serve-ca.pem');
    writeFileSync(ca, identity.caPem ?? '');
    const started = await serveLoopback({
      address: '127.0.0.1',
      httpPort: 0,
      httpsPort: 0,
      identity,
      ...(trace ? { trace } : {}),
    });
    services.push(...started);
    const port = started.find((s) => s.name === 'h3')?.port ?? 0;
    return { ca, port, h3: started.find((s) => s.name === 'h3') };
  }

  it('GET /bytes/N, POST -d to /echo and /sha256 with -H fields: the same routes over HTTP/3', async () => {
    const { ca, port, h3 } = await ours();
    const common = { cacert: ca, resolve: [`stepwire.test:${port}:127.0.0.1`] };
    const bytes = await fetch(`https://stepwire.test:${port}/bytes/250000`, common);
    expect(bytes.code, bytes.err).toBe(EXIT.ok);
    expect(bytes.out.equals(patternChunk(0, 250_000))).toBe(true);

    const echo = await fetch(`https://stepwire.test:${port}/echo`, {
      ...common,
      data: ['a=1', 'b=2'],
      header: ['Content-Type: text/x-stepwire'],
      include: true,
    });
    expect(echo.code, echo.err).toBe(EXIT.ok);
    expect(echo.out.toString()).toMatch(/^HTTP\/3 200\r\n/);
    expect(echo.out.toString()).toMatch(/\r\ncontent-type: text\/x-stepwire\r\n/);
    expect(echo.out.toString().endsWith('\r\n\r\na=1&b=2')).toBe(true);

    const body = new Prng(3).bytes(120_000);
    const file = join(dir, 'post.bin');
    writeFileSync(file, body);
    const sha = await fetch(`https://stepwire.test:${port}/sha256`, { ...common, dataBinary: [`@${file}`] });
    expect(sha.code, sha.err).toBe(EXIT.ok);
    expect(sha.out.toString()).toBe(`${createHash('sha256').update(body).digest('hex')}\n`);
    const stats = h3?.stats() as { accepted: number; handshakes: number };
    expect(stats.accepted).toBe(3);
    expect(stats.handshakes).toBe(3);
  });

  it('-L follows /redirect/3 over one connection; without -L the 302 is the answer; too many hops is 47', async () => {
    const { ca, port, h3 } = await ours();
    const common = { cacert: ca, resolve: [`stepwire.test:${port}:127.0.0.1`] };
    const followed = await fetch(`https://stepwire.test:${port}/redirect/3`, {
      ...common,
      location: true,
      include: true,
    });
    expect(followed.code, followed.err).toBe(EXIT.ok);
    // Each hop's head, then the final page (curl -iL prints every response head).
    const heads = followed.out.toString().match(/^HTTP\/3 \d+/gm);
    expect(heads).toEqual(['HTTP/3 302', 'HTTP/3 302', 'HTTP/3 302', 'HTTP/3 200']);
    expect(followed.out.toString()).toMatch(/\r\n\r\nHello from stepwire/);
    // The three hops and the page went over the one connection.
    expect(h3?.stats()).toMatchObject({ accepted: 1 });

    const not = await fetch(`https://stepwire.test:${port}/redirect/1`, { ...common, include: true });
    expect(not.code, not.err).toBe(EXIT.ok);
    expect(not.out.toString()).toMatch(/^HTTP\/3 302\r\n(.*\r\n)*location: \/\r\n/);

    const tooMany = await fetch(`https://stepwire.test:${port}/redirect/25`, { ...common, location: true });
    expect(tooMany.code).toBe(EXIT.tooManyRedirects);
  });

  it("gtlsclient resumes with serve's ticket and sends its request in 0-RTT (RFC 9001 §4.6)", async () => {
    const trace = new TraceBus();
    const early: string[] = [];
    trace.on((e) => {
      if (e.layer === 'quic' && e.dir === 'in' && e.summary.startsWith('0-RTT')) early.push(e.summary);
    });
    const { port, h3 } = await ours(trace);
    const files = [`--session-file=${join(dir, 'h3-session.pem')}`, `--tp-file=${join(dir, 'h3-tp.txt')}`];
    const run = () =>
      new Promise<number | null>((resolve) => {
        const c = spawn(
          'gtlsclient',
          [
            '--quiet',
            '--exit-on-all-streams-close',
            '--timeout=10s',
            ...files,
            '127.0.0.1',
            String(port),
            `https://stepwire.test:${port}/`,
          ],
          { stdio: 'ignore' },
        );
        children.push(c);
        c.once('exit', resolve);
      });
    expect(await run()).toBe(0);
    expect(early).toEqual([]);
    expect(await run()).toBe(0);
    // The second connection's request came in 0-RTT packets that serve opened with the early keys.
    expect(early.some((l) => l.includes('STREAM'))).toBe(true);
    expect(h3?.stats()).toMatchObject({ handshakes: 2 });
  });

  it('usage errors: http:// with --http3 exits 2; no server on the port: a timeout (28) within -m', async () => {
    await expect(fetch('http://127.0.0.1:1/', {})).rejects.toThrow(/--http3 needs an https:\/\/ URL/);
    const port = await freeUdpPort();
    const r = await fetch(`https://127.0.0.1:${port}/`, { insecure: true, maxTime: 1 });
    expect(r.code).toBe(EXIT.timeout);
  });
});
