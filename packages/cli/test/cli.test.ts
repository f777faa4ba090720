import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodePcap } from '@stepwire/link';
import { SCENARIOS } from '@stepwire/sim';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/commands/index.ts';
import { STEP_PROMPT } from '../src/commands/step.ts';

const bin = join(import.meta.dirname, '../bin/stepwire.js');
const runWith = (env: Record<string, string>, ...args: string[]) =>
  spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, SSLKEYLOGFILE: '', ...env },
  });
/** The real binary, for what only a process shows: exit status, output streams. */
const spawnRun = (...args: string[]) => runWith({}, ...args);

/** The same program in this process (fast): status, stdout and stderr as strings. */
async function run(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const status = await runCli(args, { out: (t) => (stdout += t), err: (t) => (stderr += t) });
  return { status, stdout, stderr };
}
const dir = mkdtempSync(join(tmpdir(), 'sw-cli-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the stepwire command', () => {
  it('runs the demo: every step succeeds on a clean wire', async () => {
    const r = await run('demo', '--seed', '5');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/A→B +IPv4 198\.18\.0\.1→198\.18\.0\.2 ICMP echo id=\d+ seq=1/);
    expect(r.stdout).toMatch(/B→A +IPv6 fd00:5757::2→fd00:5757::1 ICMPv6 echo/);
    expect(r.stdout).toMatch(/UDP \d+→7 len=15/);
    expect(r.stdout).toMatch(/frag id=\d+ off=1480 MF/);
    expect(r.stdout).toMatch(/TCP \d+→80 SYN seq=\d+ win=65535 mss=1460/);
    expect(r.stdout).toMatch(/tcp SYN-SENT → ESTABLISHED/);
    expect(r.stdout).toMatch(/✓ HTTP 200: Hello from stepwire/);
    expect(r.stdout).toMatch(/tcp LAST-ACK → CLOSED/);
    expect(r.stdout).toMatch(/tls → ClientHello .*sni=stepwire\.test/);
    expect(r.stdout).toMatch(/tls WAIT_FINISHED → CONNECTED/);
    expect(r.stdout).toMatch(/✓ HTTPS 200 over TLS 1\.3/);
    expect(r.stdout).not.toMatch(/✗/);
  });

  it('is deterministic for a seed, also with loss', async () => {
    const a = await run('demo', '--seed', '9', '--loss', '0.2');
    const b = await run('demo', '--seed', '9', '--loss', '0.2');
    expect(a.status).toBe(0);
    expect(a.stdout).toBe(b.stdout);
  });

  it('has --help for every command', async () => {
    for (const args of [['--help'], ['demo', '--help']]) {
      const r = await run(...args);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/Usage: stepwire/);
    }
  });

  it('rejects bad arguments with a one-line error and no stack trace', async () => {
    for (const args of [
      ['demo', '--mtu', '10'],
      ['demo', '--loss', 'x'],
      ['nonsense'],
      ['demo', '--seed', '-1'],
    ]) {
      const r = await run(...args);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/^error: /);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('prints its version with --version and -V', async () => {
    const version = JSON.parse(readFileSync(join(import.meta.dirname, '../package.json'), 'utf8')).version;
    for (const flag of ['--version', '-V']) {
      const r = flag === '--version' ? spawnRun(flag) : await run(flag);
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(`${version}\n`);
    }
  });

  it('prints its help and exits 0 when run bare', async () => {
    const r = spawnRun();
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: stepwire \[options\] \[command\]/);
    for (const c of ['demo', 'serve', 'ping', 'netns']) expect(r.stdout).toMatch(new RegExp(`\\n  ${c} `));
    expect(r.stderr).toBe('');
  });

  it('exits 2 on every usage error, naming the help to read', async () => {
    const cases: [string[], RegExp][] = [
      [['demo', '--mtu', '10'], /^error: .*\n\(run 'stepwire demo --help' for usage\)\n$/],
      [['nonsense'], /^error: unknown command 'nonsense'\n\(run 'stepwire --help' for usage\)\n$/],
      [['netns', 'sideways'], /\(run 'stepwire netns --help' for usage\)\n$/],
      [['netns'], /missing required argument 'action'/],
      [['ping', '198.18.0.1'], /^stepwire: only TUN mode .*\n\(run 'stepwire ping --help' for usage\)\n$/],
      [['serve'], /^stepwire: only TUN mode .*\n\(run 'stepwire serve --help' for usage\)\n$/],
      [['demo', 'no-such-scenario'], /^stepwire: no scenario 'no-such-scenario'.*tcp-handshake/],
      [['demo', '--list', 'tls-full'], /--list takes no scenario/],
    ];
    for (const [args, stderr] of cases) {
      // The first through the real binary (its exit status), the rest in this process.
      const r = args === cases[0]?.[0] ? spawnRun(...args) : await run(...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(stderr);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it("says in each command's help what it does; demo's lists its steps and scenarios", async () => {
    const demo = await run('demo', '--help');
    expect(demo.status).toBe(0);
    expect(demo.stdout).toMatch(
      /1\. ping A→B over IPv4[\s\S]*2\. a UDP echo[\s\S]*3\. a 4000-byte[\s\S]*4\. TCP[\s\S]*5\. TLS 1\.3/,
    );
    for (const s of SCENARIOS) expect(demo.stdout).toContain(`  ${s.name}  `);
    expect((await run('serve', '--help')).stdout).toMatch(/tcp 443 HTTPS[\s\S]*Examples:/);
    expect((await run('ping', '--help')).stdout).toMatch(/prints each reply like ping\(8\)[\s\S]*Examples:/);
    expect((await run('netns', '--help')).stdout).toMatch(/persistent TUN device[\s\S]*Examples:/);
  });

  it('lists the scenarios with what to watch in each', async () => {
    const r = await run('demo', '--list');
    expect(r.status).toBe(0);
    for (const s of SCENARIOS) {
      expect(r.stdout).toContain(`${s.name}: ${s.title}\n`);
      for (const w of s.watch) expect(r.stdout).toContain(`    ${w}\n`);
    }
  });

  it('runs a scenario: what to watch, then its ladder, and writes it as a mermaid diagram', async () => {
    const file = join(dir, 'handshake.mmd');
    const r = await run('demo', 'tcp-handshake', '--seed', '4', '--mermaid', file);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^tcp-handshake: TCP three-way handshake/);
    expect(r.stdout).toMatch(/What to watch:\n {2}• A's SYN offers its options/);
    expect(r.stdout).toMatch(/A→B +IPv4 198\.18\.0\.1→198\.18\.0\.2 TCP \d+→7 SYN /);
    expect(r.stdout).toMatch(/A +✓ echoed 'hello, B'/);
    const mmd = readFileSync(file, 'utf8');
    expect(mmd).toMatch(/^sequenceDiagram\n {2}title TCP three-way handshake/);
    expect(mmd).toMatch(/participant p\d as A\n/);
    // One arrow per packet of the ladder, in the same order.
    const packets = r.stdout.split('\n').filter((l) => /^ +\d+\.\d{3} +[AB]→[AB] /.test(l));
    const arrows = mmd.split('\n').filter((l) => /->>/.test(l));
    expect(arrows).toHaveLength(packets.length);
    expect(arrows[0]).toMatch(/^ {2}p\d->>p\d: 0\.000 IPv4 .* SYN /);
    expect(mmd).toMatch(/Note over p\d: [\d.]+ tcp SYN-SENT → ESTABLISHED/);
  });

  it("honours SSLKEYLOGFILE (appending, like curl) and dates the pcap on the simulation's calendar", async () => {
    const keylog = join(dir, 'sslkeylog.txt');
    const pcap = join(dir, 'tls.pcap');
    writeFileSync(keylog, '# earlier lines stay\n');
    const before = process.env.SSLKEYLOGFILE;
    process.env.SSLKEYLOGFILE = keylog;
    const r = await run('demo', 'tls-full', '--pcap', pcap).finally(() => {
      if (before === undefined) delete process.env.SSLKEYLOGFILE;
      else process.env.SSLKEYLOGFILE = before;
    });
    expect(r.status, r.stderr).toBe(0);
    const lines = readFileSync(keylog, 'utf8').split('\n');
    expect(lines[0]).toBe('# earlier lines stay');
    for (const label of [
      'CLIENT_HANDSHAKE_TRAFFIC_SECRET',
      'SERVER_HANDSHAKE_TRAFFIC_SECRET',
      'CLIENT_TRAFFIC_SECRET_0',
    ]) {
      expect(lines.some((l) => new RegExp(`^${label} [0-9a-f]{64} [0-9a-f]{64}$`).test(l))).toBe(true);
    }
    expect(r.stdout).toContain(`TLS key log written to ${keylog}`);
    const records = decodePcap(new Uint8Array(readFileSync(pcap))).records;
    expect(records.length).toBeGreaterThan(10);
    // 2026-01-01T00:00:00Z plus simulated time, never 1970.
    expect(records[0]?.tsSec).toBe(Date.UTC(2026, 0, 1) / 1000);
  });

  describe('demo --step, driven through a pseudo-terminal', () => {
    // A pty answered from Python: each step prompt gets the next key, as a person would type it.
    const driver = join(dir, 'pty-drive.py');
    writeFileSync(
      driver,
      [
        'import os, pty, sys, time, select',
        "keys = sys.argv[1].split(',')",
        'pid, fd = pty.fork()',
        'if pid == 0:',
        '    os.execvp(sys.argv[2], sys.argv[2:])',
        "out, sent, prompt = b'', 0, b'c continue'",
        'deadline = time.time() + 150',
        'while time.time() < deadline:',
        '    r, _, _ = select.select([fd], [], [], 0.2)',
        '    if r:',
        '        try:',
        '            data = os.read(fd, 65536)',
        '        except OSError:',
        '            break',
        '        if not data:',
        '            break',
        '        out += data',
        '    if sent < len(keys) and out.count(prompt) > sent:',
        "        os.write(fd, b'\\n' if keys[sent] == 'enter' else keys[sent].encode())",
        '        sent += 1',
        '_, status = os.waitpid(pid, 0)',
        "sys.stdout.write(out.decode('utf8', 'replace').replace('\\r\\n', '\\n'))",
        "sys.stdout.write('\\nEXIT %d\\n' % (os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1))",
      ].join('\n'),
    );
    const stepThrough = (keys: string[], ...args: string[]) =>
      spawnSync(
        '/usr/bin/python3',
        [driver, keys.join(','), process.execPath, bin, 'demo', ...args, '--step'],
        {
          encoding: 'utf8',
          timeout: 180_000,
        },
      ).stdout;

    it('stops at each event; t runs to the next TCP event and shows the segment as a layer tree; k follows its connection; q quits', () => {
      const out = stepThrough(['enter', 't', 'k', 'q'], 'tcp-handshake');
      const stops = out.split(STEP_PROMPT);
      expect(stops).toHaveLength(5);
      expect(stops[0]).toMatch(
        /B +· tcp listen :::7 LISTEN.*\n +tcp event on B {2}\[RFC 9293 §3\.10\.1\]\n$/,
      );
      expect(stops[1]).toMatch(/^\n +0\.000 +A +· tcp CLOSED → SYN-SENT\n/);
      // t: on to the SYN, shown field by field with its bytes, meaning and RFC section.
      expect(stops[2]).toMatch(/\(continuing to the next TCP event\)\n +0\.000 +A→B +IPv4 .* SYN /);
      expect(stops[2]).toMatch(
        /Internet Protocol version 4, 198\.18\.0\.1 → 198\.18\.0\.2 {2}\[RFC 791 §3\.1\]/,
      );
      expect(stops[2]).toMatch(/\n +8 {2}40 +Time to Live: 64 hops left\n/);
      expect(stops[2]).toMatch(/Transmission Control Protocol, \d+ → 7, SYN {2}\[RFC 9293 §3\.1\]/);
      expect(stops[2]).toMatch(/\n +24 {2}(?:[0-9a-f]{2} ){4} +Sequence Number: \d+: the ISN/);
      expect(stops[2]).toMatch(/\n +40 {2}02 04 05 b4 +Option 2: MSS 1460: .*\(RFC 9293 §3\.7\.1\)/);
      expect(stops[2]).toMatch(/Option 4: SACK permitted \(RFC 2018 §2\)/);
      // k: past B's notes, straight to the next packet of this connection, the SYN,ACK.
      expect(stops[3]).toMatch(
        /^\n +\(continuing to the next packet of tcp 198\.18\.0\.1:\d+ 198\.18\.0\.2:7\)\n/,
      );
      expect(stops[3]).toMatch(
        /B +· tcp LISTEN → SYN-RECEIVED\n +0\.005 +B→A +IPv4 .* SYN,ACK .*\n +Internet Protocol/,
      );
      // q: nothing more happens, and the process ends cleanly.
      expect(stops[4]).toMatch(/^\nquit\n\nEXIT 0\n$/);
    }, 200_000);

    it('trace --step pauses at each packet of a capture with its layer tree; q quits', () => {
      const pcap = join(dir, 'step.pcap');
      const made = spawnSync(process.execPath, [bin, 'demo', 'tcp-handshake', '--pcap', pcap], {
        encoding: 'utf8',
      });
      expect(made.status, made.stderr).toBe(0);
      const out = spawnSync(
        '/usr/bin/python3',
        [driver, 'n,q', process.execPath, bin, 'trace', pcap, '--step'],
        {
          encoding: 'utf8',
          timeout: 60_000,
        },
      ).stdout;
      const stops = out.split(STEP_PROMPT);
      expect(stops).toHaveLength(3);
      expect(stops[0]).toMatch(/198\.18\.0\.1→198\.18\.0\.2 +IPv4 .* SYN .*\n +Internet Protocol version 4/);
      expect(stops[0]).toMatch(/Transmission Control Protocol, \d+ → 7, SYN {2}\[RFC 9293 §3\.1\]/);
      expect(stops[1]).toMatch(/198\.18\.0\.2→198\.18\.0\.1 +IPv4 .* SYN,ACK /);
      expect(stops[2]).toMatch(/^\nquit\n\nEXIT 0\n$/);
    }, 120_000);

    it('l runs on to the next TLS event, past the TCP segments in between', () => {
      const out = stepThrough(['l', 'q'], 'tls-full');
      const stops = out.split(STEP_PROMPT);
      expect(stops).toHaveLength(3);
      expect(stops[1]).toMatch(/\(continuing to the next TLS event\)\n/);
      // The SYN goes by without a stop (no tree), then the ClientHello stops with its RFC section.
      expect(stops[1]).toMatch(
        /A→B +IPv4 .* SYN .*\n +0\.000 +A +· tls → ClientHello .*\n +tls event on A {2}\[RFC 8446 §4\.1\.2\]\n$/,
      );
      expect(stops[1]).not.toMatch(/Transmission Control Protocol/);
      expect(stops[2]).toMatch(/quit\n\nEXIT 0\n$/);
    }, 200_000);
  });
});
