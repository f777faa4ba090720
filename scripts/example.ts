/**
 * `pnpm example <name>` runs examples/<name>.ts (each a program a user copies); with no
 * name it lists them with the first line of their header comment.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = join(import.meta.dirname, '../examples');
const names = readdirSync(dir)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.slice(0, -3))
  .sort();
const summary = (name: string) => {
  const m = /\/\*\*\s*\n\s*\*\s*(.+)/.exec(readFileSync(join(dir, `${name}.ts`), 'utf8'));
  return m?.[1] ?? '';
};

const [name, ...rest] = process.argv.slice(2);
if (!name || name === '--help' || name === '--list') {
  console.log('usage: pnpm example <name> [args]\n\nexamples:');
  const width = Math.max(...names.map((n) => n.length));
  for (const n of names) console.log(`  ${n.padEnd(width)}  ${summary(n)}`);
  process.exit(0);
}
if (!names.includes(name)) {
  console.error(`pnpm example: no example '${name}' (have: ${names.join(', ')})`);
  process.exit(2);
}
const r = spawnSync(process.execPath, ['--import', 'tsx', join(dir, `${name}.ts`), ...rest], {
  stdio: 'inherit',
  cwd: join(import.meta.dirname, '..'),
});
process.exit(r.status ?? 1);
