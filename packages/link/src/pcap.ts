import * as fs from 'node:fs';
import { ByteReader, ByteWriter, type Clock, type Counters, joinBytes } from '@stepwire/wire';
import type { Link, LinkOffloads, PacketHandler, PacketInfo } from './link.ts';

/**
 * The classic libpcap file format (draft-ietf-opsawg-pcap): a 24-byte global header, then
 * per packet a 16-byte record header and the captured bytes. The magic number's byte order
 * tells the reader the byte order of every other field; 0xa1b2c3d4 means microsecond
 * timestamps, 0xa1b23c4d nanoseconds.
 */

/** LINKTYPE_RAW: each packet starts with an IPv4 or IPv6 header, as on our links. */
export const LINKTYPE_RAW = 101;
export const PCAP_SNAPLEN = 65535;
/** Records longer than this are refused, as Wireshark refuses them, so a bad length cannot ask for gigabytes. */
export const PCAP_MAX_RECORD = 262144;

const MAGIC_USEC = 0xa1b2c3d4;
const MAGIC_NSEC = 0xa1b23c4d;
const GLOBAL_HEADER_LEN = 24;
const RECORD_HEADER_LEN = 16;

export interface PcapRecord {
  tsSec: number;
  /** Microseconds or nanoseconds within the second, per the file's precision. */
  tsFrac: number;
  /** Length of the packet on the wire; `data` may be shorter when truncated to snaplen. */
  origLen: number;
  data: Uint8Array;
}

export interface PcapFile {
  byteOrder: 'le' | 'be';
  precision: 'usec' | 'nsec';
  versionMajor: number;
  versionMinor: number;
  /** Signed offset of local time from UTC in seconds; writers put 0. */
  thiszone: number;
  sigfigs: number;
  snaplen: number;
  linkType: number;
  records: PcapRecord[];
}

const bswap32 = (v: number): number =>
  (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
const bswap16 = (v: number): number => ((v & 0xff) << 8) | (v >>> 8);

function encodeGlobalHeader(f: Omit<PcapFile, 'records'>, w: ByteWriter): void {
  const le = f.byteOrder === 'le';
  const u32 = (v: number) => w.u32(le ? bswap32(v >>> 0) : v >>> 0);
  const u16 = (v: number) => w.u16(le ? bswap16(v) : v);
  u32(f.precision === 'nsec' ? MAGIC_NSEC : MAGIC_USEC);
  u16(f.versionMajor);
  u16(f.versionMinor);
  u32(f.thiszone);
  u32(f.sigfigs);
  u32(f.snaplen);
  u32(f.linkType);
}

function encodeRecord(r: PcapRecord, le: boolean, w: ByteWriter): void {
  const u32 = (v: number) => w.u32(le ? bswap32(v >>> 0) : v >>> 0);
  u32(r.tsSec);
  u32(r.tsFrac);
  u32(r.data.length);
  u32(r.origLen);
  w.bytes(r.data);
}

export function encodePcap(f: PcapFile): Uint8Array {
  const w = new ByteWriter(
    GLOBAL_HEADER_LEN + f.records.reduce((n, r) => n + RECORD_HEADER_LEN + r.data.length, 0),
  );
  encodeGlobalHeader(f, w);
  for (const r of f.records) encodeRecord(r, f.byteOrder === 'le', w);
  return w.finish().slice();
}

/** Parse a whole pcap file; throws ParseError (layer 'pcap') on anything malformed. */
export function decodePcap(bytes: Uint8Array): PcapFile {
  const r = new ByteReader(bytes, 'pcap');
  const magic = r.u32('magic');
  const swapped = bswap32(magic);
  if (magic !== MAGIC_USEC && magic !== MAGIC_NSEC && swapped !== MAGIC_USEC && swapped !== MAGIC_NSEC) {
    r.fail('magic', `unknown magic 0x${magic.toString(16).padStart(8, '0')}`, 0);
  }
  const le = magic !== MAGIC_USEC && magic !== MAGIC_NSEC;
  const byteOrder: 'le' | 'be' = le ? 'le' : 'be';
  const precision: 'usec' | 'nsec' = (le ? swapped : magic) === MAGIC_NSEC ? 'nsec' : 'usec';
  const u32 = (field: string) => (le ? bswap32(r.u32(field)) : r.u32(field));
  const u16 = (field: string) => (le ? bswap16(r.u16(field)) : r.u16(field));
  const versionMajor = u16('version_major');
  if (versionMajor !== 2) r.fail('version_major', `unsupported version ${versionMajor}`, 4);
  const versionMinor = u16('version_minor');
  const thiszone = u32('thiszone') | 0;
  const sigfigs = u32('sigfigs');
  const snaplen = u32('snaplen');
  const linkType = u32('network');
  const fracLimit = precision === 'nsec' ? 1_000_000_000 : 1_000_000;
  const records: PcapRecord[] = [];
  while (!r.atEnd) {
    const at = r.offset;
    const tsSec = u32('ts_sec');
    const tsFrac = u32(precision === 'nsec' ? 'ts_nsec' : 'ts_usec');
    if (tsFrac >= fracLimit) r.fail('ts_frac', `${tsFrac} is not below ${fracLimit}`, at + 4);
    const inclLen = u32('incl_len');
    if (inclLen > PCAP_MAX_RECORD) r.fail('incl_len', `${inclLen} exceeds ${PCAP_MAX_RECORD}`, at + 8);
    const origLen = u32('orig_len');
    const data = r.copy(inclLen, 'packet data');
    records.push({ tsSec, tsFrac, origLen, data });
  }
  return { byteOrder, precision, versionMajor, versionMinor, thiszone, sigfigs, snaplen, linkType, records };
}

/** Milliseconds on a Clock to pcap seconds and microseconds (rounded to the microsecond). */
export function msToPcapTime(ms: number): { tsSec: number; tsUsec: number } {
  const us = Math.max(0, Math.round(ms * 1000));
  const tsSec = Math.floor(us / 1_000_000);
  return { tsSec: tsSec >>> 0, tsUsec: us - tsSec * 1_000_000 };
}

export interface PcapWriterOptions {
  linkType?: number;
  snaplen?: number;
  /**
   * Added to every clock time before it is written: Clocks count from their own start, so
   * pass Date.now() taken at that start to see wall-clock dates in Wireshark. Default 0.
   */
  epochMs?: number;
}

/**
 * Writes a microsecond, little-endian pcap (what tcpdump writes on x86), either appending
 * to a file synchronously (a crash loses at most the packet being written) or to memory.
 */
export class PcapWriter {
  private fd: number | undefined;
  private readonly chunks: Uint8Array[] = [];
  private closed = false;
  private count = 0;
  readonly snaplen: number;
  private readonly epochMs: number;

  private constructor(
    private readonly target: { path: string } | 'memory',
    options: PcapWriterOptions,
  ) {
    this.snaplen = options.snaplen ?? PCAP_SNAPLEN;
    this.epochMs = options.epochMs ?? 0;
    const w = new ByteWriter(GLOBAL_HEADER_LEN);
    encodeGlobalHeader(
      {
        byteOrder: 'le',
        precision: 'usec',
        versionMajor: 2,
        versionMinor: 4,
        thiszone: 0,
        sigfigs: 0,
        snaplen: this.snaplen,
        linkType: options.linkType ?? LINKTYPE_RAW,
      },
      w,
    );
    if (target === 'memory') {
      this.chunks.push(w.finish().slice());
    } else {
      this.fd = fs.openSync(target.path, 'w');
      fs.writeSync(this.fd, w.finish());
    }
  }

  /** Create (or truncate) `path` and write the global header. */
  static toFile(path: string, options: PcapWriterOptions = {}): PcapWriter {
    return new PcapWriter({ path }, options);
  }

  static inMemory(options: PcapWriterOptions = {}): PcapWriter {
    return new PcapWriter('memory', options);
  }

  /** Packets written so far. */
  get packets(): number {
    return this.count;
  }

  /** Record one packet seen at `timeMs` on a Clock. Ignored after close(). */
  write(packet: Uint8Array, timeMs: number): void {
    if (this.closed) return;
    const { tsSec, tsUsec } = msToPcapTime(this.epochMs + timeMs);
    const data = packet.length > this.snaplen ? packet.subarray(0, this.snaplen) : packet;
    const w = new ByteWriter(RECORD_HEADER_LEN + data.length);
    encodeRecord({ tsSec, tsFrac: tsUsec, origLen: packet.length, data }, true, w);
    const rec = w.finish();
    if (this.fd !== undefined) fs.writeSync(this.fd, rec);
    else this.chunks.push(rec.slice());
    this.count++;
  }

  /** The file so far (in-memory writers), or the file's contents read back (file writers). */
  bytes(): Uint8Array {
    if (this.target === 'memory') return joinBytes(this.chunks);
    return new Uint8Array(fs.readFileSync(this.target.path));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/** A Link that records what passes through it into a pcap; see recordLink. */
export class RecordedLink implements Link {
  private handler: PacketHandler | undefined;

  constructor(
    readonly inner: Link,
    private readonly writer: Pick<PcapWriter, 'write'>,
    private readonly clock: Clock,
  ) {
    // Packets are recorded as the host hands them over, so with offloads a capture shows
    // super-segments and partial checksums, as tcpdump does on an interface with offloads.
    inner.onPacket((p, info, more) => {
      this.writer.write(p, this.clock.now());
      if (this.handler) this.handler(p, info, more);
      else this.inner.counters.inc('drop.no-handler');
    });
  }

  get name(): string {
    return this.inner.name;
  }
  get mtu(): number {
    return this.inner.mtu;
  }
  get offloads(): LinkOffloads | undefined {
    return this.inner.offloads;
  }
  get counters(): Counters {
    return this.inner.counters;
  }

  send(packet: Uint8Array, info?: PacketInfo): void {
    this.writer.write(packet, this.clock.now());
    this.inner.send(packet, info);
  }

  onPacket(handler: PacketHandler): void {
    this.handler = handler;
  }

  close(): void {
    this.inner.close();
  }
}

/**
 * Record every packet the host sends on `link` and every packet it receives from it, once,
 * stamped with `clock`. Like tcpdump on an interface, it sees what the host hands to the
 * link (before send-side impairments) when wrapped outermost. The writer is not closed
 * with the link: several links may share one writer.
 */
export function recordLink(link: Link, writer: Pick<PcapWriter, 'write'>, clock: Clock): RecordedLink {
  return new RecordedLink(link, writer, clock);
}
