/**
 * `stepwire serve` answers HTTP/3 (RFC 9114) with the same routes as its HTTP/1.1, h2 and
 * HTTPS services, and those advertise it with Alt-Svc (RFC 7838 §3, RFC 9114 §3.1.1).
 * Independent peers: ngtcp2's gtlsclient (Debian ngtcp2-client, HTTP/3 by nghttp3) and curl.
 *   - `serve --loopback`: our QUIC on node:dgram at 127.0.0.1, our TLS/HTTP on node:net.
 *   - `serve --tun`: our QUIC on our UDP/IP over TUN; gtlsclient runs inside the namespace
 *     the serve process makes ('sw-quic-serve-<pid>'), removed on exit and again in afterAll.
 * Every child is killed by its PID; namespaces and directories are removed also on failure.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { netnsDown, netnsExists } from '@stepwire/link';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patternChunk } from '../packages/cli/src/services/http-app.ts';
import { requireRootAndPrograms, waitForLine } from '../packages/cli/src/tun/kernel.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(root, 'packages/cli/bin/stepwire.js');
// The PID in the name: two runs of this file at once (two checkouts, a loop) must not
// remove each other's namespace.
const NS = `sw-quic-serve-${process.pid}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sw-quic-serve-'));
const HOME = path.join(dir, 'home');
const children = new Set<ChildProcess>();
const PAGE = 'Hello from stepwire: this page crossed a TCP stack written in TypeScript.\n';

beforeAll(() => {
  requireRootAndPrograms(['ip', 'gtlsclient', 'curl']);
  netnsDown(NS);
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  netnsDown(NS);
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Served {
  child: ChildProcess;
  out: () => string;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

function serve(args: string[]): Served {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], {
    cwd: root,
    env: { ...process.env, STEPWIRE_HOME: HOME },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once('close', (code) => {
      children.delete(child);
      resolve({ code, stdout, stderr });
    }),
  );
  return { child, out: () => stdout, done };
}

function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 8 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }),
    );
    child.stdin?.end();
  });
}

/** gtlsclient fetching `paths` into a fresh directory; resolves with its exit and the files. */
async function gtlsclient(
  prefix: string[],
  host: string,
  port: number,
  paths: string[],
): Promise<{ code: number; out: string; dl: string }> {
  const dl = fs.mkdtempSync(path.join(dir, 'dl-'));
  const authority = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const r = await run(prefix[0] ?? 'gtlsclient', [
    ...prefix.slice(1),
    ...(prefix.length > 0 ? ['gtlsclient'] : []),
    '--exit-on-all-streams-close',
    '--timeout=10s',
    '--no-quic-dump',
    `--download=${dl}`,
    host,
    String(port),
    ...paths.map((p) => `https://${authority}${p}`),
  ]);
  return { ...r, dl };
}

function expectPages(dl: string): void {
  expect(fs.readFileSync(path.join(dl, 'index.html'), 'utf8')).toBe(PAGE);
  const bytes = fs.readFileSync(path.join(dl, '100000'));
  expect(bytes.length).toBe(100_000);
  expect(bytes.equals(patternChunk(0, 100_000))).toBe(true);
}

describe('stepwire serve --loopback: HTTP/3 on node:dgram', () => {
  it('gtlsclient gets / and /bytes/100000 over HTTP/3; curl sees Alt-Svc on HTTP and HTTPS; SIGUSR2 shows the QUIC connection', async () => {
    const s = serve(['--loopback', '--http-port', '0', '--https-port', '0']);
    await waitForLine(s.child, /^ready$/, 30_000);
    const port = (kind: string) => Number(new RegExp(`^service ${kind} (\\d+) `, 'm').exec(s.out())?.[1]);
    const h3 = port('udp');
    const [http, https] = [...s.out().matchAll(/^service tcp (\d+) /gm)].map((m) => Number(m[1]));
    expect(h3).toBeGreaterThan(0);

    const g = await gtlsclient([], '127.0.0.1', h3, ['/', '/bytes/100000']);
    expect(g.code, g.out).toBe(0);
    // gtlsclient prints each response field nghttp3 decoded from our QPACK.
    expect(g.out).toMatch(/:status: 200/);
    expectPages(g.dl);

    const altSvc = `alt-svc: h3=":${h3}"; ma=86400`;
    const c1 = await run('curl', ['-sS', '-D', '-', '-o', '/dev/null', `http://127.0.0.1:${http}/`]);
    expect(c1.code, c1.out).toBe(0);
    expect(c1.out.toLowerCase()).toContain(altSvc);
    const ca = path.join(HOME, 'ca', 'ca.pem');
    for (const v of ['--http1.1', '--http2']) {
      const c2 = await run('curl', [
        '-sS',
        v,
        '--cacert',
        ca,
        '--resolve',
        `stepwire.test:${https}:127.0.0.1`,
        '-D',
        '-',
        '-o',
        '/dev/null',
        `https://stepwire.test:${https}/`,
      ]);
      expect(c2.code, c2.out).toBe(0);
      expect(c2.out.toLowerCase()).toContain(altSvc);
    }

    const statsLine = waitForLine(s.child, /^stats /, 10_000);
    s.child.kill('SIGUSR2');
    const stats = JSON.parse((await statsLine).slice('stats '.length));
    expect(stats.services.h3.accepted).toBe(1);
    expect(stats.services.h3.handshakes).toBe(1);
    expect(stats.services.h3.quic.timersArmed).toBeLessThanOrEqual(1);

    s.child.kill('SIGTERM');
    const r = await s.done;
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
  });

  it('refuses an address that is not loopback, exit 2', async () => {
    const s = serve(['--loopback', '--address', '198.18.0.9', '--http-port', '0', '--https-port', '0']);
    const r = await s.done;
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/loopback/);
  });
});

describe('stepwire serve --tun: HTTP/3 on our UDP over TUN', () => {
  it('gtlsclient in the namespace gets / and /bytes/100000 from 198.18.0.2 and fd00:5757::2 port 443; curl sees Alt-Svc on 80 and 443', async () => {
    const s = serve(['--tun', '--netns', NS]);
    await waitForLine(s.child, /^ready$/, 30_000);
    expect(s.out()).toMatch(/^service udp 443 HTTP\/3/m);
    const inNs = ['ip', 'netns', 'exec', NS];
    for (const host of ['198.18.0.2', 'fd00:5757::2']) {
      const g = await gtlsclient(inNs, host, 443, ['/', '/bytes/100000']);
      expect(g.code, `${host}: ${g.out.slice(-2000)}`).toBe(0);
      expectPages(g.dl);
    }
    const altSvc = 'alt-svc: h3=":443"; ma=86400';
    const c1 = await run('ip', [
      ...inNs.slice(1),
      'curl',
      '-sS',
      '-D',
      '-',
      '-o',
      '/dev/null',
      'http://198.18.0.2/',
    ]);
    expect(c1.code, c1.out).toBe(0);
    expect(c1.out.toLowerCase()).toContain(altSvc);
    const c2 = await run('ip', [
      ...inNs.slice(1),
      'curl',
      '-sS',
      '--cacert',
      path.join(HOME, 'ca', 'ca.pem'),
      '-D',
      '-',
      '-o',
      '/dev/null',
      'https://198.18.0.2/',
    ]);
    expect(c2.code, c2.out).toBe(0);
    expect(c2.out.toLowerCase()).toContain(altSvc);

    const statsLine = waitForLine(s.child, /^stats /, 10_000);
    s.child.kill('SIGUSR2');
    const stats = JSON.parse((await statsLine).slice('stats '.length));
    expect(stats.services.h3.accepted).toBe(2);
    expect(stats.services.h3.handshakes).toBe(2);

    s.child.kill('SIGTERM');
    const r = await s.done;
    expect(r.code).toBe(0);
    expect(netnsExists(NS)).toBe(false);
  });
});
