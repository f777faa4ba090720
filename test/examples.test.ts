/**
 * Every program in examples/ runs as a user would run it (`pnpm example <name>`, i.e. node
 * with tsx) and prints what its header promises. tls-openssl-tun needs root and openssl:
 * like the other TUN tests it fails, never skips, without them.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { netnsExists } from '@stepwire/link';
import { describe, expect, it } from 'vitest';
import { tsharkFields } from './support/tshark.ts';

const root = join(import.meta.dirname, '..');
const example = (name: string, args: string[] = [], env: Record<string, string> = {}) => {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(root, 'scripts/example.ts'), name, ...args],
    {
      cwd: root,
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...process.env, ...env },
    },
  );
  return { ...r, info: `exit ${r.status} ${r.signal ?? ''}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}` };
};

describe('examples', () => {
  it('has a test below for every example', () => {
    const names = readdirSync(join(root, 'examples'))
      .filter((f) => f.endsWith('.ts'))
      .map((f) => f.slice(0, -3))
      .sort();
    // The HTTP pattern examples and tcp-nagle-delayed-ack are tested through their exported
    // run() in test/examples-http*.test.ts, the h2 ones in test/examples-h2.test.ts; the rest below.
    const elsewhere = new Set([
      'h2-front-proxy',
      'h2-head-of-line',
      'http-async-job',
      'http-idempotency',
      'http-long-polling',
      'http-pubsub',
      'http-request-response',
      'http-resumable-upload',
      'http-short-polling',
      'http-sse-push',
      'http-websocket-chat',
      'tcp-nagle-delayed-ack',
    ]);
    expect(names.filter((n) => !elsewhere.has(n))).toEqual([
      'http-over-tcp',
      'https-between-hosts',
      'property-test',
      'tls-openssl-tun',
      'udp-exchange',
    ]);
    expect(names.filter((n) => elsewhere.has(n))).toEqual([...elsewhere].sort());
  }, 150_000);

  it('udp-exchange: the datagram goes out and comes back 20 ms later', () => {
    const r = example('udp-exchange');
    expect(r.status, r.info).toBe(0);
    expect(r.stdout).toMatch(/0\.000 +a→b +IPv4 198\.18\.0\.1→198\.18\.0\.2 UDP \d+→7 len=8/);
    expect(r.stdout).toMatch(/0\.010 +b→a +IPv4 198\.18\.0\.2→198\.18\.0\.1 UDP 7→\d+ len=8/);
    expect(r.stdout).toMatch(/a got back 'hello, b' at t=20 ms/);
  }, 150_000);

  it('http-over-tcp: the lost request is sent again by a tail loss probe, before the 1 s RTO, and answered', () => {
    const r = example('http-over-tcp');
    expect(r.status, r.info).toBe(0);
    const lines = r.stdout.split('\n');
    const lost = lines.findIndex((l) => /link dropped: drop\.loss \(send\) len=120/.test(l));
    expect(lost, r.info).toBeGreaterThan(0);
    // The line before the drop is the request; its copy is the probe (RFC 8985 §7): after
    // about two round trips plus the delayed-ACK allowance, well before RFC 6298's 1 s RTO.
    const request = /TCP (\d+)→80 PSH,ACK seq=(\d+) .* len=68/.exec(lines[lost - 1] ?? '');
    expect(request, r.info).not.toBeNull();
    const again = lines
      .slice(lost + 1)
      .map((l) => new RegExp(`^ +(\\d+\\.\\d+) +client→server .* seq=${request?.[2]} .*len=68`).exec(l))
      .find((m) => m !== null);
    expect(again, r.info).toBeDefined();
    const t = Number(again![1]);
    expect(t).toBeGreaterThan(0.05);
    expect(t).toBeLessThan(1.0);
    expect(r.stdout).toMatch(/HTTP 200: hello (::ffff:)?198\.18\.0\.1, you asked for \/index\.html/);
    expect(r.stdout).toMatch(/the wire lost 1 packet\(s\)/);
  }, 150_000);

  it('https-between-hosts: HTTPS completes, and tshark decrypts the pcap with the SSLKEYLOGFILE secrets', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sw-example-https-'));
    try {
      const pcap = join(dir, 'x.pcap');
      const keylog = join(dir, 'keys.txt');
      const r = example('https-between-hosts', [], { PCAP: pcap, SSLKEYLOGFILE: keylog });
      expect(r.status, r.info).toBe(0);
      expect(r.stdout).toMatch(/client +· tls → ClientHello .*sni=server\.test/);
      expect(r.stdout).toMatch(/client +· tls WAIT_FINISHED → CONNECTED/);
      expect(r.stdout).toMatch(/HTTP 200: hello over TLS, (::ffff:)?198\.18\.0\.1/);
      expect(r.stdout).toMatch(/dated 2026-01-01T00:00:00\.000Z/);
      expect(readFileSync(keylog, 'utf8')).toMatch(
        /^CLIENT_HANDSHAKE_TRAFFIC_SECRET [0-9a-f]{64} [0-9a-f]{64}$/m,
      );
      const http = tsharkFields(pcap, ['frame.time_epoch', 'http.request.method', 'http.response.code'], {
        filter: 'http',
        extra: ['-o', `tls.keylog_file:${keylog}`],
      });
      expect(http.map((h) => h['http.request.method'] || h['http.response.code'])).toEqual(['GET', '200']);
      // Dated on the simulation's calendar (2026-01-01), not 1970.
      expect(Math.floor(Number(http[0]?.['frame.time_epoch']))).toBe(Date.UTC(2026, 0, 1) / 1000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 150_000);

  it('property-test: both properties hold, and the seed is printed for a replay', () => {
    const r = example('property-test', ['--seed', '42']);
    expect(r.status, r.info).toBe(0);
    expect(r.stdout).toBe(
      'seed 42\nok: forward() matches a full re-encode (500 packets)\nok: forward() never crashes on arbitrary bytes (500 inputs)\n',
    );
  }, 150_000);

  it('tls-openssl-tun: our client verifies OpenSSL and reads its page over TUN, leaving no namespace', () => {
    const r = example('tls-openssl-tun');
    expect(r.status, r.info).toBe(0);
    expect(r.stdout).toMatch(/stepwire→kernel +IPv4 198\.18\.0\.2→198\.18\.0\.1 TCP \d+→4433 SYN /);
    expect(r.stdout).toMatch(/tls WAIT_FINISHED → CONNECTED/);
    expect(r.stdout).toMatch(/verified OpenSSL's certificate: true, cipher TLS_AES_128_GCM_SHA256/);
    expect(r.stdout).toMatch(
      /OpenSSL says: HTTP\/1\.0 200 ok; New, TLSv1\.3, Cipher is TLS_AES_128_GCM_SHA256/,
    );
    const ns = /in namespace (\S+)/.exec(r.stdout)?.[1];
    expect(ns).toBeDefined();
    expect(netnsExists(ns ?? '')).toBe(false);
  }, 150_000);
});
