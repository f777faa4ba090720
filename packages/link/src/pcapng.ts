import * as fs from 'node:fs';
import { ByteReader, ByteWriter, joinBytes } from '@stepwire/wire';
import { LINKTYPE_RAW, PCAP_MAX_RECORD, PCAP_SNAPLEN } from './pcap.ts';

/**
 * The pcapng capture format (draft-ietf-opsawg-pcapng). A file is a sequence of blocks,
 * each `type u32, total length u32, body, total length u32` (§3.1), grouped into sections:
 * every section opens with a Section Header Block whose byte-order magic fixes the byte
 * order of every block in it (§4.1). We read and write the blocks a capture needs —
 * Section Header, Interface Description, Enhanced Packet, Simple Packet and Decryption
 * Secrets — and keep any other block as its raw body so nothing is lost on a round trip.
 */

// Block type codes, draft-ietf-opsawg-pcapng §10.1.
export const BT_SHB = 0x0a0d0d0a;
export const BT_IDB = 0x00000001;
export const BT_SPB = 0x00000003;
export const BT_EPB = 0x00000006;
export const BT_DSB = 0x0000000a;
/** §4.1: written as 0x1A2B3C4D in the writer's byte order; a reader sees it swapped or not. */
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
/** §4.7 Decryption Secrets Block, Secrets Type: "TLSK", an NSS key log (SSLKEYLOGFILE). */
export const SECRETS_TYPE_TLS_KEYLOG = 0x544c534b;
/** §4.2 if_tsresol: the option code; its value byte is 10^-n seconds (top bit clear). */
export const OPT_IF_TSRESOL = 9;
/** §4.2 if_tsoffset: seconds added to the interface's timestamps. */
export const OPT_IF_TSOFFSET = 14;
const OPT_ENDOFOPT = 0;
/** Blocks longer than this are refused: a bad length field cannot ask for gigabytes. */
export const PCAPNG_MAX_BLOCK = 16 * 1024 * 1024;

/** An option (§3.5): a code and its value; opt_endofopt is implied, never listed. */
export interface PcapngOption {
  code: number;
  value: Uint8Array;
}

export type PcapngBlock =
  | { type: 'idb'; linkType: number; snaplen: number; options: PcapngOption[] }
  | {
      type: 'epb';
      interfaceId: number;
      /** 64-bit timestamp in units of the interface's if_tsresol (default microseconds). */
      timestamp: bigint;
      originalLength: number;
      data: Uint8Array;
      options: PcapngOption[];
    }
  | { type: 'spb'; originalLength: number; data: Uint8Array }
  | { type: 'dsb'; secretsType: number; secrets: Uint8Array; options: PcapngOption[] }
  | { type: 'unknown'; blockType: number; body: Uint8Array };

export interface PcapngSection {
  byteOrder: 'le' | 'be';
  versionMajor: number;
  versionMinor: number;
  /** §4.1 Section Length: -1 when not given, as writers that stream put. */
  sectionLength: bigint;
  options: PcapngOption[];
  blocks: PcapngBlock[];
}

export interface PcapngFile {
  sections: PcapngSection[];
}

const bswap32 = (v: number): number =>
  (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
const bswap16 = (v: number): number => ((v & 0xff) << 8) | (v >>> 8);
const pad4 = (n: number): number => (4 - (n % 4)) % 4;

/** ByteWriter in a chosen byte order. */
class OrderedWriter {
  constructor(
    readonly w: ByteWriter,
    readonly le: boolean,
  ) {}
  u16(v: number): void {
    this.w.u16(this.le ? bswap16(v & 0xffff) : v & 0xffff);
  }
  u32(v: number): void {
    this.w.u32(this.le ? bswap32(v >>> 0) : v >>> 0);
  }
  /** §4.3: a timestamp is two 32-bit words, the high one first, in either byte order. */
  timestamp(v: bigint): void {
    const u = BigInt.asUintN(64, v);
    this.u32(Number(u >> 32n));
    this.u32(Number(u & 0xffffffffn));
  }
  /** §4.1 Section Length: one 64-bit integer in the section's byte order. */
  u64(v: bigint): void {
    const u = BigInt.asUintN(64, v);
    const hi = Number(u >> 32n);
    const lo = Number(u & 0xffffffffn);
    if (this.le) {
      this.u32(lo);
      this.u32(hi);
    } else {
      this.u32(hi);
      this.u32(lo);
    }
  }
  padded(b: Uint8Array): void {
    this.w.bytes(b);
    this.w.zeros(pad4(b.length));
  }
}

/** ByteReader in a chosen byte order. */
class OrderedReader {
  constructor(
    readonly r: ByteReader,
    readonly le: boolean,
  ) {}
  u16(f: string): number {
    const v = this.r.u16(f);
    return this.le ? bswap16(v) : v;
  }
  u32(f: string): number {
    const v = this.r.u32(f);
    return this.le ? bswap32(v) : v;
  }
  timestamp(f: string): bigint {
    const hi = BigInt(this.u32(f));
    return (hi << 32n) | BigInt(this.u32(f));
  }
  u64(f: string): bigint {
    const a = BigInt(this.u32(f));
    const b = BigInt(this.u32(f));
    return this.le ? (b << 32n) | a : (a << 32n) | b;
  }
}

function encodeOptions(options: PcapngOption[], o: OrderedWriter): void {
  if (options.length === 0) return;
  for (const opt of options) {
    o.u16(opt.code);
    o.u16(opt.value.length);
    o.padded(opt.value);
  }
  // §3.5: the list ends with opt_endofopt when it has any options.
  o.u16(OPT_ENDOFOPT);
  o.u16(0);
}

/** §3.5: options run to opt_endofopt or the end of the body. */
function decodeOptions(o: OrderedReader): PcapngOption[] {
  const out: PcapngOption[] = [];
  while (o.r.remaining > 0) {
    const code = o.u16('option code');
    const length = o.u16('option length');
    if (code === OPT_ENDOFOPT) break;
    const value = o.r.copy(length, 'option value');
    o.r.skip(Math.min(pad4(length), o.r.remaining), 'option padding');
    out.push({ code, value });
  }
  return out;
}

function encodeBlockBody(b: PcapngBlock, o: OrderedWriter): number {
  switch (b.type) {
    case 'idb': // §4.2
      o.u16(b.linkType);
      o.u16(0);
      o.u32(b.snaplen);
      encodeOptions(b.options, o);
      return BT_IDB;
    case 'epb': // §4.3
      o.u32(b.interfaceId);
      o.timestamp(b.timestamp);
      o.u32(b.data.length);
      o.u32(b.originalLength);
      o.padded(b.data);
      encodeOptions(b.options, o);
      return BT_EPB;
    case 'spb': // §4.4
      o.u32(b.originalLength);
      o.padded(b.data);
      return BT_SPB;
    case 'dsb': // §4.7
      o.u32(b.secretsType);
      o.u32(b.secrets.length);
      o.padded(b.secrets);
      encodeOptions(b.options, o);
      return BT_DSB;
    case 'unknown':
      o.padded(b.body);
      return b.blockType;
  }
}

/** One block: type, total length, body, total length again (§3.1). */
function encodeBlock(body: (o: OrderedWriter) => number, le: boolean): Uint8Array {
  const inner = new OrderedWriter(new ByteWriter(64), le);
  const type = body(inner);
  const bytes = inner.w.finish();
  const total = 12 + bytes.length;
  const out = new OrderedWriter(new ByteWriter(total), le);
  out.u32(type);
  out.u32(total);
  out.w.bytes(bytes);
  out.u32(total);
  return out.w.finish();
}

function encodeShb(s: Omit<PcapngSection, 'blocks'>): Uint8Array {
  return encodeBlock((o) => {
    o.u32(BYTE_ORDER_MAGIC);
    o.u16(s.versionMajor);
    o.u16(s.versionMinor);
    o.u64(s.sectionLength);
    encodeOptions(s.options, o);
    return BT_SHB;
  }, s.byteOrder === 'le');
}

export function encodePcapngBlock(b: PcapngBlock, byteOrder: 'le' | 'be'): Uint8Array {
  return encodeBlock((o) => encodeBlockBody(b, o), byteOrder === 'le');
}

export function encodePcapng(f: PcapngFile): Uint8Array {
  const w = new ByteWriter(256);
  for (const s of f.sections) {
    w.bytes(encodeShb(s));
    for (const b of s.blocks) w.bytes(encodePcapngBlock(b, s.byteOrder));
  }
  return w.finish().slice();
}

function decodeBody(type: number, o: OrderedReader): PcapngBlock {
  const r = o.r;
  switch (type) {
    case BT_IDB: {
      const linkType = o.u16('LinkType');
      o.u16('Reserved');
      const snaplen = o.u32('SnapLen');
      return { type: 'idb', linkType, snaplen, options: decodeOptions(o) };
    }
    case BT_EPB: {
      const interfaceId = o.u32('Interface ID');
      const timestamp = o.timestamp('Timestamp');
      const captured = o.u32('Captured Packet Length');
      if (captured > PCAP_MAX_RECORD)
        r.fail('Captured Packet Length', `${captured} exceeds ${PCAP_MAX_RECORD}`);
      const originalLength = o.u32('Original Packet Length');
      const data = r.copy(captured, 'Packet Data');
      r.skip(Math.min(pad4(captured), r.remaining), 'Packet Data padding');
      return { type: 'epb', interfaceId, timestamp, originalLength, data, options: decodeOptions(o) };
    }
    case BT_SPB: {
      // §4.4: the captured length is what the block holds (at most the original length).
      const originalLength = o.u32('Original Packet Length');
      const data = r.copy(Math.min(originalLength, r.remaining), 'Packet Data');
      return { type: 'spb', originalLength, data };
    }
    case BT_DSB: {
      const secretsType = o.u32('Secrets Type');
      const length = o.u32('Secrets Length');
      const secrets = r.copy(length, 'Secrets Data');
      r.skip(Math.min(pad4(length), r.remaining), 'Secrets Data padding');
      return { type: 'dsb', secretsType, secrets, options: decodeOptions(o) };
    }
    default:
      return { type: 'unknown', blockType: type, body: r.copy(r.remaining, 'Block Body') };
  }
}

/** Parse a whole pcapng file; throws ParseError (layer 'pcapng') on anything malformed. */
export function decodePcapng(bytes: Uint8Array): PcapngFile {
  const r: ByteReader = new ByteReader(bytes, 'pcapng');
  const sections: PcapngSection[] = [];
  let section: PcapngSection | undefined;
  while (!r.atEnd) {
    const at = r.offset;
    const rawType = r.u32('Block Type');
    let le: boolean;
    if (rawType === BT_SHB) {
      // §4.1: the magic after the length tells this section's byte order.
      if (r.remaining < 8) r.fail('Byte-Order Magic', 'section header truncated');
      const magic = new DataView(bytes.buffer, bytes.byteOffset + at + 8, 4).getUint32(0);
      if (magic === BYTE_ORDER_MAGIC) le = false;
      else if (bswap32(magic) === BYTE_ORDER_MAGIC) le = true;
      else r.fail('Byte-Order Magic', `unknown magic 0x${magic.toString(16).padStart(8, '0')}`, at + 8);
    } else {
      if (!section) r.fail('Block Type', 'the file does not start with a Section Header Block', at);
      le = section.byteOrder === 'le';
    }
    const type = le ? bswap32(rawType) : rawType;
    const o = new OrderedReader(r, le);
    const total = o.u32('Block Total Length');
    if (total < 12 || total % 4 !== 0)
      r.fail('Block Total Length', `${total} is not a multiple of 4 of at least 12`, at + 4);
    if (total > PCAPNG_MAX_BLOCK)
      r.fail('Block Total Length', `${total} exceeds ${PCAPNG_MAX_BLOCK}`, at + 4);
    const body = new OrderedReader(r.sub(total - 12, 'Block Body'), le);
    const trailer = o.u32('Block Total Length (trailer)');
    if (trailer !== total)
      r.fail('Block Total Length (trailer)', `${trailer} differs from ${total}`, at + total - 4);
    if (type === BT_SHB) {
      body.u32('Byte-Order Magic');
      const versionMajor = body.u16('Major Version');
      // §4.1: a reader must not read a section of another major version.
      if (versionMajor !== 1) body.r.fail('Major Version', `unsupported version ${versionMajor}`, 4);
      const versionMinor = body.u16('Minor Version');
      const sectionLength = BigInt.asIntN(64, body.u64('Section Length'));
      section = {
        byteOrder: le ? 'le' : 'be',
        versionMajor,
        versionMinor,
        sectionLength,
        options: decodeOptions(body),
        blocks: [],
      };
      sections.push(section);
    } else if (section) {
      section.blocks.push(decodeBody(type, body));
    }
  }
  return { sections };
}

/** Timestamp units per second for an interface: 10^n or 2^n (§4.2 if_tsresol; default 10^6). */
export function tsresolPerSecond(idb: Extract<PcapngBlock, { type: 'idb' }> | undefined): number {
  const opt = idb?.options.find((o) => o.code === OPT_IF_TSRESOL);
  const v = opt?.value[0];
  if (v === undefined) return 1e6;
  return v & 0x80 ? 2 ** (v & 0x7f) : 10 ** v;
}

/** §4.2 if_tsoffset (14): seconds to add to every timestamp of the interface (signed 64-bit). */
function tsoffsetMs(idb: Extract<PcapngBlock, { type: 'idb' }>, byteOrder: 'le' | 'be'): number {
  const v = idb.options.find((o) => o.code === OPT_IF_TSOFFSET)?.value;
  if (v?.length !== 8) return 0;
  return Number(new DataView(v.buffer, v.byteOffset, 8).getBigInt64(0, byteOrder === 'le')) * 1000;
}

/** A timestamp in milliseconds, dividing once so whole microseconds stay exact. */
function unitsToMs(ts: bigint, perSecond: number): number {
  return perSecond >= 1000 ? Number(ts) / (perSecond / 1000) : (Number(ts) * 1000) / perSecond;
}

/** A packet of a pcapng file, flattened: what a reader of pcap or pcapng needs. */
export interface PcapngPacket {
  /** Milliseconds since 1970. */
  timeMs: number;
  linkType: number;
  originalLength: number;
  data: Uint8Array;
}

/**
 * Every packet in order with its interface's link type and time, and every Decryption
 * Secrets Block's TLS key log lines, in file order. A packet whose interface is missing is
 * skipped (§4.3: the Interface ID names an IDB of the same section).
 */
export function pcapngPackets(f: PcapngFile): { packets: PcapngPacket[]; keylog: string[] } {
  const packets: PcapngPacket[] = [];
  const keylog: string[] = [];
  for (const s of f.sections) {
    const ifaces = s.blocks.filter((b) => b.type === 'idb');
    for (const b of s.blocks) {
      if (b.type === 'epb') {
        const idb = ifaces[b.interfaceId];
        if (!idb) continue;
        packets.push({
          timeMs: unitsToMs(b.timestamp, tsresolPerSecond(idb)) + tsoffsetMs(idb, s.byteOrder),
          linkType: idb.linkType,
          originalLength: b.originalLength,
          data: b.data,
        });
      } else if (b.type === 'spb') {
        // §4.4: a Simple Packet Block belongs to the first interface and has no timestamp.
        const idb = ifaces[0];
        if (!idb) continue;
        packets.push({ timeMs: 0, linkType: idb.linkType, originalLength: b.originalLength, data: b.data });
      } else if (b.type === 'dsb' && b.secretsType === SECRETS_TYPE_TLS_KEYLOG) {
        for (const line of new TextDecoder().decode(b.secrets).split(/\r?\n/))
          if (line.trim() !== '') keylog.push(line.trim());
      }
    }
  }
  return { packets, keylog };
}

export interface PcapngWriterOptions {
  linkType?: number;
  snaplen?: number;
  /** Added to every clock time before it is written (see PcapWriterOptions.epochMs). Default 0. */
  epochMs?: number;
}

/**
 * Writes a little-endian pcapng with one interface (microsecond timestamps) to a file
 * (synchronously, block by block) or to memory. TLS key log lines given to `keylog()` go
 * into a Decryption Secrets Block written just before the next packet, so every secret
 * precedes the first packet that needs it (Wireshark reads them in file order); each line
 * is written once however often it is given.
 */
export class PcapngWriter {
  private fd: number | undefined;
  private readonly chunks: Uint8Array[] = [];
  private closed = false;
  private count = 0;
  private secretsBlocks = 0;
  private readonly seen = new Set<string>();
  private pending: string[] = [];
  readonly snaplen: number;
  private readonly epochMs: number;

  private constructor(
    private readonly target: { path: string } | 'memory',
    options: PcapngWriterOptions,
  ) {
    this.snaplen = options.snaplen ?? PCAP_SNAPLEN;
    this.epochMs = options.epochMs ?? 0;
    if (target !== 'memory') this.fd = fs.openSync(target.path, 'w');
    this.emit(
      encodeShb({
        byteOrder: 'le',
        versionMajor: 1,
        versionMinor: 0,
        sectionLength: -1n,
        // §4.1 shb_userappl (4).
        options: [{ code: 4, value: new TextEncoder().encode('stepwire') }],
      }),
    );
    this.emit(
      encodePcapngBlock(
        {
          type: 'idb',
          linkType: options.linkType ?? LINKTYPE_RAW,
          snaplen: this.snaplen,
          options: [{ code: OPT_IF_TSRESOL, value: new Uint8Array([6]) }],
        },
        'le',
      ),
    );
  }

  static toFile(path: string, options: PcapngWriterOptions = {}): PcapngWriter {
    return new PcapngWriter({ path }, options);
  }

  static inMemory(options: PcapngWriterOptions = {}): PcapngWriter {
    return new PcapngWriter('memory', options);
  }

  get packets(): number {
    return this.count;
  }

  /** Decryption Secrets Blocks written so far. */
  get secrets(): number {
    return this.secretsBlocks;
  }

  private emit(block: Uint8Array): void {
    if (this.fd !== undefined) fs.writeSync(this.fd, block);
    else this.chunks.push(block.slice());
  }

  /** One NSS key log line (SSLKEYLOGFILE format); written before the next packet, once. */
  keylog(line: string): void {
    const l = line.trim();
    if (this.closed || l === '' || this.seen.has(l)) return;
    this.seen.add(l);
    this.pending.push(l);
  }

  private flushSecrets(): void {
    if (this.pending.length === 0) return;
    const secrets = new TextEncoder().encode(`${this.pending.join('\n')}\n`);
    this.pending = [];
    this.emit(
      encodePcapngBlock({ type: 'dsb', secretsType: SECRETS_TYPE_TLS_KEYLOG, secrets, options: [] }, 'le'),
    );
    this.secretsBlocks++;
  }

  /** Record one packet seen at `timeMs` on a Clock. Ignored after close(). */
  write(packet: Uint8Array, timeMs: number): void {
    if (this.closed) return;
    this.flushSecrets();
    const us = Math.max(0, Math.round((this.epochMs + timeMs) * 1000));
    const data = packet.length > this.snaplen ? packet.subarray(0, this.snaplen) : packet;
    // The per-packet path writes the Enhanced Packet Block (§4.3) in one buffer: the same
    // bytes as encodePcapngBlock, without its intermediate copy.
    const total = 32 + data.length + pad4(data.length);
    const block = new Uint8Array(total);
    const v = new DataView(block.buffer);
    v.setUint32(0, BT_EPB, true);
    v.setUint32(4, total, true);
    v.setUint32(8, 0, true); // Interface ID
    v.setUint32(12, Math.floor(us / 2 ** 32), true); // Timestamp (High)
    v.setUint32(16, us % 2 ** 32, true); // Timestamp (Low)
    v.setUint32(20, data.length, true);
    v.setUint32(24, packet.length, true);
    block.set(data, 28);
    v.setUint32(total - 4, total, true);
    if (this.fd !== undefined) fs.writeSync(this.fd, block);
    else this.chunks.push(block);
    this.count++;
  }

  bytes(): Uint8Array {
    if (this.target === 'memory') return joinBytes(this.chunks);
    return new Uint8Array(fs.readFileSync(this.target.path));
  }

  /** Secrets given after the last packet are still written, so the file holds them all. */
  close(): void {
    if (this.closed) return;
    this.flushSecrets();
    this.closed = true;
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
