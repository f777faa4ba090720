/** Runs the openssl command line in a temporary directory: the independent oracle for the pki tests. */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export class OpensslDir {
  readonly dir = mkdtempSync(join(tmpdir(), 'stepwire-pki-'));

  path(name: string): string {
    return join(this.dir, name);
  }
  /** Runs openssl with the arguments; throws with its stderr on failure. */
  run(...args: string[]): string {
    return execFileSync('openssl', args, {
      cwd: this.dir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }
  /** Runs openssl and returns status and output without throwing (for verdicts). */
  status(...args: string[]): { code: number; out: string } {
    const r = spawnSync('openssl', args, { cwd: this.dir, encoding: 'utf8' });
    return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
  }
  write(name: string, data: string | Uint8Array): string {
    writeFileSync(this.path(name), data);
    return this.path(name);
  }
  read(name: string): Buffer {
    return readFileSync(this.path(name));
  }
  readText(name: string): string {
    return readFileSync(this.path(name), 'utf8');
  }
  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
