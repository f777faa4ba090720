import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fc, test } from '@fast-check/vitest';
import { decodePcap, encodePcap } from '@stepwire/link';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/commands/index.ts';
import { runTrace, traceCapture } from '../src/commands/trace.ts';
import { type Decrypted, decryptTls, parseKeyLog } from '../src/views/tls-decrypt.ts';

const dir = mkdtempSync(join(tmpdir(), 'stepwire-trace-tls-'));
// The trace reads $SSLKEYLOGFILE too: these tests say exactly which secrets it gets.
const savedKeylogEnv = process.env.SSLKEYLOGFILE;
delete process.env.SSLKEYLOGFILE;
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  if (savedKeylogEnv !== undefined) process.env.SSLKEYLOGFILE = savedKeylogEnv;
});

async function cli(args: string[]): Promise<string> {
  let out = '';
  const code = await runCli(args, { out: (t) => (out += t), err: (t) => (out += t) });
  expect(code, out).toBe(0);
  return out;
}

function trace(path: string, o: Parameters<typeof runTrace>[1] = {}): string[] {
  const lines: string[] = [];
  runTrace(path, o, (s) => lines.push(s));
  return lines;
}

const decryptedLines = (lines: string[]) =>
  lines.filter((l) => l.includes('↳')).map((l) => l.trim().slice(2));

const pcap = join(dir, 'tls-full.pcap');
const keys = join(dir, 'tls-full.keys');
const tour = join(dir, 'tour.pcapng');
beforeAll(async () => {
  await cli(['demo', 'tls-full', '--pcap', pcap, '--keylog', keys]);
  await cli(['demo', '--pcapng', tour]);
}, 60_000);

describe('stepwire trace decrypts TLS 1.3 with a key log', () => {
  it('our demo (tls-full) with --keylog: the encrypted handshake of both sides, the data and the alerts', () => {
    const lines = trace(pcap, { keylog: keys });
    const d = decryptedLines(lines);
    expect(d[0]).toBe('TLS (decrypted) EncryptedExtensions, Certificate, CertificateVerify, Finished');
    expect(d[1]).toBe('TLS (decrypted) Finished');
    expect(d).toContain('TLS (decrypted) NewSessionTicket');
    expect(d.filter((l) => l === 'TLS (decrypted) Alert warning close_notify')).toHaveLength(2);
    expect(d.some((l) => /application data, \d+ bytes|^HTTP/.test(l))).toBe(true);
    expect(d.filter((l) => /not decrypted/.test(l))).toEqual([]);
    expect(lines.at(-1)).toMatch(/^TLS: \d+ decrypted, 0 not decrypted$/);
    // The handshake lines sit under the server's and then the client's packet.
    const i = lines.findIndex((l) => l.includes('EncryptedExtensions'));
    expect(lines[i - 1]).toMatch(/198\.18\.0\.2→198\.18\.0\.1 TCP 443→/);
    // Without secrets: nothing is decrypted and nothing is claimed.
    expect(decryptedLines(trace(pcap))).toEqual([]);
    // $SSLKEYLOGFILE is read as curl and Node read it.
    process.env.SSLKEYLOGFILE = keys;
    try {
      expect(decryptedLines(trace(pcap))).toEqual(d);
    } finally {
      delete process.env.SSLKEYLOGFILE;
    }
  });

  it('the secrets inside our pcapng are enough: HTTP/1.1 GET / and its 200 over TLS', () => {
    const d = decryptedLines(trace(tour));
    expect(d).toContain('HTTP/1.1 GET /');
    expect(d).toContain('HTTP/1.1 200 OK');
    expect(d).toContain('TLS (decrypted) EncryptedExtensions, Certificate, CertificateVerify, Finished');
    expect(d.filter((l) => /not decrypted/.test(l))).toEqual([]);
  });

  it('segments out of order and retransmitted are put back in sequence order', () => {
    const file = decodePcap(readFileSync(pcap));
    const expected = decryptedLines(trace(pcap, { keylog: keys }));
    // Data segments of the server (443 → client) in capture order; swap the first two and repeat one.
    const fromServer = file.records
      .map((r, i) => ({ r, i }))
      .filter(
        ({ r }) => r.data[9] === 6 && ((r.data[20]! << 8) | r.data[21]!) === 443 && r.data.length > 52 + 20,
      );
    expect(fromServer.length).toBeGreaterThanOrEqual(3);
    const a = fromServer[0]!;
    const b = fromServer[1]!;
    const records = file.records.slice();
    [records[a.i], records[b.i]] = [records[b.i]!, records[a.i]!];
    records.splice(b.i + 1, 0, records[b.i]!);
    const shuffled = join(dir, 'shuffled.pcap');
    writeFileSync(shuffled, encodePcap({ ...file, records }));
    const got = decryptedLines(trace(shuffled, { keylog: keys }));
    expect(got.filter((l) => /not decrypted/.test(l))).toEqual([]);
    expect([...got].sort()).toEqual([...expected].sort());
  });

  /**
   * Cut an IPv4/TCP packet's payload at `cuts` into several segments, each starting up to
   * `overlap` bytes early (a retransmission that repeats delivered bytes), in reverse order
   * when asked: what a lossy path and a sender repacketizing look like in a capture.
   */
  function split(ip: Uint8Array, cuts: number[], overlap: number, reverse: boolean): Uint8Array[] {
    const ihl = (ip[0]! & 15) * 4;
    const hdr = ihl + (ip[ihl + 12]! >> 4) * 4;
    const payload = ip.subarray(hdr);
    if (payload.length < 2) return [ip];
    const view = new DataView(ip.buffer, ip.byteOffset, ip.byteLength);
    const seq = view.getUint32(ihl + 4);
    const points = [...new Set([0, payload.length, ...cuts.map((c) => c % payload.length)])].sort(
      (x, y) => x - y,
    );
    const pieces: Uint8Array[] = [];
    for (let k = 0; k + 1 < points.length; k++) {
      const start = Math.max(0, points[k]! - overlap);
      const piece = new Uint8Array(hdr + points[k + 1]! - start);
      piece.set(ip.subarray(0, hdr));
      piece.set(payload.subarray(start, points[k + 1]!), hdr);
      const v = new DataView(piece.buffer);
      v.setUint16(2, piece.length);
      v.setUint32(ihl + 4, (seq + start) >>> 0);
      pieces.push(piece);
    }
    return reverse ? pieces.reverse() : pieces;
  }
  const names = (m: Map<number, Decrypted[]>) =>
    [...m.entries()].sort(([a], [b]) => a - b).flatMap(([, ds]) => ds.flatMap((d) => d.messages ?? [d.text]));

  test.prop(
    [
      fc.array(
        fc.record({
          cuts: fc.array(fc.nat(), { maxLength: 4 }),
          overlap: fc.nat({ max: 40 }),
          reverse: fc.boolean(),
        }),
        { minLength: 64, maxLength: 64 },
      ),
    ],
    { numRuns: 60 },
  )(
    'any repacketizing, reordering within a flight and overlapping retransmission decrypts the same',
    (plan) => {
      const records = decodePcap(readFileSync(pcap)).records;
      const keylog = parseKeyLog(readFileSync(keys, 'utf8').split('\n'));
      const whole = decryptTls(
        records.map((r, index) => ({ index, ip: r.data })),
        keylog,
      );
      const pieces = records.flatMap((r, i) => {
        const p = plan[i % plan.length]!;
        return split(r.data, p.cuts, p.overlap, p.reverse);
      });
      const cut = decryptTls(
        pieces.map((ip, index) => ({ index, ip })),
        keylog,
      );
      expect(names(cut)).toEqual(names(whole));
      expect(names(whole)).toContain('CertificateVerify');
    },
  );

  it.each([
    ['tls-hrr', 'TLS (decrypted) EncryptedExtensions, Certificate, CertificateVerify, Finished', 1],
    ['tls-resumption', 'TLS (decrypted) EncryptedExtensions, Finished', 1],
    ['tls-0rtt', 'TLS (decrypted) EndOfEarlyData, Finished', 1],
    ['tls-mtls', 'TLS (decrypted) Certificate, CertificateVerify, Finished', 1],
    ['tls-keyupdate', 'TLS (decrypted) KeyUpdate', 2],
  ])('%s: every record decrypts from the pcapng alone (%s ×%d)', async (scenario, line, times) => {
    const file = join(dir, `${scenario}.pcapng`);
    await cli(['demo', scenario, '--pcapng', file]);
    const d = decryptedLines(trace(file));
    expect(d.filter((l) => l === line)).toHaveLength(times);
    expect(d.filter((l) => /not decrypted/.test(l))).toEqual([]);
    expect(d.filter((l) => l === 'TLS (decrypted) Alert warning close_notify').length).toBeGreaterThanOrEqual(
      2,
    );
  });

  test.prop([fc.array(fc.tuple(fc.nat(), fc.nat({ max: 7 })), { minLength: 1, maxLength: 8 }), fc.nat()], {
    numRuns: 200,
  })('hostile captures: flipped bits and cut packets never make the decryption throw', (flips, cutAt) => {
    const records = decodePcap(readFileSync(pcap)).records.map((r) => r.data.slice());
    const keylog = parseKeyLog(readFileSync(keys, 'utf8').split('\n'));
    for (const [at, bit] of flips) {
      const r = records[at % records.length]!;
      r[(at >>> 4) % r.length]! ^= 1 << bit;
    }
    const k = cutAt % records.length;
    records[k] = records[k]!.subarray(0, cutAt % (records[k]!.length + 1));
    const out = decryptTls(
      records.map((ip, index) => ({ index, ip })),
      keylog,
    );
    for (const ds of out.values()) for (const d of ds) expect(typeof d.text).toBe('string');
  });

  it('a record that fails to decrypt is shown with the reason; a missing secret is named', () => {
    const file = decodePcap(readFileSync(pcap));
    // Flip a ciphertext byte near the end of the server's encrypted handshake flight.
    const records = file.records.map((r) => ({ ...r, data: r.data.slice() }));
    const flight = traceCapture(readFileSync(pcap), {
      keylog: readFileSync(keys, 'utf8').split('\n'),
    }).packets.findIndex((p) => p.decrypted?.some((d) => d.text.includes('EncryptedExtensions')));
    const target = records[flight]!.data;
    target[target.length - 3]! ^= 0x01;
    const tampered = join(dir, 'tampered.pcap');
    writeFileSync(tampered, encodePcap({ ...file, records }));
    const d = decryptedLines(trace(tampered, { keylog: keys, verifyChecksums: false }));
    expect(d[0]).toMatch(
      /^TLS record not decrypted \(handshake keys, record 0\): bad_record_mac: record failed authentication$/,
    );
    // Only the client's secrets: the server's records name the one that is missing.
    const clientOnly = join(dir, 'client-only.keys');
    writeFileSync(
      clientOnly,
      readFileSync(keys, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('CLIENT_'))
        .join('\n'),
    );
    const partial = decryptedLines(trace(pcap, { keylog: clientOnly }));
    expect(partial[0]).toMatch(
      /^TLS not decrypted: no SERVER_HANDSHAKE_TRAFFIC_SECRET for client_random [0-9a-f]{16}… in the key log$/,
    );
    expect(partial).toContain('TLS (decrypted) Finished');
  });

  it('--html: decrypted packets carry tls-decrypted and http layers in the page data', () => {
    const html = join(dir, 'tour.html');
    trace(tour, { html });
    const json = /<script type="application\/json" id="data">(.*?)<\/script>/s.exec(
      readFileSync(html, 'utf8'),
    )![1]!;
    const data = JSON.parse(json) as {
      packets: { summary: string; layers: { layer: string; title: string }[] }[];
    };
    const http = data.packets.filter((p) =>
      p.layers.some((l) => l.layer === 'http' && l.title === 'HTTP/1.1 GET /'),
    );
    expect(http.length).toBeGreaterThanOrEqual(1);
    expect(http.some((p) => p.summary.includes('TCP') && p.summary.endsWith('HTTP/1.1 GET /'))).toBe(true);
    expect(
      data.packets.some((p) =>
        p.layers.some((l) => l.layer === 'tls-decrypted' && l.title.includes('CertificateVerify')),
      ),
    ).toBe(true);
  });
});

describe('the decrypted page in headless Chromium', () => {
  it('a decrypted packet shows its HTTP layer and plaintext; hiding http hides it', async () => {
    const html = join(dir, 'tour-page.html');
    trace(tour, { html });
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      const tab = await browser.newPage();
      const problems: string[] = [];
      tab.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
      tab.on('pageerror', (e) => problems.push(e.message));
      await tab.goto(`file://${html}`);
      const get = tab.locator('tr.packet', { hasText: 'HTTP/1.1 GET /' }).filter({ hasText: '→443' });
      expect(await get.count()).toBe(1);
      await get.click();
      await expect.poll(() => tab.locator('#tree').textContent()).toContain('plaintext (');
      expect(await tab.locator('#tree').textContent()).toMatch(
        /GET \/ HTTP\/1\.1\r?\n?host: stepwire\.test/i,
      );
      await tab.locator('input[data-layer="http"]').uncheck();
      expect(await get.evaluate((tr) => tr.classList.contains('hidden'))).toBe(true);
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 60_000);
});

describe('stepwire trace decrypts curl talking to openssl s_server on the loopback', () => {
  it('dumpcap capture + curl SSLKEYLOGFILE: the GET / and s_server -www status page; editcap-embedded secrets too', async () => {
    const cert = join(dir, 'c.pem');
    const key = join(dir, 'k.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-subj',
        '/CN=localhost',
        '-days',
        '1',
      ],
      { stdio: 'ignore' },
    );
    // A free loopback port for s_server.
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const server: ChildProcess = spawn(
      'openssl',
      ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', cert, '-key', key, '-www'],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const capture = join(dir, 'curl.pcap');
    const cap: ChildProcess = spawn(
      'dumpcap',
      ['-q', '-i', 'lo', '-f', `tcp port ${port}`, '-a', 'duration:30', '-P', '-w', capture],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    try {
      let err = '';
      cap.stderr!.on('data', (d: Buffer) => (err += d));
      let serverOut = '';
      server.stdout!.on('data', (d: Buffer) => (serverOut += d));
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`dumpcap did not start: ${err}`)), 15_000);
        cap.stderr!.on('data', () => {
          if (!/Capturing on/.test(err)) return;
          clearTimeout(t);
          // "Capturing on" comes a moment before the capture filter is in place.
          setTimeout(resolve, 1000);
        });
      });
      await expect.poll(() => serverOut, { timeout: 10_000 }).toContain('ACCEPT');
      const keylog = join(dir, 'curl.keys');
      const page = execFileSync(
        'curl',
        ['-sk', '--tlsv1.3', '--max-time', '10', `https://127.0.0.1:${port}/`],
        {
          encoding: 'utf8',
          env: { ...process.env, SSLKEYLOGFILE: keylog },
        },
      );
      expect(page).toContain('<HTML>');
      // A second connection that stays at TLS 1.2: shown, with the reason it is not decrypted.
      const page12 = execFileSync(
        'curl',
        ['-sk', '--tls-max', '1.2', '--max-time', '10', `https://127.0.0.1:${port}/`],
        {
          encoding: 'utf8',
          env: { ...process.env, SSLKEYLOGFILE: keylog },
        },
      );
      expect(page12).toContain('Protocol  : TLSv1.2');
      // Let the last segments reach the capture, then stop dumpcap (it writes what it has).
      await new Promise((r) => setTimeout(r, 500));
      const exited = new Promise((r) => cap.on('exit', r));
      cap.kill('SIGTERM');
      await exited;
      // The kernel fills loopback checksums in after the capture point (offload).
      const all = decryptedLines(trace(capture, { keylog, verifyChecksums: false }));
      const tls12 = all.filter((l) => l.includes('chose TLS 1.2 or older'));
      expect(tls12.length).toBeGreaterThanOrEqual(2);
      const d = all.filter((l) => !tls12.includes(l));
      expect(d[0]).toBe('TLS (decrypted) EncryptedExtensions, Certificate, CertificateVerify, Finished');
      expect(d).toContain('TLS (decrypted) Finished');
      expect(d).toContain('HTTP/1.1 GET /');
      expect(d).toContain('HTTP/1.0 200 ok');
      expect(d.filter((l) => /not decrypted/.test(l))).toEqual([]);
      // The same capture with the secrets embedded by Wireshark's editcap: a pcapng that decrypts alone.
      const embedded = join(dir, 'curl.pcapng');
      execFileSync('editcap', ['--inject-secrets', `tls,${keylog}`, capture, embedded], { stdio: 'ignore' });
      const alone = trace(embedded, { verifyChecksums: false });
      expect(decryptedLines(alone)).toEqual(all);
      expect(alone.at(-1)).toMatch(/secrets from the capture's Decryption Secrets Blocks\)$/);
    } finally {
      if (cap.exitCode === null) cap.kill('SIGTERM');
      server.kill('SIGTERM');
    }
  }, 60_000);
});
