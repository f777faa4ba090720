/**
 * HTTPS in `stepwire serve --tun`, run as a child process the way a person runs it: the CA
 * it makes on first use (and keeps, renewing the leaf), the `ca:` line that curl's --cacert
 * takes, --keylog, and --cert/--key with the user's own certificate. The kernel in the
 * namespace is the client (curl).
 *
 * Root only; fails (never skips) without it. Namespaces 'sw-tls-serve-<pid>*'; every child
 * is killed by PID and every namespace removed in afterAll, also when a test fails.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { netnsDown, netnsExists } from '@stepwire/link';
import { pki } from '@stepwire/tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateServeIdentity } from '../packages/cli/src/services/https.ts';
import { requireRootAndPrograms, waitForLine } from '../packages/cli/src/tun/kernel.ts';
import { patternSha256, sha256 } from './support/tcp-tun.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(root, 'packages/cli/bin/stepwire.js');
const NS = `sw-tls-serve-${process.pid}`;
const NS2 = `sw-tls-serve2-${process.pid}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sw-tls-serve-'));
const children = new Set<ChildProcess>();

beforeAll(() => {
  requireRootAndPrograms(['ip', 'curl']);
  for (const n of [NS, NS2]) netnsDown(n);
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const n of [NS, NS2]) netnsDown(n);
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function stepwire(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const done = new Promise<Run>((resolve) => {
    child.once('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, done, stdout: () => stdout };
}

function inNs(ns: string, cmd: string[], timeoutMs = 15_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      'ip',
      ['netns', 'exec', ns, ...cmd],
      { timeout: timeoutMs, encoding: 'buffer', maxBuffer: 1 << 24 },
      (err, stdout, stderr) => {
        resolve({
          code: err ? ((err as { code?: number }).code ?? 1) : 0,
          signal: null,
          // Bodies may be binary; callers hash or decode them.
          stdout: stdout.toString('latin1'),
          stderr: stderr.toString(),
        });
      },
    );
  });
}

const mode = (f: string) => fs.statSync(f).mode & 0o777;

describe('the serve CA store', () => {
  it('makes a CA and leaf once (keys 0600), keeps them, and renews only the leaf when it expires', () => {
    const store = path.join(dir, 'store-a');
    const now = new Date();
    const first = loadOrCreateServeIdentity(store, now);
    expect(first.made).toEqual({ ca: true, leaf: true });
    for (const f of ['ca.key', 'leaf.key']) expect(mode(path.join(store, f)), f).toBe(0o600);
    expect(mode(store)).toBe(0o700);
    const second = loadOrCreateServeIdentity(store, new Date(now.getTime() + 3_600_000));
    expect(second.made).toEqual({ ca: false, leaf: false });
    expect(second.certPem).toBe(first.certPem);
    // 100 days on, the 90-day leaf has expired: a new one from the same CA.
    const later = new Date(now.getTime() + 100 * 86_400_000);
    const third = loadOrCreateServeIdentity(store, later);
    expect(third.made).toEqual({ ca: false, leaf: true });
    expect(third.caPem).toBe(first.caPem);
    const [leaf, ca] = pki.decodeCertificatesPem(third.certPem);
    expect(() =>
      pki.verifyCertificateChain(leaf!, [], { trustAnchors: [ca!], now: later, hostname: 'fd00:5757::2' }),
    ).not.toThrow();
  });

  it('the store is locked while a CA is made: a live lock is waited for, an abandoned one taken over', async () => {
    const store = path.join(dir, 'store-c');
    fs.mkdirSync(store, { recursive: true });
    const lock = path.join(store, '.lock');
    fs.writeFileSync(lock, '');
    // The child reports each failed attempt at the lock (openSync 'wx' on an existing file) on
    // stderr, so the test knows it is really waiting on our lock rather than not yet started.
    const https = JSON.stringify(path.join(root, 'packages/cli/src/services/https.ts'));
    const script = `import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
const open = fs.openSync;
fs.openSync = (...a) => {
  try { return open(...a); } catch (e) { if (e.code === 'EEXIST') process.stderr.write('lock busy\\n'); throw e; }
};
syncBuiltinESMExports();
const { loadOrCreateServeIdentity } = await import(${https});
process.stdout.write(loadOrCreateServeIdentity(process.argv[1]).caPem);`;
    let exited = false;
    let busy = 0;
    let onBusy = (): void => {};
    const child = new Promise<string>((resolve, reject) => {
      const proc = execFile(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', script, store],
        { cwd: root, timeout: 30_000 },
        (err, out) => {
          exited = true;
          onBusy();
          return err ? reject(err) : resolve(out);
        },
      );
      proc.stderr?.on('data', (d: Buffer) => {
        busy += d.toString().split('lock busy').length - 1;
        onBusy();
      });
    });
    // Two failed attempts: the child found the lock held, slept, and tried again.
    await new Promise<void>((r) => {
      onBusy = () => {
        if (busy >= 2 || exited) r();
      };
    });
    // The other process holds the lock: nothing is written and the child keeps waiting.
    expect(exited).toBe(false);
    expect(busy).toBeGreaterThanOrEqual(2);
    expect(fs.existsSync(path.join(store, 'ca.pem'))).toBe(false);
    fs.rmSync(lock);
    const caPem = await child;
    expect(fs.readFileSync(path.join(store, 'ca.pem'), 'utf8')).toBe(caPem);
    expect(fs.existsSync(lock)).toBe(false);
    // A lock a minute old is a crashed run's: taken over at once.
    fs.writeFileSync(lock, '');
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(lock, old, old);
    fs.rmSync(path.join(store, 'leaf.pem'));
    expect(loadOrCreateServeIdentity(store).made).toEqual({ ca: false, leaf: true });
    expect(fs.existsSync(lock)).toBe(false);
  });

  it('a damaged leaf or one from another CA is made again; a damaged CA key makes a new CA', () => {
    const store = path.join(dir, 'store-b');
    const first = loadOrCreateServeIdentity(store);
    fs.writeFileSync(path.join(store, 'leaf.pem'), 'not a certificate');
    expect(loadOrCreateServeIdentity(store).made).toEqual({ ca: false, leaf: true });
    const other = pki.createStepwireCredentials(new Date());
    fs.writeFileSync(path.join(store, 'leaf.pem'), other.leaf.certificatePem);
    fs.writeFileSync(path.join(store, 'leaf.key'), other.leaf.privateKeyPem);
    expect(loadOrCreateServeIdentity(store).made).toEqual({ ca: false, leaf: true });
    fs.writeFileSync(path.join(store, 'ca.key'), other.ca.privateKeyPem);
    const again = loadOrCreateServeIdentity(store);
    expect(again.made).toEqual({ ca: true, leaf: true });
    expect(again.caPem).not.toBe(first.caPem);
  });
});

describe('stepwire serve --tun: HTTPS', () => {
  it('prints ca: PATH; curl --cacert PATH verifies and fetches over IPv4 and IPv6; --keylog fills the file', async () => {
    const home = path.join(dir, 'home');
    const keylog = path.join(dir, 'serve.keylog');
    const { child, done, stdout } = stepwire(['serve', '--tun', '--netns', NS, '--keylog', keylog], {
      STEPWIRE_HOME: home,
    });
    await waitForLine(child, /^ready$/, 30_000);
    const caLine = stdout()
      .split('\n')
      .find((l) => l.startsWith('ca: '));
    expect(caLine).toBe(`ca: ${path.join(home, 'ca', 'ca.pem')}`);
    const ca = caLine!.slice(4);
    expect(stdout()).toMatch(/^service tcp 443 HTTPS/m);
    const page = await inNs(NS, [
      'curl',
      '-sS',
      '--fail',
      '--max-time',
      '10',
      '--cacert',
      ca,
      'https://198.18.0.2/',
    ]);
    expect(page.stderr).toBe('');
    expect(page.stdout).toMatch(/^Hello from stepwire/);
    const bytes = await inNs(NS, [
      'curl',
      '-sS',
      '--fail',
      '--max-time',
      '10',
      '--cacert',
      ca,
      'https://[fd00:5757::2]/bytes/100000',
    ]);
    expect(sha256(Buffer.from(bytes.stdout, 'latin1'))).toBe(patternSha256(100_000));
    // One app, both versions: ALPN h2 (curl's choice) or http/1.1 on 443, h2c by preface on 80.
    const version = async (args: string[]) =>
      (
        await inNs(NS, [
          'curl',
          '-sS',
          '--fail',
          '--max-time',
          '10',
          '-o',
          '/dev/null',
          '-w',
          '%{http_version}',
          ...args,
        ])
      ).stdout;
    expect(await version(['--cacert', ca, 'https://198.18.0.2/'])).toBe('2');
    expect(await version(['--http1.1', '--cacert', ca, 'https://198.18.0.2/'])).toBe('1.1');
    expect(await version(['--http2-prior-knowledge', 'http://198.18.0.2/bytes/70000'])).toBe('2');
    expect(await version(['http://198.18.0.2/'])).toBe('1.1');
    // SIGUSR2: one JSON line of what every layer holds (issue 15).
    child.kill('SIGUSR2');
    await waitForLine(child, /^stats /, 10_000);
    const statsLine = stdout()
      .split('\n')
      .find((l) => l.startsWith('stats '))!;
    const stats = JSON.parse(statsLine.slice(6)) as {
      tcp: { connections: number; timersArmed: number };
      udp: { boundSockets: number };
      ip: { timersArmed: number };
      services: {
        http: { connections: number; armedTimers: number };
        https: { tls: { connections: number } };
      };
    };
    expect(stats.tcp.timersArmed).toBeGreaterThanOrEqual(0);
    // UDP echo (port 7) and HTTP/3 (port 443), each on IPv4 and IPv6.
    expect(stats.udp.boundSockets).toBe(4);
    expect(stats.services.http.armedTimers).toBeGreaterThanOrEqual(0);
    expect(stats.services.https.tls.connections).toBeGreaterThanOrEqual(0);
    child.kill('SIGTERM');
    const r = await done;
    expect(r.stderr).toBe('');
    expect(r).toMatchObject({ code: 0, signal: null });
    expect(netnsExists(NS)).toBe(false);
    const lines = fs.readFileSync(keylog, 'utf8').trim().split('\n');
    // Four TLS connections, five secrets each (RFC 8446 §7.1; the NSS key log labels).
    expect(lines.filter((l) => l.startsWith('CLIENT_TRAFFIC_SECRET_0 '))).toHaveLength(4);
    expect(lines).toHaveLength(20);
    expect(mode(keylog)).toBe(0o600);
  });

  it('--cert/--key serve the user’s own certificate (no ca: line), --trace shows its TLS handshake; --cert alone is a usage error', async () => {
    const bad = await stepwire(['serve', '--tun', '--netns', NS2, '--cert', '/nonexistent.pem']).done;
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--cert and --key go together/);
    const own = pki.createStepwireCredentials(new Date());
    const cert = path.join(dir, 'own.pem');
    const key = path.join(dir, 'own.key');
    const caFile = path.join(dir, 'own-ca.pem');
    fs.writeFileSync(cert, own.leaf.certificatePem);
    fs.writeFileSync(key, own.leaf.privateKeyPem, { mode: 0o600 });
    fs.writeFileSync(caFile, own.ca.certificatePem);
    const home = path.join(dir, 'home2');
    const { child, done, stdout } = stepwire(
      ['serve', '--tun', '--netns', NS2, '--cert', cert, '--key', key, '--trace'],
      {
        STEPWIRE_HOME: home,
      },
    );
    await waitForLine(child, /^ready$/, 30_000);
    expect(stdout()).not.toMatch(/^ca: /m);
    expect(stdout()).toContain(`https certificate: ${cert} (yours)`);
    const r1 = await inNs(NS2, [
      'curl',
      '-sS',
      '--fail',
      '--max-time',
      '10',
      '--cacert',
      caFile,
      '--resolve',
      'stepwire.test:443:198.18.0.2',
      'https://stepwire.test/',
    ]);
    expect(r1.stdout, r1.stderr).toMatch(/^Hello from stepwire/);
    child.kill('SIGTERM');
    const r = await done;
    expect(r).toMatchObject({ code: 0, signal: null });
    // --trace: our TLS server's messages and states sit in the ladder between the packets.
    const ladder = r.stdout.split('\n');
    for (const re of [
      /sw +· tls → ServerHello/,
      /sw +· tls → Certificate 1 cert/,
      /sw +· tls WAIT_FINISHED → CONNECTED/,
    ])
      expect(
        ladder.some((l) => re.test(l)),
        String(re),
      ).toBe(true);
    // Nothing was written to the CA store when the user brought a certificate.
    expect(fs.existsSync(home)).toBe(false);
  });
});
