/**
 * Builds every package to JavaScript with type declarations, for use outside the workspace
 * (`pnpm pack`; see publishConfig in each package.json). Inside the workspace the packages
 * run from their TypeScript sources and need no build.
 *
 * One tsc program over packages/*\/src (so cross-package imports type-check as they do in
 * the workspace), emitted to build/, then each package's part moved to packages/<p>/dist.
 * Relative `.ts` specifiers become `.js` (rewriteRelativeImportExtensions; declarations are
 * rewritten here the same way); `@stepwire/*` specifiers stay, resolved by the installed
 * packages' exports. Source maps carry their sources, so a debugger steps through the
 * TypeScript of an installed package.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const build = join(root, 'build');
rmSync(build, { recursive: true, force: true });
execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', join(root, 'tsconfig.build.json')], {
  stdio: 'inherit',
  cwd: root,
});

function rewriteDeclarations(dir: string): void {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) rewriteDeclarations(p);
    else if (name.endsWith('.d.ts')) {
      const text = readFileSync(p, 'utf8');
      const fixed = text.replace(/(from\s+|import\()(['"])(\.\.?\/[^'"]+)\.ts\2/g, '$1$2$3.js$2');
      if (fixed !== text) writeFileSync(p, fixed);
    }
  }
}

const packages = readdirSync(join(root, 'packages')).filter((p) => existsSync(join(build, p, 'src')));
for (const p of packages) {
  const dist = join(root, 'packages', p, 'dist');
  rmSync(dist, { recursive: true, force: true });
  renameSync(join(build, p, 'src'), dist);
  rewriteDeclarations(dist);
}
rmSync(build, { recursive: true, force: true });
console.log(`built ${packages.length} packages: ${packages.join(', ')}`);
