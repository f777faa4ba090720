/**
 * RFC 7541 Appendix C, reproduced: integers (C.1), the four representations (C.2), and the
 * request (C.3 plain, C.4 Huffman) and response (C.5 plain, C.6 Huffman, 256-octet table,
 * with eviction) chains, checking the decoded lists, the dynamic table after each block,
 * and that our encoder emits the RFC's bytes exactly.
 */
import { fromHex, ParseError, toHex } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import {
  decodeInteger,
  encodeInteger,
  HpackDecoder,
  HpackEncoder,
  huffmanDecode,
  huffmanEncode,
} from '../../src/hpack/index.ts';

const hex = (s: string) => fromHex(s.replace(/\s+/g, ''));
const pairs = (l: { name: string; value: string }[]) => l.map((f) => [f.name, f.value]);

describe('RFC 7541 C.1 integer representation', () => {
  it('C.1.1 encodes 10 with a 5-bit prefix', () => {
    expect(toHex(encodeInteger(10, 5))).toBe('0a');
    expect(decodeInteger(hex('0a'), 5)).toBe(10);
  });
  it('C.1.2 encodes 1337 with a 5-bit prefix', () => {
    expect(toHex(encodeInteger(1337, 5))).toBe('1f9a0a');
    expect(decodeInteger(hex('1f9a0a'), 5)).toBe(1337);
  });
  it('C.1.3 encodes 42 starting at an octet boundary', () => {
    expect(toHex(encodeInteger(42, 8))).toBe('2a');
    expect(decodeInteger(hex('2a'), 8)).toBe(42);
  });
  it('refuses integers past 2^32 - 1 and truncated ones', () => {
    expect(() => decodeInteger(hex('1fffffffffff7f'), 5)).toThrow(ParseError);
    expect(() => decodeInteger(hex('1f9a'), 5)).toThrow(ParseError);
  });
});

describe('RFC 7541 C.2 header field representations', () => {
  const cases: [string, string, [string, string], [string, string][], boolean][] = [
    [
      'C.2.1 literal with indexing',
      '400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572',
      ['custom-key', 'custom-header'],
      [['custom-key', 'custom-header']],
      false,
    ],
    [
      'C.2.2 literal without indexing',
      '040c 2f73 616d 706c 652f 7061 7468',
      [':path', '/sample/path'],
      [],
      false,
    ],
    [
      'C.2.3 literal never indexed',
      '1008 7061 7373 776f 7264 0673 6563 7265 74',
      ['password', 'secret'],
      [],
      true,
    ],
    ['C.2.4 indexed', '82', [':method', 'GET'], [], false],
  ];
  for (const [title, wire, field, table, sensitive] of cases) {
    it(title, () => {
      const d = new HpackDecoder();
      const out = d.decode(hex(wire));
      expect(pairs(out)).toEqual([field]);
      expect(out[0]?.sensitive ?? false).toBe(sensitive);
      expect(d.table.entries()).toEqual(table);
    });
  }
  it('C.2.1/C.2.3 encoded: indexing by default, never indexed when sensitive', () => {
    const e = new HpackEncoder({ huffman: 'never' });
    expect(toHex(e.encode([{ name: 'custom-key', value: 'custom-header' }]))).toBe(
      '400a637573746f6d2d6b65790d637573746f6d2d686561646572',
    );
    const e2 = new HpackEncoder({ huffman: 'never' });
    expect(toHex(e2.encode([{ name: 'password', value: 'secret', sensitive: true }]))).toBe(
      '100870617373776f726406736563726574',
    );
  });
});

const REQUESTS = [
  [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
  ],
  [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
    ['cache-control', 'no-cache'],
  ],
  [
    [':method', 'GET'],
    [':scheme', 'https'],
    [':path', '/index.html'],
    [':authority', 'www.example.com'],
    ['custom-key', 'custom-value'],
  ],
];
const REQUEST_TABLES = [
  { size: 57, entries: [[':authority', 'www.example.com']] },
  {
    size: 110,
    entries: [
      ['cache-control', 'no-cache'],
      [':authority', 'www.example.com'],
    ],
  },
  {
    size: 164,
    entries: [
      ['custom-key', 'custom-value'],
      ['cache-control', 'no-cache'],
      [':authority', 'www.example.com'],
    ],
  },
];
const DATE1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const DATE2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
const LOC = 'https://www.example.com';
const RESPONSES = [
  [
    [':status', '302'],
    ['cache-control', 'private'],
    ['date', DATE1],
    ['location', LOC],
  ],
  [
    [':status', '307'],
    ['cache-control', 'private'],
    ['date', DATE1],
    ['location', LOC],
  ],
  [
    [':status', '200'],
    ['cache-control', 'private'],
    ['date', DATE2],
    ['location', LOC],
    ['content-encoding', 'gzip'],
    ['set-cookie', COOKIE],
  ],
];
const RESPONSE_TABLES = [
  {
    size: 222,
    entries: [
      ['location', LOC],
      ['date', DATE1],
      ['cache-control', 'private'],
      [':status', '302'],
    ],
  },
  {
    size: 222,
    entries: [
      [':status', '307'],
      ['location', LOC],
      ['date', DATE1],
      ['cache-control', 'private'],
    ],
  },
  {
    size: 215,
    entries: [
      ['set-cookie', COOKIE],
      ['content-encoding', 'gzip'],
      ['date', DATE2],
    ],
  },
];

// Wire bytes from RFC 7541 Appendix C.3–C.6.
const CHAINS = {
  'C.3 requests without Huffman': {
    tableSize: 4096,
    huffman: 'never',
    lists: REQUESTS,
    tables: REQUEST_TABLES,
    wires: [
      '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
      '8286 84be 5808 6e6f 2d63 6163 6865',
      '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
    ],
  },
  'C.4 requests with Huffman': {
    tableSize: 4096,
    huffman: 'auto',
    lists: REQUESTS,
    tables: REQUEST_TABLES,
    wires: [
      '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
      '8286 84be 5886 a8eb 1064 9cbf',
      '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
    ],
  },
  'C.5 responses without Huffman (eviction)': {
    tableSize: 256,
    huffman: 'never',
    lists: RESPONSES,
    tables: RESPONSE_TABLES,
    wires: [
      '4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
      '4803 3330 37c1 c0bf',
      '88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31',
    ],
  },
  'C.6 responses with Huffman (eviction)': {
    tableSize: 256,
    huffman: 'auto',
    lists: RESPONSES,
    tables: RESPONSE_TABLES,
    wires: [
      '4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3',
      '4883 640e ffc1 c0bf',
      '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
    ],
  },
} as const;

for (const [title, c] of Object.entries(CHAINS)) {
  describe(`RFC 7541 ${title}`, () => {
    it('decodes each block on one table, with the RFC table after each', () => {
      const d = new HpackDecoder({ maxTableSize: c.tableSize });
      c.wires.forEach((w, i) => {
        expect(pairs(d.decode(hex(w)))).toEqual(c.lists[i]);
        expect(d.table.entries()).toEqual(c.tables[i]?.entries);
        expect(d.table.size).toBe(c.tables[i]?.size);
      });
    });
    it('encodes each list to exactly the RFC bytes', () => {
      const e = new HpackEncoder({ maxTableSize: c.tableSize, huffman: c.huffman });
      c.wires.forEach((w, i) => {
        const list = (c.lists[i] ?? []).map(([name, value]) => ({ name: name ?? '', value: value ?? '' }));
        expect(toHex(e.encode(list))).toBe(w.replace(/\s+/g, ''));
        expect(e.table.entries()).toEqual(c.tables[i]?.entries);
      });
    });
  });
}

describe('RFC 7541 §5.2 Huffman', () => {
  it('round-trips every octet', () => {
    const all = String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i));
    expect(huffmanDecode(huffmanEncode(all))).toBe(all);
  });
  it('C.4.1: www.example.com', () => {
    expect(toHex(huffmanEncode('www.example.com'))).toBe('f1e3c2e5f23a6ba0ab90f4ff');
  });
  it('rejects the EOS symbol in the data', () => {
    // EOS is 30 ones: 0x3fffffff; four 0xff bytes hold it.
    expect(() => huffmanDecode(hex('ffffffff'))).toThrow(/EOS/);
  });
  it('rejects padding longer than 7 bits', () => {
    // 'a' is 00011 (5 bits); then a whole byte of ones is padding of 11 bits.
    expect(() => huffmanDecode(hex('1fff'))).toThrow(ParseError);
    expect(huffmanDecode(hex('1f'))).toBe('a');
  });
  it('rejects padding that is not all ones', () => {
    // 'a' then padding 000.
    expect(() => huffmanDecode(hex('18'))).toThrow(/padding/);
  });
  it('accepts an empty string', () => {
    expect(huffmanDecode(new Uint8Array(0))).toBe('');
  });
});

describe('RFC 7541 §4.2/§6.3 dynamic table size updates', () => {
  it('applies a size update at the start of a block and evicts', () => {
    const d = new HpackDecoder();
    d.decode(hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d'));
    expect(pairs(d.decode(hex('20 82')))).toEqual([[':method', 'GET']]);
    expect(d.table.entries()).toEqual([]);
    expect(d.table.maxSize).toBe(0);
  });
  it('rejects a size update after a header field', () => {
    expect(() => new HpackDecoder().decode(hex('82 20'))).toThrow(/after a header field/);
  });
  it('rejects a size update above SETTINGS_HEADER_TABLE_SIZE', () => {
    expect(() => new HpackDecoder().decode(hex('3fe21f'))).toThrow(/exceeds the limit/);
  });
  it('requires a size update after we lowered the limit', () => {
    const d = new HpackDecoder();
    d.setMaxTableSize(100);
    expect(() => d.decode(hex('82'))).toThrow(/missing/);
    const d2 = new HpackDecoder();
    d2.setMaxTableSize(100);
    expect(pairs(d2.decode(hex('3f45 82')))).toEqual([[':method', 'GET']]);
  });
  it('the encoder signals the minimum and then the final size (RFC 7541 §4.2)', () => {
    const e = new HpackEncoder();
    e.setMaxTableSize(0);
    e.setMaxTableSize(4096);
    const block = e.encode([{ name: ':method', value: 'GET' }]);
    expect(toHex(block)).toBe('203fe11f82');
    const d = new HpackDecoder();
    expect(pairs(d.decode(block))).toEqual([[':method', 'GET']]);
  });
  it('index 0 and indices beyond both tables are errors', () => {
    expect(() => new HpackDecoder().decode(hex('80'))).toThrow(ParseError);
    expect(() => new HpackDecoder().decode(hex('be'))).toThrow(/beyond/);
    expect(() => new HpackDecoder().decode(hex('400a6375'))).toThrow(ParseError);
  });
});

describe('integer encodings that never end in value', () => {
  it('refuses a long run of zero-valued continuation octets (no NaN index)', () => {
    const block = Uint8Array.of(0xff, ...new Array(40).fill(0x80), 0x01);
    expect(() => new HpackDecoder().decode(block)).toThrow(/too long/);
    expect(() => decodeInteger(Uint8Array.of(0x1f, ...new Array(10).fill(0x80), 0x00), 5)).toThrow(
      ParseError,
    );
  });
  it('accepts redundant zero continuation octets within the limit', () => {
    // 31 + 0 with one redundant octet: still 31 (RFC 7541 §5.1 does not forbid it).
    expect(decodeInteger(Uint8Array.of(0x1f, 0x80, 0x00), 5)).toBe(31);
  });
});
