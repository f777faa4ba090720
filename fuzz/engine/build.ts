/**
 * Builds one fuzz target into a single instrumented CommonJS file that runs as a worker.
 *
 * Why a bundle: Jazzer.js instruments code through a require hook (CommonJS) or an ESM loader
 * for plain JavaScript; our sources are TypeScript ESM with `.ts` import specifiers, run by
 * tsx. esbuild (shipped with tsx) resolves and strips the types, and each of our source files
 * (packages/<pkg>/src/**) goes through Jazzer.js's own coverage visitor (the babel plugin in
 * @jazzer.js/instrumentor) on the way in, so every branch point of our code bumps an edge
 * counter. Third-party code (noble, fast-check) is bundled as is: its coverage is not ours.
 *
 * Why not the libFuzzer engine: the prebuilt native addon of @jazzer.js/fuzzer 4.0 needs
 * glibc 2.38 and these machines have 2.36 (ERR_DLOPEN_FAILED), and building it needs
 * LLVM's libFuzzer sources from the network. So the engine around the instrumented code is
 * ours (engine/worker.ts): AFL-style edge buckets as feedback, libFuzzer-style mutations and
 * a dictionary of the constants our decoders compare against, collected at build time.
 */
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const FUZZ_DIR = resolve(here, '..');
export const ROOT = resolve(FUZZ_DIR, '..');

// Resolve the tools from where the workspace installed them: esbuild next to tsx, babel and
// the Jazzer.js instrumentor next to @jazzer.js/core (neither is a direct dependency).
const rootRequire = createRequire(join(ROOT, 'package.json'));
/** The parts of esbuild's and babel's APIs used here (neither ships types we can reach from the root). */
interface EsbuildPlugin {
  name: string;
  setup(b: {
    onLoad(
      o: { filter: RegExp },
      f: (a: { path: string }) => Promise<{ contents: string; loader: 'js' }>,
    ): void;
  }): void;
}
interface Esbuild {
  transform(code: string, o: object): Promise<{ code: string }>;
  build(o: Record<string, unknown> & { plugins?: EsbuildPlugin[] }): Promise<unknown>;
}
interface BabelTypes {
  updateExpression(op: '++', arg: unknown): unknown;
  memberExpression(o: unknown, p: unknown, computed: boolean): unknown;
  identifier(n: string): unknown;
  numericLiteral(v: number): unknown;
}
interface Babel {
  types: BabelTypes;
  transformSync(code: string, o: object): { code?: string | null } | null;
}
const esbuild: Esbuild = createRequire(rootRequire.resolve('tsx/package.json'))('esbuild');
const coreRequire = createRequire(rootRequire.resolve('@jazzer.js/core'));
const instrumentorRequire = createRequire(coreRequire.resolve('@jazzer.js/instrumentor'));
const babel: Babel = instrumentorRequire('@babel/core');
const { makeCoverageVisitor } = instrumentorRequire(
  join(dirname(coreRequire.resolve('@jazzer.js/instrumentor')), 'plugins', 'coverageVisitor.js'),
) as { makeCoverageVisitor: (expr: () => unknown) => object };

/** Edge counters available to a bundle (Uint8Array in the worker's global scope). */
export const MAX_EDGES = 1 << 18;

export interface BuiltTarget {
  name: string;
  file: string;
  /** Edges instrumented in this bundle (the sum of `ranges`). */
  edges: number;
  /** The counter ids of this bundle's modules, [start, end) each (ids are unique per process). */
  ranges: [number, number][];
  /** Constants our decoders compare against (u8/u16/u32 big-endian and short strings). */
  dictionary: Uint8Array[];
}

/**
 * Instrumented modules are cached per process (by path and mtime): targets share most of
 * their modules (tls-client and tls-server, ipv4 and ipv4-quoted), and babel is the slow
 * part of a build. So edge ids are handed out per process, and each bundle lists its ranges.
 */
interface InstrumentedModule {
  mtimeMs: number;
  code: string;
  range: [number, number];
  words: Uint8Array[];
}
const moduleCache = new Map<string, InstrumentedModule>();
let nextEdge = 0;

const OUR_SOURCE = /[\\/]packages[\\/][^\\/]+[\\/]src[\\/].*\.ts$/;

export interface BuildOptions {
  /** The module exporting `fuzz` (default fuzz/targets/<name>.ts). */
  entry?: string;
  /** Files to instrument (default: our packages' sources). */
  instrument?: RegExp;
}

export async function buildTarget(
  name: string,
  outDir = join(tmpdir(), `stepwire-fuzz-${process.pid}`),
  opts: BuildOptions = {},
): Promise<BuiltTarget> {
  mkdirSync(outDir, { recursive: true });
  const t = babel.types;
  const counter = () =>
    t.updateExpression('++', t.memberExpression(t.identifier('__swcov'), t.numericLiteral(nextEdge++), true));
  const instrumentModule = async (path: string): Promise<InstrumentedModule> => {
    const mtimeMs = statSync(path).mtimeMs;
    const cached = moduleCache.get(path);
    if (cached && cached.mtimeMs === mtimeMs) return cached;
    const words: Uint8Array[] = [];
    const collect = () => ({
      visitor: {
        NumericLiteral(p: { node: { value: number } }) {
          const v = p.node.value;
          if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) return;
          if (v > 0xff && v <= 0xffff) words.push(Uint8Array.of(v >> 8, v & 0xff));
          else if (v > 0xffff)
            words.push(Uint8Array.of(v >>> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff));
          else words.push(Uint8Array.of(v));
        },
        StringLiteral(p: { node: { value: string } }) {
          const v = p.node.value;
          if (v.length >= 2 && v.length <= 32 && /^[\x20-\x7e\r\n]+$/.test(v))
            words.push(new TextEncoder().encode(v));
        },
      },
    });
    const ts = readFileSync(path, 'utf8');
    const js = await esbuild.transform(ts, {
      loader: 'ts',
      format: 'esm',
      target: 'node20',
      sourcefile: path,
    });
    const start = nextEdge;
    const out = babel.transformSync(js.code, {
      filename: path,
      babelrc: false,
      configFile: false,
      sourceType: 'module',
      plugins: [collect, () => ({ visitor: makeCoverageVisitor(counter) })],
    });
    const m: InstrumentedModule = { mtimeMs, code: out?.code ?? js.code, range: [start, nextEdge], words };
    moduleCache.set(path, m);
    return m;
  };
  const ranges: [number, number][] = [];
  const seen = new Set<string>();
  const dictionary: Uint8Array[] = [];
  const instrument: EsbuildPlugin = {
    name: 'stepwire-jazzer-coverage',
    setup(b) {
      b.onLoad({ filter: opts.instrument ?? OUR_SOURCE }, async (args) => {
        const m = await instrumentModule(args.path);
        ranges.push(m.range);
        for (const w of m.words) {
          const k = Buffer.from(w).toString('hex');
          if (seen.has(k) || dictionary.length >= 4096) continue;
          seen.add(k);
          dictionary.push(w);
        }
        return { contents: m.code, loader: 'js' };
      });
    },
  };
  const file = join(outDir, `${name}.cjs`);
  await esbuild.build({
    stdin: {
      contents: `import * as target from ${JSON.stringify(opts.entry ?? `./targets/${name}.ts`)};\nimport { workerMain } from './engine/worker.ts';\nworkerMain(target);\n`,
      resolveDir: FUZZ_DIR,
      sourcefile: `fuzz-${name}-entry.ts`,
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outfile: file,
    banner: { js: `var __swcov = new Uint8Array(${MAX_EDGES});` },
    plugins: [instrument],
    logLevel: 'error',
  });
  if (nextEdge > MAX_EDGES) throw new Error(`${name}: edge ids reached ${nextEdge}, more than ${MAX_EDGES}`);
  ranges.sort((x, y) => x[0] - y[0]);
  const edges = ranges.reduce((n, [lo, hi]) => n + hi - lo, 0);
  return { name, file, edges, ranges, dictionary };
}
