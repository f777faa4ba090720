/**
 * `stepwire serve --tun --workers 2`, run as a child process the way a person runs it: one
 * stack per worker thread, each on its own queue of a multi-queue TUN device. The kernel in
 * the namespace is the client (python's http.client and ssl, ping); it spreads the flows
 * over the queues by hash, so with many source ports both stacks must serve connections,
 * plain and TLS.
 *
 * Root only; fails (never skips) without it. Namespaces 'sw-serve-wk*' are made by the
 * command and checked gone; afterAll kills any child by PID and removes them, also on failure.
 *
 * Time limits are for a loaded machine (CI runs two files at once on two cores, beside other
 * work): there, at a load average of 20-24, `ready` took 26 s (each worker thread loads
 * the stack's TypeScript through tsx and warms it), and the first test 35-39 s of the
 * 60 s vitest allows by default; a python TLS handshake once ran past a 10 s socket timeout
 * at load 15. So each step waits for its own signal ('ready', a 'stats' line, a client's
 * exit) within a bound several times what it takes there, and the tests carry their own
 * limits. The bounds still end a hang: nothing is retried.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { netnsDown, netnsExists } from '@stepwire/link';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../packages/cli/src/commands/index.ts';
import { parsePingSummary, requireRootAndPrograms, waitForLine } from '../packages/cli/src/tun/kernel.ts';
import { tsharkFields } from './support/tshark.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(root, 'packages/cli/bin/stepwire.js');
const NAMES = ['sw-serve-wk', 'sw-serve-wk-die', 'sw-serve-wk-taken'];
const children = new Set<ChildProcess>();
/** Until `ready`: process start, tsx, the CA, the namespace and every worker's stack. */
const READY_MS = 120_000;
/** A python or ngtcp2 client's limit on one socket operation (connect, handshake, a read). */
const CLIENT_TIMEOUT_S = 30;
const homes: string[] = [];

beforeAll(() => {
  requireRootAndPrograms(['ip', 'ping', '/usr/bin/python3', 'tshark', 'gtlsclient']);
  for (const n of NAMES) netnsDown(n);
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const n of NAMES) netnsDown(n);
  for (const h of homes) fs.rmSync(h, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Start `stepwire ...args` with a temporary $STEPWIRE_HOME (its serve CA); `done` resolves at exit. */
function stepwire(args: string[]): { child: ChildProcess; home: string; done: Promise<Run> } {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'sw-home-'));
  homes.push(home);
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: root,
    env: { ...process.env, STEPWIRE_HOME: home },
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
  const done = new Promise<Run>((resolve) => {
    child.once('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, home, done };
}

/** A program in the namespace, to completion, killed after timeoutMs. */
function inNs(ns: string, cmd: string[], timeoutMs = 30_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', ns, ...cmd], { timeout: timeoutMs }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, signal: null, stdout, stderr });
    });
  });
}

/**
 * N plain and M TLS requests, each on a new connection (so a new source port and flow
 * hash), one at a time, every certificate checked against the serve CA. Prints one line
 * per request: scheme, status, whether the body is what /bytes/N promises.
 */
const CLIENT = `
import http.client, ssl, sys
plain, tls, ca, timeout = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
ctx = ssl.create_default_context(cafile=ca)
def get(conn, size):
    conn.request('GET', '/bytes/%d' % size)
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, len(body) == size
for i in range(plain):
    s, ok = get(http.client.HTTPConnection('198.18.0.2', 80, timeout=timeout), 1000 + i)
    print('http', s, ok)
for i in range(tls):
    s, ok = get(http.client.HTTPSConnection('198.18.0.2', 443, timeout=timeout, context=ctx), 2000 + i)
    print('https', s, ok)
`;

/**
 * TLS 1.3 resumption (RFC 8446 §2.2): one full handshake, then N connections each offering
 * the newest ticket it holds; prints 'resumed' or 'full' and whether the response came.
 */
const RESUME = `
import socket, ssl, sys
n, ca, timeout = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
ctx = ssl.create_default_context(cafile=ca)
def once(session):
    raw = socket.create_connection(('198.18.0.2', 443), timeout=timeout)
    s = ctx.wrap_socket(raw, server_hostname='198.18.0.2', session=session)
    s.sendall(b'GET /bytes/10 HTTP/1.1\\r\\nHost: 198.18.0.2\\r\\nConnection: close\\r\\n\\r\\n')
    data = b''
    while True:
        d = s.recv(4096)
        if not d:
            break
        data += d
    out = (s.session_reused, s.session, data.startswith(b'HTTP/1.1 200'))
    s.close()
    return out
_, sess, ok = once(None)
print('first', ok)
for i in range(n):
    reused, new, ok = once(sess)
    print('resumed' if reused else 'full', ok)
    sess = new or sess
`;

interface WorkerStats {
  worker: number;
  tcp: { listeners: { port: number; accepted: number }[] };
  services: { https: { http: { counters: Record<string, number> } }; h3: { handshakes: number } };
}

describe('stepwire serve --tun --workers', () => {
  it('two stacks on two queues both serve plain, TLS and HTTP/3 connections, tickets of one resume on the other; SIGINT ends both and removes the namespace', async () => {
    const ns = 'sw-serve-wk';
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sw-serve-wk-'));
    homes.push(dir);
    const pcap = path.join(dir, 'serve.pcap');
    const keys = path.join(dir, 'keys.txt');
    const { child, home, done } = stepwire([
      'serve',
      '--tun',
      '--workers',
      '2',
      '--netns',
      ns,
      '--pcap',
      pcap,
      '--keylog',
      keys,
    ]);
    await waitForLine(child, /^ready$/, READY_MS);
    expect(netnsExists(ns)).toBe(true);

    // ICMP echo is stateless: whichever stack the kernel's hash picks answers.
    for (const dst of ['198.18.0.2', 'fd00:5757::2']) {
      const r = await inNs(ns, ['ping', '-n', '-c', '4', '-i', '0.05', '-W', '2', dst]);
      expect(parsePingSummary(r.stdout), `ping ${dst}`).toMatchObject({ transmitted: 4, received: 4 });
    }

    const PLAIN = 64;
    const TLS = 24;
    const ca = path.join(home, 'ca', 'ca.pem');
    const r = await inNs(
      ns,
      ['/usr/bin/python3', '-c', CLIENT, String(PLAIN), String(TLS), ca, String(CLIENT_TIMEOUT_S)],
      150_000,
    );
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n');
    expect(lines.filter((l) => l === 'http 200 True')).toHaveLength(PLAIN);
    expect(lines.filter((l) => l === 'https 200 True')).toHaveLength(TLS);

    // HTTP/3: ngtcp2's client, a new UDP source port (so a new flow hash) per run.
    const H3 = 16;
    const h3 = await inNs(
      ns,
      [
        'sh',
        '-c',
        `ok=0; for i in $(seq ${H3}); do timeout ${CLIENT_TIMEOUT_S} gtlsclient -q --exit-on-all-streams-close 198.18.0.2 443 https://198.18.0.2/bytes/1000 >/dev/null 2>&1 && ok=$((ok+1)); done; echo $ok`,
      ],
      150_000,
    );
    expect(h3.stdout.trim()).toBe(String(H3));

    // What each stack holds and has done, asked of both workers.
    const askStats = async () => {
      const statsLine = waitForLine(child, /^stats /, 30_000);
      child.kill('SIGUSR2');
      return JSON.parse((await statsLine).slice('stats '.length)) as { workers: WorkerStats[] };
    };
    const stats = await askStats();
    expect(stats.workers.map((w) => w.worker)).toEqual([0, 1]);
    const acceptedOn = (w: WorkerStats | undefined, port: number) =>
      (w?.tcp.listeners ?? []).filter((l) => l.port === port).reduce((n, l) => n + l.accepted, 0);
    for (const w of stats.workers) {
      // 2^-63 and 2^-23 odds that a fair hash leaves one queue without a plain or TLS flow.
      expect(acceptedOn(w, 80), `worker ${w.worker} port 80`).toBeGreaterThan(0);
      expect(acceptedOn(w, 443), `worker ${w.worker} port 443`).toBeGreaterThan(0);
      // Connections that finished the TLS handshake and were handed to HTTP (by ALPN).
      const overTls = Object.values(w.services.https.http.counters).reduce((a, b) => a + b, 0);
      expect(overTls, `worker ${w.worker} TLS connections`).toBeGreaterThan(0);
      expect(w.services.h3.handshakes, `worker ${w.worker} QUIC handshakes`).toBeGreaterThan(0);
    }
    expect(stats.workers.reduce((n, w) => n + w.services.h3.handshakes, 0)).toBe(H3);

    // Session tickets: every stack seals them under the same keys, so each resumption works
    // whichever worker issued the ticket. Both workers took some of these connections, so
    // some tickets crossed from one to the other.
    const RESUMES = 16;
    const res = await inNs(
      ns,
      ['/usr/bin/python3', '-c', RESUME, String(RESUMES), ca, String(CLIENT_TIMEOUT_S)],
      120_000,
    );
    expect(res.stderr).toBe('');
    expect(res.stdout.trim().split('\n')).toEqual(['first True', ...Array(RESUMES).fill('resumed True')]);
    const after = await askStats();
    for (const i of [0, 1]) {
      const grew = acceptedOn(after.workers[i], 443) - acceptedOn(stats.workers[i], 443);
      expect(grew, `worker ${i} resumptions`).toBeGreaterThan(0);
    }
    expect(stats.workers.reduce((n, w) => n + acceptedOn(w, 80), 0)).toBe(PLAIN);
    expect(stats.workers.reduce((n, w) => n + acceptedOn(w, 443), 0)).toBe(TLS);

    child.kill('SIGINT');
    const end = await done;
    expect(end.stderr).toBe('');
    expect(end).toMatchObject({ code: 0, signal: null });
    const out = end.stdout.split('\n');
    expect(out).toContain('address 198.18.0.2/24 (kernel side 198.18.0.1)');
    expect(out.some((l) => /^namespace sw-serve-wk .* with 2 queues/.test(l))).toBe(true);
    // The end lines: one per worker, then the sums.
    const perWorker = out
      .map((l) =>
        /^worker (\d): (\d+) packets in, (\d+) out, (\d+) dropped, (\d+) connections accepted$/.exec(l),
      )
      .filter((m) => m !== null)
      .map((m) => ({ rx: Number(m[2]), tx: Number(m[3]), accepted: Number(m[5]) }));
    expect(perWorker).toHaveLength(2);
    for (const w of perWorker) {
      expect(w.rx).toBeGreaterThan(0);
      expect(w.tx).toBeGreaterThan(0);
      expect(w.accepted).toBeGreaterThan(0);
    }
    expect(perWorker.reduce((n, w) => n + w.accepted, 0)).toBe(PLAIN + TLS + 1 + RESUMES);
    const rx = perWorker.reduce((n, w) => n + w.rx, 0);
    const tx = perWorker.reduce((n, w) => n + w.tx, 0);
    expect(end.stdout).toContain(`stopped: ${rx} packets in, ${tx} out, 0 dropped`);
    expect(netnsExists(ns)).toBe(false);

    // Each worker recorded its own queue: tshark reads as many packets as it counted.
    perWorker.forEach((w, i) => {
      const frames = tsharkFields(path.join(dir, `serve.w${i}.pcap`), ['frame.number']);
      expect(frames, `worker ${i} pcap`).toHaveLength(w.rx + w.tx);
    });
    // Every TLS and QUIC connection's secrets reached the one key log, whichever worker made them.
    const randoms = new Set(
      fs
        .readFileSync(keys, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('CLIENT_TRAFFIC_SECRET_0 '))
        .map((l) => l.split(' ')[1]),
    );
    expect(randoms.size).toBe(TLS + H3 + 1 + RESUMES);
  }, 300_000);

  it('--trace lines name their worker; a worker that loses its queue stops the others, the namespace is removed, exit 1', async () => {
    const ns = 'sw-serve-wk-die';
    const { child, done } = stepwire(['serve', '--tun', '--workers', '2', '--netns', ns, '--trace']);
    await waitForLine(child, /^ready$/, READY_MS);
    const ping = await inNs(ns, ['ping', '-n', '-c', '2', '-i', '0.05', '-W', '2', '198.18.0.2']);
    expect(parsePingSummary(ping.stdout)).toMatchObject({ transmitted: 2, received: 2 });
    // Deleting the device hangs up every queue under its worker.
    const del = await inNs(ns, ['ip', 'link', 'del', 'sw0']);
    expect(del.code, del.stderr).toBe(0);
    const end = await done;
    expect(end).toMatchObject({ code: 1, signal: null });
    // One line naming the worker and why (the link says how it saw the device go).
    expect(end.stderr).toMatch(/^stepwire: worker \d: sw0: .+\n$/);
    expect(end.stdout).toMatch(/stopped: \d+ packets in/);
    // The ladder: each packet line starts with the number of the worker whose queue it crossed.
    const ladder = end.stdout.split('\n');
    expect(
      ladder.filter((l) => /^w[01] +[\d.]+ +kernel→sw +IPv4 198\.18\.0\.1→198\.18\.0\.2 ICMP echo /.test(l)),
    ).toHaveLength(2);
    expect(ladder.filter((l) => /^w[01] +[\d.]+ +sw→kernel +IPv4 .* ICMP echo-reply /.test(l))).toHaveLength(
      2,
    );
    expect(netnsExists(ns)).toBe(false);
  }, 180_000);

  it('--workers takes 1 to 64 and only with --tun: one usage line, exit 2', async () => {
    for (const args of [
      ['serve', '--tun', '--workers', '0'],
      ['serve', '--tun', '--workers', '65'],
      ['serve', '--tun', '--workers', 'two'],
      ['serve', '--loopback', '--workers', '2'],
    ]) {
      let err = '';
      // In this process: the option is refused before anything is made (no CA, no namespace).
      const code = await runCli(args, { out: () => {}, err: (t) => (err += t) });
      expect(code, args.join(' ')).toBe(2);
      expect(err).toMatch(/^stepwire: --workers/);
    }
  });

  it('refuses a namespace that exists (its device would have one queue) and leaves it in place', async () => {
    const ns = 'sw-serve-wk-taken';
    execFileSync('ip', ['netns', 'add', ns], { timeout: 10_000 });
    let err = '';
    const code = await runCli(['serve', '--tun', '--workers', '2', '--netns', ns], {
      out: () => {},
      err: (t) => (err += t),
    });
    expect(code).toBe(2);
    expect(err).toMatch(/^stepwire: namespace 'sw-serve-wk-taken' exists: --workers makes its own/);
    expect(netnsExists(ns)).toBe(true);
    netnsDown(ns);
  });
});
