/**
 * HPACK encode and decode, header blocks per second, against the `hpack.js` package in the
 * same run. Input: the hpack-test-case stories (raw-data for encoding; the nghttp2 encoder's
 * wires for decoding, so both decoders read the same bytes). Each pass runs every story on
 * a fresh encoder/decoder, as a new connection would.
 *
 *   pnpm exec tsx bench/hpack.bench.ts   (or through bench/run.ts)
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type HeaderField, HpackDecoder, HpackEncoder } from '../packages/http/src/hpack/index.ts';
import { type Benchmark, type BenchResult, rate, result } from './lib.ts';

const require = createRequire(join(fileURLToPath(import.meta.url), '../../packages/http/package.json'));
interface JsCompressor {
  write(h: { name: string; value: string }[]): void;
  read(): Buffer | null;
}
interface JsDecompressor {
  write(b: Buffer): void;
  execute(): void;
  read(): unknown;
}
const hpackjs = require('hpack.js') as {
  compressor: { create(o: { table: { size: number } }): JsCompressor };
  decompressor: { create(o: { table: { size: number } }): JsDecompressor };
};

const VECTORS = fileURLToPath(new URL('../../shared/vectors/hpack-test-case', import.meta.url));

interface Story {
  cases: { wire?: string; headers: Record<string, string>[] }[];
}
function load(dir: string): Story[] {
  const path = join(VECTORS, dir);
  return readdirSync(path)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(path, f), 'utf8')) as Story);
}

export const hpackBenchmarks: Benchmark[] = [
  {
    name: 'h2-hpack',
    async run(): Promise<BenchResult[]> {
      const raw: HeaderField[][][] = load('raw-data').map((s) =>
        s.cases.map((c) =>
          c.headers.map((o) => {
            const [name, value] = Object.entries(o)[0] ?? ['', ''];
            return { name, value };
          }),
        ),
      );
      const blocks = raw.reduce((n, s) => n + s.length, 0);
      const wires: Buffer[][] = load('nghttp2').map((s) =>
        s.cases.map((c) => Buffer.from(c.wire ?? '', 'hex')),
      );
      const wireBlocks = wires.reduce((n, s) => n + s.length, 0);
      let sink = 0;

      const encOurs = rate(
        () => {
          for (const story of raw) {
            const e = new HpackEncoder();
            for (const list of story) sink += e.encode(list).length;
          }
        },
        1500,
        blocks,
      );
      const encJs = rate(
        () => {
          for (const story of raw) {
            const c = hpackjs.compressor.create({ table: { size: 4096 } });
            for (const list of story) {
              c.write(list);
              sink += c.read()?.length ?? 0;
            }
          }
        },
        1500,
        blocks,
      );
      const decOurs = rate(
        () => {
          for (const story of wires) {
            const d = new HpackDecoder({ maxHeaderListSize: 1 << 20 });
            for (const w of story) sink += d.decode(w).length;
          }
        },
        1500,
        wireBlocks,
      );
      const decJs = rate(
        () => {
          for (const story of wires) {
            const d = hpackjs.decompressor.create({ table: { size: 4096 } });
            for (const w of story) {
              d.write(w);
              d.execute();
              while (d.read() !== null) sink++;
            }
          }
        },
        1500,
        wireBlocks,
      );
      if (sink === -1) console.log(sink);
      return [
        result('hpack encode (stories)', encOurs, 'blocks/s', 'hpack.js', encJs),
        result('hpack decode (nghttp2 wires)', decOurs, 'blocks/s', 'hpack.js', decJs),
      ];
    },
  },
];

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const r of await hpackBenchmarks[0]!.run())
    console.log(
      `BENCH ${r.name} ${r.value} ${r.unit} ${r.peer ?? '-'} ${r.peerValue ?? '-'} ${r.ratio ?? '-'}`,
    );
}
