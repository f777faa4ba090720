import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage } from '@stepwire/http';
import { certificateSigner, certificateVerifier, pki } from '@stepwire/tls';
import { bytesEqual, Prng } from '@stepwire/wire';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  connectHttp3,
  H3ErrorCode,
  type H3Response,
  type Http3ServerConnection,
  serveHttp3,
} from '../src/h3/index.ts';
import {
  closeNgtcp2,
  gtlsSite,
  loopbackSocket,
  runGtlsClient,
  startGtlsServer,
  tracked,
  waitFor,
} from './support/ngtcp2.ts';

/**
 * Our HTTP/3 (src/h3) on our QUIC against ngtcp2's example programs, whose HTTP/3 is
 * nghttp3: our client (connectHttp3) fetches from gtlsserver, and gtlsclient fetches from
 * our server (serveHttp3) running a node:http-style (req, res) handler, over node:dgram
 * on loopback.
 * Both peers use QPACK's dynamic table, so nghttp3 decodes our encoder's inserts and we
 * decode its own.
 */

const INDEX = 'stepwire HTTP/3 over ngtcp2\n'.repeat(200);
const BIG = new Prng(9).bytes(400_000);
const site = gtlsSite('stepwire-h3-ngtcp2-', { 'index.html': INDEX, 'big.bin': BIG });
afterAll(() => site.remove());

let creds: ReturnType<typeof pki.createStepwireCredentials>;
beforeAll(() => {
  creds = pki.createStepwireCredentials(new Date());
});

afterEach(closeNgtcp2);

const field = (r: H3Response, n: string) => r.headers.find(([k]) => k === n)?.[1];

/** Our Http3Client on our QUIC (QuicDriver on node:dgram), connected to `to` and ready. */
async function connectClient(to: number, authorityPort = to) {
  const session = connectHttp3({
    socket: await loopbackSocket(),
    remote: { address: '127.0.0.1', port: to },
    tls: {
      serverName: 'stepwire.test',
      verifier: certificateVerifier({ ca: readFileSync(site.cert, 'utf8') }),
    },
    authority: `127.0.0.1:${authorityPort}`,
  });
  tracked(session.driver);
  await session.ready();
  return { h3: session.client, conn: session.connection, driver: session.driver };
}

describe('our HTTP/3 client against ngtcp2 gtlsserver (nghttp3)', () => {
  it('concurrent GETs with repeated custom fields (our dynamic table, its dynamic table), a 404, a clean close', async () => {
    const { port, server } = await startGtlsServer(site);
    const { h3, conn, driver } = await connectClient(port);
    // Fields worth indexing, sent on every request: inserted once, referenced after.
    const custom = { 'user-agent': 'stepwire-h3/0.1', 'x-stepwire-trace': 'a1b2c3d4e5f60718293a4b5c' };
    const results = await Promise.all([
      h3.request({ ':path': '/index.html', ...custom }),
      h3.request({ ':path': '/big.bin', ...custom }),
      h3.request({ ':path': '/index.html', ...custom }),
      h3.request({ ':path': '/no-such-file', ...custom }),
    ]);
    const [index, big, again, missing] = results as [H3Response, H3Response, H3Response, H3Response];
    expect(index.status).toBe(200);
    expect(Buffer.from(index.body).toString()).toBe(INDEX);
    expect(field(index, 'content-length')).toBe(String(INDEX.length));
    expect(Buffer.from(again.body).toString()).toBe(INDEX);
    expect(big.status).toBe(200);
    expect(bytesEqual(big.body, BIG)).toBe(true);
    expect(missing.status).toBe(404);
    // Our encoder inserted entries and nghttp3's decoder acknowledged them (RFC 9204 §4.4).
    expect(h3.h3.encoder.table.insertCount).toBeGreaterThan(0);
    expect(h3.h3.encoder.knownReceivedCount).toBeGreaterThan(0);
    // nghttp3's encoder filled our decoder's table too.
    expect(h3.h3.decoder.table.insertCount).toBeGreaterThan(0);
    expect(h3.h3.peerSettings?.size).toBeGreaterThan(0);
    expect(h3.h3.counters.total('h3.connection-error')).toBe(0);
    // A later request reuses the entries: its HEADERS frame is a few index bytes.
    const more = await h3.request({ ':path': '/index.html', ...custom });
    expect(more.status).toBe(200);

    h3.close();
    driver.flush();
    await waitFor('our side to close', () => conn.isDrained, 10_000);
    expect(server.exitCode).toBeNull(); // nghttp3 did not fail on anything we sent
  });
});

describe('our HTTP/3 client against gtlsserver: more requests than its stream limit', () => {
  it("150 concurrent requests: those beyond the server's MAX_STREAMS wait and go as streams close (RFC 9000 §4.6)", async () => {
    const { port } = await startGtlsServer(site);
    const { h3 } = await connectClient(port);
    const all = Array.from({ length: 150 }, (_, i) =>
      h3.request({ ':path': '/index.html', 'x-n': String(i % 5) }),
    );
    // ngtcp2's server allows 100 bidirectional streams at first: the rest are held back.
    expect(h3.queued).toBeGreaterThan(0);
    const rs = await Promise.all(all);
    for (const r of rs) {
      expect(r.status).toBe(200);
      expect(r.body.length).toBe(INDEX.length);
    }
    expect(h3.queued).toBe(0);
    expect(h3.h3.counters.total('h3.connection-error')).toBe(0);
    h3.close();
  });
});

describe('our HTTP/3 client against gtlsserver through a lossy relay', () => {
  it('12 concurrent requests with 10% of datagrams dropped each way (seeded): every body intact, no error', async () => {
    const { port, server } = await startGtlsServer(site);
    // A relay on loopback that drops datagrams at random (seeded), so streams arrive out of
    // step with each other: sections can overtake the encoder stream inserts they need.
    const relay = await loopbackSocket();
    const prng = new Prng(2026);
    let clientAddr: { port: number } | undefined;
    let dropped = 0;
    relay.on('message', (msg, rinfo) => {
      const fromServer = rinfo.port === port;
      if (!fromServer) clientAddr = { port: rinfo.port };
      if (prng.chance(0.1)) {
        dropped++;
        return;
      }
      const to = fromServer ? clientAddr?.port : port;
      if (to !== undefined) relay.send(msg, to, '127.0.0.1');
    });
    const relayPort = (relay.address() as { port: number }).port;
    const { h3, driver } = await connectClient(relayPort, port);
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        h3.request({ ':path': i % 3 === 0 ? '/big.bin' : '/index.html', 'x-request': `number-${i % 4}` }),
      ),
    );
    results.forEach((r, i) => {
      expect(r.status).toBe(200);
      if (i % 3 === 0) expect(bytesEqual(r.body, BIG)).toBe(true);
      else expect(Buffer.from(r.body).toString()).toBe(INDEX);
    });
    expect(dropped).toBeGreaterThan(0);
    expect(h3.h3.counters.total('h3.connection-error')).toBe(0);
    h3.close();
    driver.flush();
    expect(server.exitCode).toBeNull();
  });
});

describe('ngtcp2 gtlsclient (nghttp3) against our HTTP/3 server', () => {
  async function serve() {
    const sock = await loopbackSocket();
    const port = (sock.address() as { port: number }).port;
    const seen: { method: string; url: string; host: string; body: string }[] = [];
    const conns: Http3ServerConnection[] = [];
    const service = serveHttp3(
      (req: IncomingMessage, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const body = Buffer.concat(chunks).toString();
          seen.push({ method: req.method, url: req.url, host: String(req.headers.host), body });
          if (req.url === '/big') {
            res.setHeader('content-type', 'application/octet-stream');
            res.end(Buffer.from(BIG));
            return;
          }
          res.setHeader('content-type', 'text/plain');
          res.setHeader('x-served-by', 'stepwire-h3');
          res.end(`${req.method} ${req.url} ${body.length}\n`);
        });
      },
      { socket: sock, tls: { signer: certificateSigner(creds.leaf) }, onConnection: (c) => conns.push(c) },
    );
    tracked(service.driver);
    return { port, seen, conns, service };
  }

  it('GET, POST with a body and a 400 kB download, answered by the (req, res) handler', async () => {
    const s = await serve();
    const download = join(site.dir, `download-${s.port}`);
    mkdirSync(download);
    const data = join(site.dir, 'post-body.txt');
    writeFileSync(data, 'posted by gtlsclient\n'.repeat(50));
    // Not quiet: gtlsclient prints the header fields it got.
    const r = await runGtlsClient(s.port, {
      quiet: false,
      args: ['--no-quic-dump', `--download=${download}`],
      paths: ['/hello', '/big'],
      output: true,
    });
    expect(r.code).toBe(0);
    expect(s.seen.map((x) => `${x.method} ${x.url}`)).toEqual(['GET /hello', 'GET /big']);
    expect(s.seen[0]?.host).toBe(`127.0.0.1:${s.port}`);
    // nghttp3 decoded our response header sections (gtlsclient prints each field it got).
    expect(r.out).toContain('x-served-by: stepwire-h3');
    expect(r.out).toMatch(/:status: 200/);
    expect(readFileSync(join(download, 'hello'), 'utf8')).toBe('GET /hello 0\n');
    expect(bytesEqual(new Uint8Array(readFileSync(join(download, 'big'))), BIG)).toBe(true);

    const post = await runGtlsClient(s.port, {
      quiet: false,
      args: ['--no-quic-dump', '-m', 'POST', '-d', data],
      paths: ['/upload'],
      output: true,
    });
    expect(post.code).toBe(0);
    expect(s.seen[2]).toMatchObject({
      method: 'POST',
      url: '/upload',
      body: 'posted by gtlsclient\n'.repeat(50),
    });
    const conns = s.conns;
    for (const c of conns) expect(c.h3.counters.total('h3.connection-error')).toBe(0);
    // nghttp3 allows a dynamic table (SETTINGS_QPACK_MAX_TABLE_CAPACITY 4096): our encoder
    // used it for the responses, and on the first connection (two responses) nghttp3's
    // decoder acknowledged every insert (RFC 9204 §4.4).
    expect(conns[0]?.h3.peerSettings?.get(0x01)).toBe(4096);
    expect(conns[0]?.h3.encoder.table.insertCount).toBeGreaterThan(0);
    expect(conns[0]?.h3.encoder.knownReceivedCount).toBe(conns[0]?.h3.encoder.table.insertCount);
    // gtlsclient ends with H3_NO_ERROR or a transport NO_ERROR.
    await waitFor('the closes', () => conns.every((c) => c.h3.closed), 5000);
    for (const c of conns) {
      expect(c.h3.closeInfo?.local).toBe(false);
      if (c.h3.closeInfo?.code !== undefined) expect(c.h3.closeInfo.code).toBe(H3ErrorCode.H3_NO_ERROR);
    }
    expect(s.service.connectionCount).toBe(0);
  });

  it('16 concurrent requests (gtlsclient -n 16) with 10% loss each way: every one answered, no error', async () => {
    const s = await serve();
    const r = await runGtlsClient(s.port, {
      args: ['-n', '16', '--tx-loss=0.1', '--rx-loss=0.1'],
      paths: ['/many'],
    });
    expect(r.code).toBe(0);
    expect(s.seen.filter((x) => x.url === '/many')).toHaveLength(16);
    const c = s.conns[0];
    expect(c?.h3.counters.total('h3.connection-error')).toBe(0);
    expect(c?.h3.counters.total('h3.stream-error')).toBe(0);
  });
});
