import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const scratch = mkdtempSync(join(tmpdir(), 'stepwire-pack-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const run = (cmd: string, args: string[], cwd: string) =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });

/**
 * Issue 11: the packages work outside the workspace. Build them, pack them, install the
 * tarballs into a scratch project (no workspace, no tsx), and run an example with plain node.
 */
describe('packed packages outside the workspace', () => {
  it('install from their tarballs and run the UDP example and the CLI with plain node', () => {
    run(process.execPath, [join(root, 'node_modules/tsx/dist/cli.mjs'), 'scripts/build.ts'], root);
    const packs = join(scratch, 'packs');
    run('pnpm', ['-r', '--filter', './packages/*', 'pack', '--pack-destination', packs], root);
    const tarballs = readdirSync(packs).filter((f) => f.endsWith('.tgz'));
    expect(tarballs.length).toBe(readdirSync(join(root, 'packages')).length);

    // Every @stepwire dependency comes from these tarballs, never from a registry.
    const deps: Record<string, string> = {};
    for (const t of tarballs) {
      const name = `@stepwire/${/^stepwire-(.+)-\d+\.\d+\.\d+\.tgz$/.exec(t)![1]}`;
      deps[name] = `file:${join(packs, t)}`;
    }
    const app = join(scratch, 'app');
    execFileSync('mkdir', ['-p', app]);
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({ name: 'scratch', private: true, type: 'module', dependencies: deps, overrides: deps }),
    );
    run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], app);
    const installed = JSON.parse(
      readFileSync(join(app, 'node_modules/@stepwire/tcp/package.json'), 'utf8'),
    ) as { exports: Record<string, { default: string }> };
    expect(installed.exports['.']!.default).toBe('./dist/index.js');

    // The example as a user copies it, with its types stripped (plain node runs JavaScript).
    const esbuild = createRequire(createRequire(import.meta.url).resolve('tsx'))('esbuild') as {
      transformSync(code: string, o: object): { code: string };
    };
    const source = readFileSync(join(root, 'examples/udp-exchange.ts'), 'utf8');
    writeFileSync(
      join(app, 'udp-exchange.mjs'),
      esbuild.transformSync(source, { loader: 'ts', format: 'esm' }).code,
    );
    const out = run(process.execPath, ['udp-exchange.mjs'], app);
    expect(out).toContain("a got back 'hello, b' at t=20 ms");

    const help = run(process.execPath, [join(app, 'node_modules/.bin/stepwire'), '--help'], app);
    expect(help).toMatch(/demo/);
    expect(help).toMatch(/serve/);
  }, 300_000);
});
