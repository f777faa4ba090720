/**
 * The hpack-test-case stories (github.com/http2jp/hpack-test-case, copied under
 * /work/shared/vectors/hpack-test-case): every `wire` produced by the nghttp2 and
 * python-hpack encoders decodes to its header list on one decoder per story; and every
 * `raw-data` story, encoded by us, decodes back both with our decoder and with the
 * independent `hpack.js` decoder.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromHex } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { type HeaderField, HpackDecoder, HpackEncoder } from '../../src/hpack/index.ts';

const require = createRequire(import.meta.url);
const hpackjs = require('hpack.js') as {
  decompressor: {
    create(o: { table: { size: number } }): {
      write(b: Buffer): void;
      execute(): void;
      read(): { name: string; value: string } | null;
    };
  };
};

// The checkout's sibling `shared/vectors` (where the workspace keeps third-party vectors).
const ROOT = fileURLToPath(new URL('../../../../../shared/vectors/hpack-test-case', import.meta.url));
const STORY_DIR = process.env.HPACK_TEST_CASE_DIR ?? ROOT;

interface Story {
  cases: { seqno?: number; header_table_size?: number; wire?: string; headers: Record<string, string>[] }[];
}

function stories(dir: string): [string, Story][] {
  const path = join(STORY_DIR, dir);
  return readdirSync(path)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => [f, JSON.parse(readFileSync(join(path, f), 'utf8')) as Story]);
}

/** JSON text is Unicode; on the wire it is UTF-8, which our latin1 strings carry octet by octet. */
const octets = (s: string) => Buffer.from(s, 'utf8').toString('latin1');
const expected = (h: Record<string, string>[]) =>
  h.map((o) => {
    const [name, value] = Object.entries(o)[0] ?? ['', ''];
    return [octets(name), octets(value)];
  });
const pairs = (l: HeaderField[]) => l.map((f) => [f.name, f.value]);

describe('hpack-test-case: decoding other encoders’ output', () => {
  for (const impl of ['nghttp2', 'python-hpack']) {
    const all = stories(impl);
    it(`${impl}: all ${all.length} stories decode to their header lists`, () => {
      expect(all.length).toBeGreaterThan(30);
      let blocks = 0;
      const mismatches: string[] = [];
      for (const [name, story] of all) {
        const d = new HpackDecoder({ maxHeaderListSize: 1 << 20 });
        for (const c of story.cases) {
          if (c.header_table_size !== undefined) d.setMaxTableSize(c.header_table_size);
          const got = d.decode(fromHex(c.wire ?? ''));
          if (JSON.stringify(pairs(got)) !== JSON.stringify(expected(c.headers)))
            mismatches.push(`${impl}/${name} seqno ${c.seqno}`);
          blocks++;
        }
      }
      expect(mismatches).toEqual([]);
      expect(blocks).toBeGreaterThan(1000);
    });
  }
});

describe('hpack-test-case: our encoder on raw-data', () => {
  const all = stories('raw-data');
  for (const huffman of ['auto', 'never'] as const) {
    it(`all ${all.length} stories round-trip through our decoder and hpack.js (huffman ${huffman})`, () => {
      let ours = 0;
      let saved = 0;
      let raw = 0;
      const mismatches: string[] = [];
      for (const [name, story] of all) {
        const e = new HpackEncoder({ huffman });
        const d = new HpackDecoder({ maxHeaderListSize: 1 << 20 });
        const js = hpackjs.decompressor.create({ table: { size: 4096 } });
        for (const [i, c] of story.cases.entries()) {
          const want = expected(c.headers);
          const block = e.encode(want.map(([n, v]) => ({ name: n ?? '', value: v ?? '' })));
          ours += block.length;
          raw += want.reduce((s, [n, v]) => s + (n?.length ?? 0) + (v?.length ?? 0), 0);
          // One comparison per block as JSON (vitest's deep equality per block is slow).
          if (JSON.stringify(pairs(d.decode(block))) !== JSON.stringify(want))
            mismatches.push(`ours ${name} case ${i}`);
          js.write(Buffer.from(block));
          js.execute();
          const back: string[][] = [];
          for (let f = js.read(); f !== null; f = js.read()) back.push([octets(f.name), octets(f.value)]);
          // hpack.js returns UTF-8-decoded strings; compare as octets.
          const wantJs = want.map(([n, v]) => [
            octets(Buffer.from(n ?? '', 'latin1').toString('utf8')),
            octets(Buffer.from(v ?? '', 'latin1').toString('utf8')),
          ]);
          if (JSON.stringify(back) !== JSON.stringify(wantJs)) mismatches.push(`hpack.js ${name} case ${i}`);
          saved++;
        }
      }
      expect(mismatches).toEqual([]);
      expect(saved).toBeGreaterThan(1000);
      // Compression actually happens: the table and Huffman shrink the stories well below raw.
      expect(ours).toBeLessThan(raw * (huffman === 'auto' ? 0.4 : 0.5));
    });
  }
});
