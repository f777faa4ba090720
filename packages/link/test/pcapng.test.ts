import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fc, test } from '@fast-check/vitest';
import { fromHex, ParseError, toHex } from '@stepwire/wire';
import { decodesOrParseError } from '@stepwire/wire/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { encodePcap, LINKTYPE_RAW } from '../src/pcap.ts';
import {
  decodePcapng,
  encodePcapng,
  type PcapngFile,
  PcapngWriter,
  pcapngPackets,
  SECRETS_TYPE_TLS_KEYLOG,
} from '../src/pcapng.ts';
import { arbitraryPcapngFile } from '../src/testing.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sw-pcapng-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A minimal IPv4 header + 4 bytes, enough for tshark to show an IP packet. */
const packet = (n: number) => fromHex(`45000018 0000 4000 40 fd 0000 c6120001 c6120002 0000000${n % 10}`);
const line = (label: string, cr: string, secret: string) => `${label} ${cr} ${secret}`;
const CR1 = 'aa'.repeat(32);
const CR2 = 'bb'.repeat(32);

describe('pcapng codec', () => {
  it('reads a big-endian section as the draft lays the blocks out (SHB, IDB, EPB, DSB)', () => {
    // draft-ietf-opsawg-pcapng §4.1, §4.2, §4.3, §4.7 written out field by field, big-endian.
    const bytes = fromHex(
      [
        '0a0d0d0a 0000001c 1a2b3c4d 0001 0000 ffffffff ffffffff 0000001c', // SHB, no options
        '00000001 00000020 0065 0000 0000ffff 0009 0001 09000000 00000000 00000020', // IDB, if_tsresol=9
        '0000000a 00000018 544c534b 00000002 6869 0000 00000018', // DSB "hi"
        '00000006 00000024 00000000 00000001 00000002 00000003 00000005 010203 00 00000024', // EPB
      ].join(''),
    );
    const f = decodePcapng(bytes);
    expect(f).toEqual<PcapngFile>({
      sections: [
        {
          byteOrder: 'be',
          versionMajor: 1,
          versionMinor: 0,
          sectionLength: -1n,
          options: [],
          blocks: [
            { type: 'idb', linkType: 101, snaplen: 65535, options: [{ code: 9, value: fromHex('09') }] },
            { type: 'dsb', secretsType: SECRETS_TYPE_TLS_KEYLOG, secrets: fromHex('6869'), options: [] },
            {
              type: 'epb',
              interfaceId: 0,
              timestamp: 0x1_0000_0002n,
              originalLength: 5,
              data: fromHex('010203'),
              options: [],
            },
          ],
        },
      ],
    });
    const { packets, keylog } = pcapngPackets(f);
    expect(keylog).toEqual(['hi']);
    // Nanosecond units (if_tsresol 9): 2^32 + 2 ns.
    expect(packets[0]!.timeMs).toBeCloseTo((2 ** 32 + 2) / 1e6, 9);
    // §4.2 if_tsoffset (14) moves every timestamp of the interface by whole seconds.
    const shifted = structuredClone(f);
    const idb = shifted.sections[0]!.blocks[0]!;
    if (idb.type !== 'idb') throw new Error('expected the IDB first');
    idb.options.push({ code: 14, value: fromHex('0000000000000064') });
    expect(pcapngPackets(shifted).packets[0]!.timeMs).toBeCloseTo(100_000 + (2 ** 32 + 2) / 1e6, 6);
    // The same file little-endian encodes to other bytes and decodes to the same blocks.
    const le = encodePcapng({ sections: [{ ...f.sections[0]!, byteOrder: 'le' }] });
    expect(toHex(le.subarray(8, 12))).toBe('4d3c2b1a');
    expect(decodePcapng(le).sections[0]!.blocks).toEqual(f.sections[0]!.blocks);
  });

  it('refuses files that do not start with a section header, bad lengths, mismatched trailers, other versions', () => {
    const w = PcapngWriter.inMemory();
    w.write(packet(1), 1);
    const good = w.bytes();
    const bad = (b: Uint8Array, field: string) => {
      let err: unknown;
      try {
        decodePcapng(b);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ParseError);
      expect((err as ParseError).field).toBe(field);
    };
    bad(good.subarray(0, 3), 'Block Type');
    bad(encodePcap({ ...emptyPcap, records: [] }), 'Block Type');
    const magic = good.slice();
    magic[8] = 0;
    bad(magic, 'Byte-Order Magic');
    const shbLen = new DataView(good.buffer).getUint32(4, true);
    bad(good.subarray(shbLen), 'Block Type'); // an IDB first
    const odd = good.slice();
    new DataView(odd.buffer).setUint32(shbLen + 4, 13, true);
    bad(odd, 'Block Total Length');
    const trailer = good.slice();
    trailer[shbLen - 4]! ^= 4;
    bad(trailer, 'Block Total Length (trailer)');
    const v2 = good.slice();
    v2[12] = 2;
    bad(v2, 'Major Version');
    bad(good.subarray(0, good.length - 1), 'Block Total Length (trailer)');
    bad(good.subarray(0, good.length - 8), 'Block Body');
  });

  test.prop([arbitraryPcapngFile], { numRuns: 300 })('round trip: decode(encode(f)) equals f', (f) => {
    expect(decodePcapng(encodePcapng(f))).toEqual(f);
  });

  test.prop([fc.uint8Array({ maxLength: 300 })], { numRuns: 1000 })(
    'arbitrary bytes decode or throw ParseError',
    (b) => {
      expect(decodesOrParseError(decodePcapng, b)).toBe(true);
    },
  );

  test.prop([arbitraryPcapngFile, fc.nat(), fc.nat({ max: 7 }), fc.nat()], { numRuns: 500 })(
    'a valid file with a flipped bit or cut short decodes or throws ParseError',
    (f, at, bit, cut) => {
      const b = encodePcapng(f);
      const flipped = b.slice();
      flipped[at % b.length]! ^= 1 << bit;
      expect(decodesOrParseError(decodePcapng, flipped)).toBe(true);
      expect(decodesOrParseError(decodePcapng, b.subarray(0, cut % (b.length + 1)))).toBe(true);
    },
  );
});

const emptyPcap = {
  byteOrder: 'le' as const,
  precision: 'usec' as const,
  versionMajor: 2,
  versionMinor: 4,
  thiszone: 0,
  sigfigs: 0,
  snaplen: 65535,
  linkType: LINKTYPE_RAW,
};

describe('PcapngWriter', () => {
  it('writes each secret once, in a Decryption Secrets Block before the next packet', () => {
    const w = PcapngWriter.inMemory({ epochMs: 1_700_000_000_000 });
    w.keylog(line('CLIENT_HANDSHAKE_TRAFFIC_SECRET', CR1, '01'));
    w.keylog(line('SERVER_HANDSHAKE_TRAFFIC_SECRET', CR1, '02'));
    w.keylog(`${line('CLIENT_HANDSHAKE_TRAFFIC_SECRET', CR1, '01')}\n`); // again: not written twice
    w.write(packet(1), 2.5);
    w.write(packet(2), 3);
    w.keylog(line('CLIENT_HANDSHAKE_TRAFFIC_SECRET', CR1, '01'));
    w.keylog(line('CLIENT_TRAFFIC_SECRET_0', CR2, '03'));
    w.write(packet(3), 4);
    w.keylog(line('EXPORTER_SECRET', CR2, '04'));
    w.close();
    w.write(packet(4), 5); // ignored after close
    w.keylog(line('EXPORTER_SECRET', CR2, '05'));
    const f = decodePcapng(w.bytes());
    expect(f.sections).toHaveLength(1);
    const kinds = f.sections[0]!.blocks.map((b) => b.type);
    expect(kinds).toEqual(['idb', 'dsb', 'epb', 'epb', 'dsb', 'epb', 'dsb']);
    expect(w.packets).toBe(3);
    expect(w.secrets).toBe(3);
    const { packets, keylog } = pcapngPackets(f);
    expect(keylog).toEqual([
      line('CLIENT_HANDSHAKE_TRAFFIC_SECRET', CR1, '01'),
      line('SERVER_HANDSHAKE_TRAFFIC_SECRET', CR1, '02'),
      line('CLIENT_TRAFFIC_SECRET_0', CR2, '03'),
      line('EXPORTER_SECRET', CR2, '04'),
    ]);
    expect(packets.map((p) => p.timeMs)).toEqual([1_700_000_000_002.5, 1_700_000_000_003, 1_700_000_000_004]);
    expect(packets.every((p) => p.linkType === LINKTYPE_RAW)).toBe(true);
    expect(toHex(packets[2]!.data)).toBe(toHex(packet(3)));
    // The writer's fast path writes exactly the bytes the codec encodes for the same blocks.
    expect(toHex(encodePcapng(f))).toBe(toHex(w.bytes()));
  });

  it('a file writer produces the same bytes as an in-memory writer', () => {
    const file = path.join(tmp, 'same.pcapng');
    const fw = PcapngWriter.toFile(file);
    const mw = PcapngWriter.inMemory();
    for (const w of [fw, mw]) {
      w.keylog(line('SERVER_TRAFFIC_SECRET_0', CR1, 'ff'));
      for (let i = 0; i < 4; i++) w.write(packet(i), i * 1.25);
      w.close();
    }
    expect(toHex(new Uint8Array(fs.readFileSync(file)))).toBe(toHex(mw.bytes()));
  });
});

describe('tshark and editcap as oracles', () => {
  const run = (cmd: string, args: string[]) =>
    execFileSync(cmd, args, { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });

  it('tshark reads our pcapng: packets, timestamps and the Decryption Secrets Block', () => {
    const file = path.join(tmp, 'ours.pcapng');
    const w = PcapngWriter.toFile(file, { epochMs: 1_767_225_600_000 });
    w.keylog(line('CLIENT_TRAFFIC_SECRET_0', CR1, 'ab'.repeat(32)));
    w.write(packet(1), 0.5);
    w.write(packet(2), 1000);
    w.close();
    const rows = run('/usr/bin/tshark', [
      '-r',
      file,
      '-T',
      'fields',
      '-E',
      'separator=|',
      '-e',
      'frame.time_epoch',
      '-e',
      'ip.src',
      '-e',
      'ip.dst',
    ])
      .trim()
      .split('\n');
    expect(rows.map((r) => r.split('|').slice(1))).toEqual([
      ['198.18.0.1', '198.18.0.2'],
      ['198.18.0.1', '198.18.0.2'],
    ]);
    expect(Number(rows[0]!.split('|')[0])).toBeCloseTo(1_767_225_600.0005, 6);
    // Wireshark's capinfos: a pcapng with our application name and one secrets block it recognised.
    const stats = run('/usr/bin/capinfos', ['-M', file]);
    expect(stats).toMatch(/File type:\s+pcapng/);
    expect(stats).toMatch(/Number of packets:\s+2\n/);
    expect(stats).toMatch(/Capture application: stepwire/);
    expect(stats).toMatch(/Number of decryption secrets in file: 1\n/);
  });

  it('our reader decodes pcapng written by editcap --inject-secrets, secrets and packets', () => {
    const pcap = path.join(tmp, 'in.pcap');
    fs.writeFileSync(
      pcap,
      encodePcap({
        ...emptyPcap,
        records: [0, 1, 2].map((i) => ({
          tsSec: 1_767_225_600 + i,
          tsFrac: 250_000,
          origLen: 24,
          data: packet(i),
        })),
      }),
    );
    const keys = path.join(tmp, 'keys.txt');
    const lines = [
      line('CLIENT_HANDSHAKE_TRAFFIC_SECRET', CR1, 'cd'.repeat(32)),
      line('SERVER_TRAFFIC_SECRET_0', CR1, 'ef'.repeat(48)),
    ];
    fs.writeFileSync(keys, `${lines.join('\n')}\n`);
    const out = path.join(tmp, 'injected.pcapng');
    run('/usr/bin/editcap', ['--inject-secrets', `tls,${keys}`, pcap, out]);
    const f = decodePcapng(new Uint8Array(fs.readFileSync(out)));
    const { packets, keylog } = pcapngPackets(f);
    expect(keylog).toEqual(lines);
    expect(packets.map((p) => toHex(p.data))).toEqual([0, 1, 2].map((i) => toHex(packet(i))));
    expect(packets.map((p) => p.timeMs)).toEqual([0, 1, 2].map((i) => (1_767_225_600 + i) * 1000 + 250));
    expect(packets[0]!.linkType).toBe(LINKTYPE_RAW);
    // And tshark -F pcapng -w (its own writer, with its own options) reads back the same packets.
    const rewritten = path.join(tmp, 'tshark.pcapng');
    run('/usr/bin/tshark', ['-r', out, '-F', 'pcapng', '-w', rewritten]);
    const again = pcapngPackets(decodePcapng(new Uint8Array(fs.readFileSync(rewritten))));
    expect(again.packets.map((p) => toHex(p.data))).toEqual(packets.map((p) => toHex(p.data)));
    expect(again.keylog).toEqual(lines);
  });
});
