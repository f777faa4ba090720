/**
 * `stepwire serve --tun` as a person runs it, with its TCP services: after 'ready' the
 * kernel's curl gets / and /bytes/1000000 over both families, nc gets its echo back on
 * port 7 and discard takes bytes on port 9; SIGTERM ends it with exit 0 and the namespace
 * gone.
 *
 * Root only; fails (never skips) without it. Namespace 'sw-tcptun-serve-<pid>'; the child
 * is killed by PID and the namespace removed in afterAll, also when a test fails.
 *
 * Time limits are for a loaded machine (CI runs two files at once on two cores): there `serve`
 * took up to 26 s to print 'ready' (tsx loads the stack's TypeScript first), so every step waits
 * for its own signal ('ready', a client's exit) within a bound several times what it takes,
 * and the clients' own limits (curl --max-time, nc -w) sit inside the bound on their process.
 * Nothing is retried: a bound that runs out is a failure.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { netnsDown, netnsExists } from '@stepwire/link';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRootAndPrograms, waitForLine } from '../packages/cli/src/tun/kernel.ts';
import { patternSha256 } from './support/tcp-tun.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(root, 'packages/cli/bin/stepwire.js');
const NS = `sw-tcptun-serve-${process.pid}`;
let child: ChildProcess | undefined;
/** curl's --max-time and nc's -w, s: well past what a request takes on a loaded machine. */
const CLIENT_S = 30;

beforeAll(() => {
  requireRootAndPrograms(['ip', 'curl', 'nc', 'sha256sum']);
});

afterAll(() => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  netnsDown(NS);
});

/** A program in the namespace to completion, killed after timeoutMs. */
function inNs(cmd: string[], input?: string, timeoutMs = (CLIENT_S + 15) * 1000) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const c = spawn('ip', ['netns', 'exec', NS, ...cmd], { stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    c.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    c.stdin.end(input ?? '');
  });
}

describe('stepwire serve --tun with TCP services', () => {
  it('serves HTTP, echo and discard to the kernel; SIGTERM exits 0 and removes the namespace', async () => {
    child = spawn(process.execPath, [BIN, 'serve', '--tun', '--netns', NS], {
      cwd: root,
      // serve keeps its CA under $STEPWIRE_HOME: a temporary one, not the user's home.
      env: { ...process.env, STEPWIRE_HOME: mkdtempSync(path.join(tmpdir(), 'sw-home-')) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child!.once('close', (code, signal) => resolve({ code, signal })),
    );
    await waitForLine(child, /^ready$/, 120_000);
    const lines = stdout.split('\n');
    expect(lines).toContain('service tcp 7 echo, IPv4 and IPv6 (RFC 862)');
    expect(lines).toContain('service tcp 9 discard, IPv4 and IPv6 (RFC 863)');
    expect(lines.some((l) => l.startsWith('service tcp 80 HTTP/1.1'))).toBe(true);

    for (const host of ['198.18.0.2', '[fd00:5757::2]']) {
      const page = await inNs(['curl', '-sS', '--max-time', String(CLIENT_S), `http://${host}/`]);
      expect(page.code, page.stderr).toBe(0);
      expect(page.stdout).toMatch(/^Hello from stepwire/);
    }
    const bytes = await inNs([
      'bash',
      '-c',
      `set -o pipefail; curl -sS --max-time ${CLIENT_S} http://198.18.0.2/bytes/1000000 | sha256sum`,
    ]);
    expect(bytes.code, bytes.stderr).toBe(0);
    expect(bytes.stdout.split(' ')[0]).toBe(patternSha256(1_000_000));

    const echo = await inNs(['nc', '-N', '-w', String(CLIENT_S), '198.18.0.2', '7'], 'hello through serve\n');
    expect(echo.code, echo.stderr).toBe(0);
    expect(echo.stdout).toBe('hello through serve\n');
    const echo6 = await inNs(['nc', '-N', '-w', String(CLIENT_S), 'fd00:5757::2', '7'], 'and over IPv6\n');
    expect(echo6.stdout).toBe('and over IPv6\n');
    const discard = await inNs(['nc', '-N', '-w', String(CLIENT_S), '198.18.0.2', '9'], 'x'.repeat(100_000));
    expect(discard.code, discard.stderr).toBe(0);
    expect(discard.stdout).toBe('');

    child.kill('SIGTERM');
    const r = await done;
    expect(stderr).toBe('');
    expect(r).toEqual({ code: 0, signal: null });
    expect(stdout).toMatch(/stopped: \d+ packets in, \d+ out, \d+ dropped/);
    expect(netnsExists(NS)).toBe(false);
  }, 240_000);
});
