import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const bin = join(import.meta.dirname, '../bin/stepwire.js');
const run = (...args: string[]) =>
  spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });

describe('the stepwire command', () => {
  it('runs the demo: every step succeeds on a clean wire', () => {
    const r = run('demo', '--seed', '5');
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

  it('is deterministic for a seed, also with loss', () => {
    const a = run('demo', '--seed', '9', '--loss', '0.2');
    const b = run('demo', '--seed', '9', '--loss', '0.2');
    expect(a.status).toBe(0);
    expect(a.stdout).toBe(b.stdout);
  });

  it('has --help for every command', () => {
    for (const args of [['--help'], ['demo', '--help']]) {
      const r = run(...args);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/Usage: stepwire/);
    }
  });

  it('rejects bad arguments with a one-line error and no stack trace', () => {
    for (const args of [
      ['demo', '--mtu', '10'],
      ['demo', '--loss', 'x'],
      ['nonsense'],
      ['demo', '--seed', '-1'],
    ]) {
      const r = run(...args);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/^error: /);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});
