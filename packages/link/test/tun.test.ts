/**
 * TunLink and the namespace helper against the real Linux kernel. Needs root: it fails
 * (does not skip) without it. Everything happens inside namespaces named sw-link-test*,
 * made and removed here; addresses are 198.18.0.0/24 and fd00:5757::/64.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ByteWriter, internetChecksum, RealClock } from '@stepwire/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LinkSetupError } from '../src/errors.ts';
import { impair } from '../src/impair.ts';
import type { Link } from '../src/link.ts';
import { Netns, netnsDown, netnsExists, netnsUp } from '../src/netns.ts';
import { PcapWriter, recordLink } from '../src/pcap.ts';
import { TunLink } from '../src/tun.ts';

// The PID in the names: two runs of this file at once (two checkouts, a loop) must not
// remove each other's namespaces.
const NS = `sw-link-test-${process.pid}`;
const DEV = 'swlt0';
const CHILD_NS = [1, 2, 3, 4, 5].map((i) => `sw-link-test-c${i}-${process.pid}`);
const UP_NS = `sw-link-test-up-${process.pid}`;
const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../../..');

function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'the TUN tests need root (CAP_NET_ADMIN and CAP_SYS_ADMIN): run them as root, as CI does',
    );
  }
}

const ipv4Of = (p: Uint8Array, at: number) => `${p[at]}.${p[at + 1]}.${p[at + 2]}.${p[at + 3]}`;

/** An ICMP echo request (RFC 792 type 8) in an IPv4 packet? */
function isEchoRequestV4(p: Uint8Array): boolean {
  return p.length >= 28 && p[0]! >> 4 === 4 && p[9] === 1 && p[(p[0]! & 0xf) * 4] === 8;
}

/** Turn an IPv4 echo request into its reply by hand: swap addresses, type 0, both checksums anew. */
function echoReplyV4(req: Uint8Array): Uint8Array {
  const p = req.slice();
  const ihl = (p[0]! & 0xf) * 4;
  p.set(req.subarray(16, 20), 12);
  p.set(req.subarray(12, 16), 16);
  p[8] = 64; // TTL
  p[10] = p[11] = 0;
  const hc = internetChecksum(p.subarray(0, ihl));
  p[10] = hc >> 8;
  p[11] = hc & 0xff;
  p[ihl] = 0; // RFC 792: echo reply
  p[ihl + 2] = p[ihl + 3] = 0;
  const cc = internetChecksum(p.subarray(ihl));
  p[ihl + 2] = cc >> 8;
  p[ihl + 3] = cc & 0xff;
  return p;
}

/** ICMPv6 echo request (RFC 4443 type 128) directly after the IPv6 header? */
function isEchoRequestV6(p: Uint8Array): boolean {
  return p.length >= 48 && p[0]! >> 4 === 6 && p[6] === 58 && p[40] === 128;
}

function echoReplyV6(req: Uint8Array): Uint8Array {
  const p = req.slice();
  p.set(req.subarray(24, 40), 8);
  p.set(req.subarray(8, 24), 24);
  p[7] = 64;
  p[40] = 129; // RFC 4443 §4.2: echo reply
  p[42] = p[43] = 0;
  const icmp = p.subarray(40);
  // RFC 4443 §2.3: the checksum covers the RFC 8200 §8.1 pseudo-header.
  const pseudo = new ByteWriter(40)
    .bytes(p.subarray(8, 24))
    .bytes(p.subarray(24, 40))
    .u32(icmp.length)
    .u32(58);
  const c = internetChecksum(pseudo.finish(), icmp);
  p[42] = c >> 8;
  p[43] = c & 0xff;
  return p;
}

/** Answer echo requests arriving on `link` by hand; returns the requests seen. */
function answerPings(link: Link): Uint8Array[] {
  const seen: Uint8Array[] = [];
  link.onPacket((p) => {
    if (isEchoRequestV4(p)) {
      seen.push(p);
      link.send(echoReplyV4(p));
    } else if (isEchoRequestV6(p)) {
      seen.push(p);
      link.send(echoReplyV6(p));
    }
  });
  return seen;
}

/**
 * A counter from /proc/net/snmp inside the namespace, e.g. ('Icmp', 'InCsumErrors'). ping
 * on a raw socket takes replies the kernel itself counts as bad, so a passing ping alone
 * does not prove our checksums; these counters do.
 */
async function snmp(ns: Netns, group: string, field: string): Promise<number> {
  const r = await ns.run('cat', ['/proc/net/snmp']);
  const rows = r.stdout.split('\n').filter((l) => l.startsWith(`${group}:`));
  const names = rows[0]?.split(/\s+/) ?? [];
  const values = rows[1]?.split(/\s+/) ?? [];
  const i = names.indexOf(field);
  if (i < 0) throw new Error(`no ${group} ${field} in /proc/net/snmp`);
  return Number(values[i]);
}

const netnsList = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });

/** Whether process `pid` has ended (gone, or a zombie waiting for a reaper) within `ms`. */
async function goneWithin(pid: number, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  for (;;) {
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return true;
    }
    if (/\) Z /.test(stat)) return true;
    if (performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  lines: Record<string, unknown>[];
  stderr: string;
  ms: number;
}

/**
 * Run test/fixtures/tun-child.ts under `wrapper` (e.g. unshare, setpriv). `onLine` sees each
 * JSON line as it comes and may return a signal to send to the child.
 */
function runChild(
  wrapper: string[],
  mode: string,
  ns: string,
  onLine?: (o: Record<string, unknown>) => NodeJS.Signals | undefined,
  timeoutMs = 20_000,
): Promise<ChildResult> {
  const fixture = path.join(here, 'fixtures', 'tun-child.ts');
  const argv = [...wrapper, process.execPath, '--import', 'tsx', fixture, mode, ns];
  const t0 = performance.now();
  const child = spawn(argv[0]!, argv.slice(1), { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    const lines: Record<string, unknown>[] = [];
    let buf = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const o = JSON.parse(line) as Record<string, unknown>;
        lines.push(o);
        const sig = onLine?.(o);
        if (sig) child.kill(sig);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, lines, stderr, ms: performance.now() - t0 });
    });
  });
}

// Whatever happens in the tests, no namespace of ours outlives this file.
afterAll(() => {
  for (const n of [NS, UP_NS, ...CHILD_NS]) netnsDown(n);
});

describe('TunLink in a namespace, against the kernel', () => {
  let ns: Netns | undefined;

  beforeAll(() => {
    requireRoot();
    ns = Netns.create({ name: NS, device: DEV, mtu: 1400 });
  });

  afterAll(async () => {
    await ns?.close();
  });

  it('refuses to make a namespace this process already has open', () => {
    expect(() => Netns.create({ name: NS, device: 'swlt9' })).toThrow(
      expect.objectContaining({ code: 'ERR_NETNS_IN_USE' }),
    );
    expect(ns!.isOpen).toBe(true);
  });

  it('the namespace has the device with the kernel addresses; the root namespace does not', async () => {
    const addr = await ns!.run('ip', ['addr', 'show', 'dev', DEV]);
    expect(addr.code).toBe(0);
    expect(addr.stdout).toContain('inet 198.18.0.1/24');
    expect(addr.stdout).toContain('inet6 fd00:5757::1/64');
    expect(addr.stdout).toContain('mtu 1400');
    expect(addr.stdout).toMatch(/state (UP|UNKNOWN)/);
    expect(ns!.link.mtu).toBe(1400);
    expect(ns!.link.name).toBe(DEV);
    expect(execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })).not.toContain(DEV);
    const routes = await ns!.run('ip', ['route', 'get', '198.18.0.2']);
    expect(routes.stdout).toContain(`dev ${DEV}`);
    const routes6 = await ns!.run('ip', ['-6', 'route', 'get', 'fd00:5757::2']);
    expect(routes6.stdout).toContain(`dev ${DEV}`);
  });

  it('reads the kernel ICMP echo requests and our hand-made replies make ping succeed', async () => {
    const seen = answerPings(ns!.link);
    const r = await ns!.run('ping', ['-c', '3', '-W', '1', '-i', '0.2', '198.18.0.2'], { timeoutMs: 15_000 });
    expect(r.stdout).toMatch(/3 packets transmitted, 3 received/);
    expect(r.code).toBe(0);
    expect(seen).toHaveLength(3);
    for (const p of seen) {
      expect(ipv4Of(p, 12)).toBe('198.18.0.1');
      expect(ipv4Of(p, 16)).toBe('198.18.0.2');
      expect(internetChecksum(p.subarray(0, 20))).toBe(0);
    }
    expect(ns!.link.counters.get('tx')).toBeGreaterThanOrEqual(3);
    expect(ns!.link.counters.get('rx')).toBeGreaterThanOrEqual(3);
    expect(await snmp(ns!, 'Icmp', 'InCsumErrors')).toBe(0);
    expect(await snmp(ns!, 'Ip', 'InHdrErrors')).toBe(0);
  });

  it('IPv6: the nodad address answers at once, ping -6 succeeds with our replies', async () => {
    const seen = answerPings(ns!.link);
    const r = await ns!.run('ping', ['-6', '-c', '2', '-W', '1', '-i', '0.2', 'fd00:5757::2'], {
      timeoutMs: 15_000,
    });
    expect(r.stdout).toMatch(/2 packets transmitted, 2 received/);
    expect(seen).toHaveLength(2);
  });

  it('recordLink on a TunLink: tshark sees the kernel requests and our replies, checksums good', async () => {
    const file = path.join(os.tmpdir(), `sw-link-tun-${process.pid}.pcap`);
    const clock = new RealClock();
    const writer = PcapWriter.toFile(file, { epochMs: Date.now() });
    try {
      answerPings(recordLink(ns!.link, writer, clock));
      const r = await ns!.run('ping', ['-c', '2', '-W', '1', '-i', '0.2', '198.18.0.2'], {
        timeoutMs: 15_000,
      });
      expect(r.code).toBe(0);
      writer.close();
      const out = execFileSync(
        '/usr/bin/tshark',
        [
          '-r',
          file,
          '-o',
          'ip.check_checksum:TRUE',
          '-Y',
          'icmp',
          '-T',
          'fields',
          '-E',
          'separator=|',
          '-e',
          'ip.src',
          '-e',
          'ip.dst',
          '-e',
          'icmp.type',
          '-e',
          'ip.checksum.status',
          '-e',
          'icmp.checksum.status',
          '-e',
          'icmp.resp_to',
        ],
        { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      expect(out.trim().split('\n')).toEqual([
        '198.18.0.1|198.18.0.2|8|1|1|',
        '198.18.0.2|198.18.0.1|0|1|1|1',
        '198.18.0.1|198.18.0.2|8|1|1|',
        '198.18.0.2|198.18.0.1|0|1|1|3',
      ]);
    } finally {
      writer.close();
      fs.rmSync(file, { force: true });
    }
  });

  it('the kernel drops a reply with a bad IPv4 header checksum: ping sees no answer', async () => {
    ns!.link.onPacket((p) => {
      if (!isEchoRequestV4(p)) return;
      const bad = echoReplyV4(p);
      bad[11]! ^= 0x01;
      ns!.link.send(bad);
    });
    const before = await snmp(ns!, 'Ip', 'InHdrErrors');
    const r = await ns!.run('ping', ['-c', '1', '-W', '1', '198.18.0.2'], { timeoutMs: 15_000 });
    expect(r.stdout).toMatch(/1 packets transmitted, 0 received/);
    expect(r.code).not.toBe(0);
    expect(await snmp(ns!, 'Ip', 'InHdrErrors')).toBe(before + 1);
  });

  it('the kernel counts a reply with a bad ICMP checksum as an error', async () => {
    ns!.link.onPacket((p) => {
      if (!isEchoRequestV4(p)) return;
      const bad = echoReplyV4(p);
      bad[23]! ^= 0x10;
      ns!.link.send(bad);
    });
    const before = await snmp(ns!, 'Icmp', 'InCsumErrors');
    await ns!.run('ping', ['-c', '1', '-W', '1', '198.18.0.2'], { timeoutMs: 15_000 });
    expect(await snmp(ns!, 'Icmp', 'InCsumErrors')).toBe(before + 1);
  });

  it('impair() works around a TunLink: 80 ms of delay shows in the round trip time', async () => {
    const slow = impair(ns!.link, { delay: 80 }, new RealClock());
    answerPings(slow);
    const r = await ns!.run('ping', ['-c', '2', '-W', '2', '-i', '0.2', '198.18.0.2'], { timeoutMs: 15_000 });
    expect(r.stdout).toMatch(/2 received/);
    const rtt = /= ([\d.]+)\/([\d.]+)\/([\d.]+)/.exec(r.stdout);
    // RealClock timers ride on Node's integer-millisecond, loop-cached timers and may fire a
    // millisecond or two early; without the delay the round trip is ~0.05 ms.
    expect(Number(rtt?.[1])).toBeGreaterThanOrEqual(75);
  });

  it('sends larger than the MTU are dropped and counted, and bad packets the kernel refuses are counted', () => {
    const before = ns!.link.counters.get('tx');
    ns!.link.send(new Uint8Array(1401));
    expect(ns!.link.counters.get('drop.mtu')).toBe(1);
    ns!.link.send(new Uint8Array([0x00, 0x01, 0x02])); // version 0: TUN refuses (EINVAL)
    expect(ns!.link.counters.total('drop.write')).toBe(1);
    expect(ns!.link.counters.get('tx')).toBe(before);
  });

  it('close() ends the read loop, the device goes with the fd, then the namespace', async () => {
    const link = ns!.link;
    link.close();
    // The loop's end is the event awaited; how fast it comes is a benchmark's question.
    await link.closed;
    expect(link.error).toBeUndefined();
    link.send(new Uint8Array(20));
    expect(link.counters.get('drop.closed')).toBe(1);
    const show = await ns!.run('ip', ['link', 'show', DEV]);
    expect(show.code).not.toBe(0);
    expect(show.stderr).toMatch(/does not exist/);
    await ns!.close();
    await ns!.close(); // idempotent
    expect(netnsExists(NS)).toBe(false);
    expect(netnsList()).not.toContain(NS);
  });
});

describe('setup errors are one line with a code', () => {
  beforeAll(requireRoot);

  it('a missing namespace', () => {
    const e = (() => {
      try {
        TunLink.open({ name: 'swnone0', netns: 'sw-link-test-none' });
      } catch (err) {
        return err;
      }
    })() as LinkSetupError;
    expect(e).toBeInstanceOf(LinkSetupError);
    expect(e.code).toBe('ERR_NETNS_MISSING');
    expect(e.stack).toBe(`LinkSetupError [ERR_NETNS_MISSING]: ${e.message}`);
    expect(e.stack).not.toContain('\n');
  });

  it('bad names', () => {
    expect(() => TunLink.open({ name: 'a-name-longer-than-15' })).toThrow(
      expect.objectContaining({ code: 'ERR_TUN_BAD_NAME' }),
    );
    expect(() => TunLink.open({ name: 'x', netns: '../etc' })).toThrow(
      expect.objectContaining({ code: 'ERR_NETNS_BAD_NAME' }),
    );
  });

  it('EPERM: without capabilities TUNSETIFF is refused (run in a throwaway net namespace)', async () => {
    const r = await runChild(
      ['unshare', '--net', 'setpriv', '--bounding-set=-all', '--inh-caps=-all', '--ambient-caps=-all'],
      'open-tun',
      '',
    );
    expect(r.lines, r.stderr).toHaveLength(1);
    expect(r.lines[0]).toMatchObject({ code: 'ERR_TUN_PERMISSION', errno: 'EPERM' });
    expect(String(r.lines[0]!.stack)).not.toContain('\n');
  });

  it('/dev/net/tun missing (hidden under a tmpfs in a private mount namespace)', async () => {
    const r = await runChild(
      ['unshare', '--mount', '--net', 'sh', '-c', 'mount -t tmpfs none /dev/net && exec "$@"', 'sh'],
      'open-tun',
      '',
    );
    expect(r.lines, r.stderr).toHaveLength(1);
    expect(r.lines[0]).toMatchObject({ code: 'ERR_TUN_MISSING', errno: 'ENOENT' });
    expect(String(r.lines[0]!.message)).toContain('/dev/net/tun');
  });

  it('not Linux', async () => {
    const r = await runChild([], 'not-linux', '');
    expect(r.lines[0], r.stderr).toMatchObject({ code: 'ERR_TUN_NOT_LINUX' });
  });
});

describe('namespaces are removed however the process ends', () => {
  beforeAll(requireRoot);

  it('after close() the process exits by itself, promptly, and leaves nothing', async () => {
    const name = CHILD_NS[0]!;
    const r = await runChild([], 'close-and-exit', name);
    expect(r.lines, r.stderr).toEqual([expect.objectContaining({ closed: true })]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(netnsExists(name)).toBe(false);
  });

  it('a closed link lets the process exit; the exit handler removes the namespace', async () => {
    const name = CHILD_NS[1]!;
    const r = await runChild([], 'link-close-only', name);
    expect(r.code).toBe(0);
    expect(r.lines).toHaveLength(1);
    expect(netnsExists(name)).toBe(false);
  });

  it('process.exit() without close', async () => {
    const name = CHILD_NS[2]!;
    const r = await runChild([], 'exit-without-close', name);
    expect(r.code).toBe(3);
    expect(netnsExists(name)).toBe(false);
  });

  for (const [i, signal] of (['SIGTERM', 'SIGINT'] as const).entries()) {
    it(`${signal}: cleans up, kills the programs it started there, and dies of the signal`, async () => {
      const name = CHILD_NS[3 + i]!;
      const r = await runChild([], 'wait-for-signal', name, (o) => {
        if (o.ready) {
          expect(netnsExists(name)).toBe(true);
          return signal;
        }
        return undefined;
      });
      expect(r.signal).toBe(signal);
      expect(netnsExists(name)).toBe(false);
      const sleeper = Number(r.lines[0]?.sleeper);
      expect(sleeper).toBeGreaterThan(0);
      expect(await goneWithin(sleeper, 2000)).toBe(true);
    });
  }

  it('a namespace left over with the same name is replaced', async () => {
    const name = CHILD_NS[0]!;
    execFileSync('ip', ['netns', 'add', name]);
    execFileSync('ip', ['-n', name, 'tuntap', 'add', 'dev', 'leftover0', 'mode', 'tun']);
    const ns = Netns.create({ name, device: 'swlt1' });
    try {
      const links = await ns.run('ip', ['-o', 'link']);
      expect(links.stdout).not.toContain('leftover0');
      expect(links.stdout).toContain('swlt1');
    } finally {
      await ns.close();
    }
    expect(netnsExists(name)).toBe(false);
  });
});

describe('netnsUp / netnsDown (for `stepwire netns up|down`)', () => {
  beforeAll(requireRoot);

  it('makes a namespace with a persistent TUN device that a TunLink can attach to, then removes it', async () => {
    const info = netnsUp(UP_NS, { device: 'swup0' });
    expect(info).toMatchObject({
      name: UP_NS,
      device: 'swup0',
      ours: { v4: '198.18.0.2', v6: 'fd00:5757::2' },
    });
    expect(netnsExists(UP_NS)).toBe(true);
    const link = TunLink.open({ netns: UP_NS, name: 'swup0' });
    try {
      const seen = answerPings(link);
      const ping = spawn(
        'ip',
        ['netns', 'exec', UP_NS, 'ping', '-c', '2', '-W', '1', '-i', '0.2', '198.18.0.2'],
        {
          stdio: ['ignore', 'pipe', 'ignore'],
        },
      );
      let out = '';
      ping.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
      });
      const killer = setTimeout(() => ping.kill('SIGKILL'), 15_000);
      const code = await new Promise((r) => ping.once('close', r));
      clearTimeout(killer);
      expect(out).toMatch(/2 received/);
      expect(code).toBe(0);
      expect(seen).toHaveLength(2);
    } finally {
      link.close();
      await link.closed;
    }
    // Persistent: the device outlives our fd.
    expect(execFileSync('ip', ['-n', UP_NS, '-o', 'link'], { encoding: 'utf8' })).toContain('swup0');
    expect(netnsDown(UP_NS)).toBe(true);
    expect(netnsDown(UP_NS)).toBe(false);
    expect(netnsExists(UP_NS)).toBe(false);
  });
});
