import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const out = mkdtempSync(join(tmpdir(), 'stepwire-api-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

/** Issue 11: the API reference is generated from the doc comments, and it builds without errors. */
describe('API reference (typedoc)', () => {
  it('builds for every package with no errors, and documents the main entry points', async () => {
    const { stdout, stderr } = await promisify(execFile)(
      join(root, 'tools/apidoc/node_modules/.bin/typedoc'),
      ['--options', 'typedoc.json', '--out', out],
      { cwd: join(root, 'tools/apidoc'), timeout: 240_000, maxBuffer: 8 << 20 },
    );
    // typedoc exits non-zero on errors; warnings (links to Node's own types) are allowed.
    expect(`${stdout}${stderr}`).not.toMatch(/\[error\]/);
    expect(stdout).toMatch(/html generated/);
    for (const page of [
      'index.html',
      'classes/tcp_src.TcpConnection.html',
      'functions/sim_src.createNetwork.html',
    ]) {
      expect(existsSync(join(out, page)), page).toBe(true);
    }
    const tcp = readFileSync(join(out, 'classes/tcp_src.TcpConnection.html'), 'utf8');
    expect(tcp).toContain('nextTimeout');
  }, 300_000);
});
