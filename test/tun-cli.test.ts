/**
 * The `stepwire` command on TUN, run as a child process the way a person runs it: serve
 * until a signal, ping, netns up/down. The kernel in the namespace is the client.
 *
 * Root only; fails (never skips) without it. Namespaces 'swcli<pid>-*' (two runs of this
 * file at once must not remove each other's); every child is
 * killed by PID and every namespace removed in afterAll, also when a test fails.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { netnsDown, netnsExists } from '@stepwire/link';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePingSummary, requireRootAndPrograms, waitForLine } from '../packages/cli/src/tun/kernel.ts';
import { tsharkFields, tsharkProblems } from './support/tshark.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(root, 'packages/cli/bin/stepwire.js');
const NS = {
  serve: `swcli${process.pid}-serve`,
  off: `swcli${process.pid}-off`,
  trace: `swcli${process.pid}-trace`,
  ping: `swcli${process.pid}-ping`,
  up: `swcli${process.pid}-up`,
};
const NAMES = Object.values(NS);
const children = new Set<ChildProcess>();

beforeAll(() => {
  requireRootAndPrograms(['ip', 'ping', 'socat', 'tshark']);
  for (const n of NAMES) netnsDown(n);
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const n of NAMES) netnsDown(n);
});

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Start `stepwire ...args`; `done` resolves with its exit and output. */
function stepwire(args: string[]): { child: ChildProcess; done: Promise<Run> } {
  // serve keeps its CA under $STEPWIRE_HOME: a temporary one, not the user's home.
  const env = { ...process.env, STEPWIRE_HOME: fs.mkdtempSync(path.join(os.tmpdir(), 'sw-home-')) };
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
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
  return { child, done };
}

/** Run to completion, killed after timeoutMs. */
async function stepwireRun(args: string[], timeoutMs = 30_000): Promise<Run> {
  const { child, done } = stepwire(args);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    return await done;
  } finally {
    clearTimeout(timer);
  }
}

/** A program in the namespace, to completion (ip netns exec), killed after timeoutMs. */
function inNs(ns: string, cmd: string[], input?: string, timeoutMs = 10_000): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      'ip',
      ['netns', 'exec', ns, ...cmd],
      { timeout: timeoutMs },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, signal: null, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

async function pingsAndEchoes(ns: string): Promise<void> {
  for (const dst of ['198.18.0.2', 'fd00:5757::2']) {
    const r = await inNs(ns, ['ping', '-n', '-c', '3', '-i', '0.05', '-W', '2', dst]);
    expect(parsePingSummary(r.stdout), `ping ${dst}`).toMatchObject({ transmitted: 3, received: 3 });
  }
  for (const target of ['UDP4:198.18.0.2:7', 'UDP6:[fd00:5757::2]:7']) {
    const r = await inNs(ns, ['socat', '-t', '1', '-', target], `hello over ${target}`);
    expect(r.stdout, target).toBe(`hello over ${target}`);
  }
}

describe('stepwire serve --tun', () => {
  it('makes its namespace, serves ping and UDP echo, and on SIGTERM exits 0 with the namespace gone', async () => {
    const ns = NS.serve;
    const { child, done } = stepwire(['serve', '--tun', '--netns', ns]);
    await waitForLine(child, /^ready$/, 30_000);
    expect(netnsExists(ns)).toBe(true);
    await pingsAndEchoes(ns);
    child.kill('SIGTERM');
    const r = await done;
    expect(r.stderr).toBe('');
    expect(r).toMatchObject({ code: 0, signal: null });
    const lines = r.stdout.split('\n');
    expect(lines).toContain('address 198.18.0.2/24 (kernel side 198.18.0.1)');
    expect(lines).toContain('address fd00:5757::2/64 (kernel side fd00:5757::1)');
    expect(lines.some((l) => l.startsWith('service udp 7 echo'))).toBe(true);
    expect(lines.some((l) => l.startsWith('service icmp echo'))).toBe(true);
    expect(lines.indexOf('ready')).toBeGreaterThan(0);
    expect(r.stdout).toMatch(/stopped: \d+ packets in, \d+ out, 0 dropped/);
    expect(netnsExists(ns)).toBe(false);
  });

  it('--offloads: the kernel hands over GRO super-segments and cuts our TSO ones; ping, UDP echo and 4 MB each way arrive intact', async () => {
    const ns = NS.off;
    const { child, done } = stepwire(['serve', '--tun', '--offloads', '--netns', ns]);
    await waitForLine(child, /^ready$/, 30_000);
    // UDP from the kernel arrives with partial checksums now: the echo must still answer.
    await pingsAndEchoes(ns);
    const down = await inNs(
      ns,
      [
        'curl',
        '-sS',
        '--max-time',
        '30',
        '-o',
        '/dev/null',
        '-w',
        '%{size_download}',
        'http://198.18.0.2/bytes/4000000',
      ],
      undefined,
      40_000,
    );
    expect(down.stdout, down.stderr).toBe('4000000');
    const body = randomBytes(4_000_000);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sw-off-')), 'up.bin');
    fs.writeFileSync(file, body);
    const up = await inNs(
      ns,
      ['curl', '-sS', '--max-time', '30', '--data-binary', `@${file}`, 'http://198.18.0.2/sha256'],
      undefined,
      40_000,
    );
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
    expect(up.stdout.trim(), up.stderr).toBe(createHash('sha256').update(body).digest('hex'));
    child.kill('SIGTERM');
    const r = await done;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^offloads: checksum, TCP super-segments up to \d+ bytes/m);
    const m = /^offloads: (\d+) super-segments in \(GRO\), (\d+) out \(TSO\/GSO\)$/m.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(Number(m?.[1])).toBeGreaterThan(0);
    expect(Number(m?.[2])).toBeGreaterThan(0);
    expect(netnsExists(ns)).toBe(false);
  });

  it('--trace prints each packet as a ladder line, --pcap records them for tshark; SIGINT also cleans up', async () => {
    const ns = NS.trace;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sw-tun-cli-'));
    const pcap = path.join(dir, 'serve.pcap');
    const { child, done } = stepwire(['serve', '--tun', '--netns', ns, '--trace', '--pcap', pcap]);
    await waitForLine(child, /^ready$/, 30_000);
    for (const size of ['56', '3000']) {
      const r1 = await inNs(ns, ['ping', '-n', '-c', '1', '-s', size, '198.18.0.2']);
      expect(parsePingSummary(r1.stdout).received).toBe(1);
    }
    const r2 = await inNs(ns, ['socat', '-t', '1', '-', 'UDP4:198.18.0.2:9'], 'nobody');
    expect(r2.stdout).toBe('');
    child.kill('SIGINT');
    const r = await done;
    expect(r).toMatchObject({ code: 0, signal: null });
    const ladder = r.stdout.split('\n');
    expect(ladder.some((l) => /kernel→sw +IPv4 198\.18\.0\.1→198\.18\.0\.2 ICMP .*frag/.test(l))).toBe(true);
    expect(ladder.some((l) => /sw→kernel +IPv4 198\.18\.0\.2→198\.18\.0\.1 ICMP echo-reply/.test(l))).toBe(
      true,
    );
    expect(ladder.some((l) => /kernel→sw +IPv4 .* UDP \d+→9 len=6/.test(l))).toBe(true);
    expect(ladder.some((l) => /sw→kernel +IPv4 .*unreachable/i.test(l))).toBe(true);
    expect(ladder.some((l) => /sw +· udp dropped: .*no socket/.test(l))).toBe(true);
    expect(netnsExists(ns)).toBe(false);
    try {
      // Every packet of the ladder is in the capture, and tshark finds nothing wrong with it.
      const packets = ladder.filter((l) => /(kernel→sw|sw→kernel)/.test(l)).length;
      expect(tsharkFields(pcap, ['frame.number'])).toHaveLength(packets);
      expect(tsharkProblems(pcap)).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('without --tun: one line saying only TUN mode exists and the help hint, exit 2, no stack trace', async () => {
    const r = await stepwireRun(['serve']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^stepwire: only TUN mode exists for now.*\n\(run 'stepwire serve --help' for usage\)\n$/,
    );
    expect(r.stderr.split('\n')).toHaveLength(3);
  });
});

describe('stepwire ping --tun', () => {
  it('pings the kernel like ping(8), both families, fragmenting large payloads; the namespace is removed after', async () => {
    const ns = NS.ping;
    const r4 = await stepwireRun(['ping', '198.18.0.1', '--tun', '--netns', ns, '-c', '3', '-i', '0.05']);
    expect(r4.stderr).toBe('');
    expect(r4.code).toBe(0);
    expect(r4.stdout).toMatch(
      /^PING 198\.18\.0\.1 \(198\.18\.0\.1\) from 198\.18\.0\.2: 56\(84\) bytes of data\.$/m,
    );
    expect(
      r4.stdout.match(/^64 bytes from 198\.18\.0\.1: icmp_seq=\d ttl=64 time=[\d.]+ ms$/gm),
    ).toHaveLength(3);
    expect(parsePingSummary(r4.stdout)).toMatchObject({ transmitted: 3, received: 3, rtt: {} });
    expect(netnsExists(ns)).toBe(false);

    const r6 = await stepwireRun([
      'ping',
      'fd00:5757::1',
      '--tun',
      '--netns',
      ns,
      '-c',
      '2',
      '-i',
      '0.05',
      '-s',
      '5000',
    ]);
    expect(r6.code, r6.stderr).toBe(0);
    expect(r6.stdout.match(/^5008 bytes from fd00:5757::1: icmp_seq=\d ttl=64/gm)).toHaveLength(2);
    expect(netnsExists(ns)).toBe(false);
  });

  it('exits 1 when no reply comes', async () => {
    const r = await stepwireRun([
      'ping',
      '198.18.0.99',
      '--tun',
      '--netns',
      NS.ping,
      '-c',
      '2',
      '-i',
      '0.05',
      '-W',
      '0.3',
    ]);
    expect(r.code).toBe(1);
    expect(parsePingSummary(r.stdout)).toMatchObject({ transmitted: 2, received: 0 });
    expect(netnsExists(NS.ping)).toBe(false);
  });

  it('a bad address or one outside the namespace is a one-line error', async () => {
    for (const [addr, msg] of [
      ['not-an-ip', /^stepwire: not an IP address: 'not-an-ip'\n\(run 'stepwire ping --help' for usage\)\n$/],
      ['192.0.2.1', /^stepwire: no route to 192\.0\.2\.1: .*\n\(run 'stepwire ping --help' for usage\)\n$/],
    ] as const) {
      const r = await stepwireRun(['ping', addr, '--tun', '--netns', NS.ping]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(msg);
    }
    expect(netnsExists(NS.ping)).toBe(false);
  });
});

describe('stepwire netns up|down', () => {
  it('up makes a namespace that serve attaches to and leaves in place; down removes it', async () => {
    const ns = NS.up;
    const up = await stepwireRun(['netns', 'up', '--netns', ns]);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toMatch(new RegExp(`^namespace ${ns}: persistent TUN device sw0$`, 'm'));
    expect(netnsExists(ns)).toBe(true);

    const again = await stepwireRun(['netns', 'up', '--netns', ns]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(new RegExp(`^stepwire: namespace '${ns}' already exists`));

    const { child, done } = stepwire(['serve', '--tun', '--netns', ns]);
    await waitForLine(child, /^ready$/, 30_000);
    await pingsAndEchoes(ns);
    child.kill('SIGTERM');
    const r = await done;
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/existing, kept/);
    expect(netnsExists(ns)).toBe(true);

    const down = await stepwireRun(['netns', 'down', '--netns', ns]);
    expect(down).toMatchObject({ code: 0, stdout: `removed namespace ${ns}\n` });
    expect(netnsExists(ns)).toBe(false);
    const downAgain = await stepwireRun(['netns', 'down', '--netns', ns]);
    expect(downAgain.code).toBe(0);
    expect(downAgain.stdout).toMatch(/nothing to remove/);
  });
});
