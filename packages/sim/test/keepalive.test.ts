import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../../..');
const script = join(import.meta.dirname, 'fixtures/real-clock.ts');
const run = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 90_000,
  });

describe('a network on the real clock', () => {
  it('keeps the process alive until the exchange is over, then lets it exit 0', () => {
    const r = run();
    expect(r.stderr).toBe('');
    expect(r.signal).toBeNull(); // it ended by itself, not by the timeout's SIGTERM
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('got: hello over a real clock\n');
  }, 150_000);

  it('without the keep-alive, Node exits at once with 13 (the problem it solves)', () => {
    const r = run('no-keepalive');
    expect(r.status).toBe(13);
    expect(r.stdout).toBe('');
  }, 150_000);
});
