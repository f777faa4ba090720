import { IPPROTO_TCP, type PseudoHeader, pseudoHeaderSum } from '@stepwire/ip';
import {
  ByteReader,
  ByteWriter,
  ParseError,
  readU16,
  readU32,
  truncated,
  finishChecksum as wire_finishChecksum,
  foldSum as wire_foldSum,
  sum16 as wire_sum16,
  writeU16,
  writeU32,
} from '@stepwire/wire';
import {
  describeOptions,
  MAX_OPTIONS_LENGTH,
  optionsLength,
  readOptions,
  type TcpOptions,
  writeOptions,
} from './options.ts';

// Bound once to locals: each access to an imported binding can cost a getter call under
// some module loaders (esbuild/tsx, vite-node), and these run once per segment.
const finishChecksum = wire_finishChecksum;
const sum16 = wire_sum16;
const foldSum = wire_foldSum;

/**
 * The TCP header (RFC 9293 §3.1) as plain data.
 *
 * `flags` is the 12 bits after the data offset: the eight control bits of RFC 9293 §3.1
 * (CWR ECE URG ACK PSH RST SYN FIN) in the low byte and the four reserved bits above them,
 * kept so that a decoded segment re-encodes to the same bytes.
 *
 * `payload` of a decoded segment is a view into the input bytes, not a copy: the cost of a
 * copy per segment is what the receive path avoids. A driver that reuses its buffers must
 * copy before handing the segment on.
 */
export interface TcpSegment {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  urgentPointer: number;
  options: TcpOptions;
  payload: Uint8Array;
}

export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const PSH = 0x08;
export const ACK = 0x10;
export const URG = 0x20;
export const ECE = 0x40;
export const CWR = 0x80;

export const TCP_HEADER_LENGTH = 20;

/**
 * Byte offsets of the fixed header's fields (RFC 9293 §3.1): the one place the layout is
 * written. `dataOffset` is the 16-bit word of Data Offset, reserved bits and flags.
 */
export const TCP = Object.freeze({
  srcPort: 0,
  dstPort: 2,
  seq: 4,
  ack: 8,
  dataOffset: 12,
  window: 14,
  checksum: 16,
  urgentPointer: 18,
} as const);

// The addresses of the pseudo-header (RFC 9293 §3.1; RFC 8200 §8.1): one type for every
// transport, from ip. Re-exported so callers of this codec need not import ip for it.
export type { PseudoHeader };

export interface DecodeOptions {
  /**
   * Verify the checksum over the pseudo-header and segment (RFC 9293 §3.1). Default true;
   * false only for bytes whose checksum is known to be unfinished or already checked.
   */
  verifyChecksum?: boolean;
}

/** Sequence space a segment occupies: payload plus one each for SYN and FIN (RFC 9293 §3.4). */
export function segmentLength(s: TcpSegment): number {
  return s.payload.length + (s.flags & SYN ? 1 : 0) + (s.flags & FIN ? 1 : 0);
}

const FLAG_NAMES: [number, string][] = [
  [CWR, 'CWR'],
  [ECE, 'ECE'],
  [URG, 'URG'],
  [SYN, 'SYN'],
  [FIN, 'FIN'],
  [RST, 'RST'],
  [PSH, 'PSH'],
  [ACK, 'ACK'],
];

export function flagsToString(flags: number): string {
  const names: string[] = [];
  for (const [bit, name] of FLAG_NAMES) if (flags & bit) names.push(name);
  if (flags & 0xf00) names.push(`res=${(flags >> 8) & 0xf}`);
  return names.length ? names.join(',') : 'none';
}

/** One ladder line: 'SYN,ACK seq=4096 ack=1 win=65535 len=0 mss=1460 ws=7 sack ts'. */
export function describeSegment(s: TcpSegment): string {
  let out = `${flagsToString(s.flags)} seq=${s.seq}`;
  if (s.flags & ACK) out += ` ack=${s.ack}`;
  out += ` win=${s.window}`;
  if (s.payload.length) out += ` len=${s.payload.length}`;
  if (s.flags & URG) out += ` urp=${s.urgentPointer}`;
  const o = describeOptions(s.options);
  return o ? `${out} ${o}` : out;
}

// ---------------------------------------------------------------------------------------

/**
 * The unfolded pseudo-header sum for a TCP segment of `length` bytes: IPv4 (RFC 9293 §3.1)
 * src, dst, zero, PTCL, TCP length; IPv6 (RFC 8200 §8.1) src, dst, upper-layer length,
 * zero, next header. ip's helper parses (and caches) the address text; an address ip
 * refuses (leading zeros, a zone id) is a RangeError, as any bad pseudo-header was here.
 */
function pseudoSum(p: PseudoHeader, length: number): number {
  return pseudoHeaderSum(p.src, p.dst, IPPROTO_TCP, length);
}

// ---------------------------------------------------------------------------------------

/**
 * Encode a segment with its checksum over the pseudo-header. Throws RangeError when the
 * options do not fit in 40 bytes or a field is out of range (a programming error, not
 * input from the network).
 */
export function encodeSegment(s: TcpSegment, pseudo: PseudoHeader): Uint8Array {
  const out = new Uint8Array(segmentHeaderLength(s) + s.payload.length);
  encodeSegmentInto(s, pseudo, out, 0);
  return out;
}

/** True when the options are timestamps alone, the layout of nearly every data segment. */
function timestampsOnly(o: TcpOptions): boolean {
  return (
    o.timestamps !== undefined &&
    o.mss === undefined &&
    o.windowScale === undefined &&
    !o.sackPermitted &&
    o.sack === undefined &&
    o.fastOpen === undefined &&
    o.unknown === undefined
  );
}

/** Header length of `s` on the wire: 20 bytes and its options padded to 32 bits (RFC 9293 §3.1 Data Offset). */
export function segmentHeaderLength(s: Pick<TcpSegment, 'options'>): number {
  const optLen = timestampsOnly(s.options) ? 12 : optionsLength(s.options);
  if (optLen > MAX_OPTIONS_LENGTH) throw new RangeError(`tcp: options take ${optLen} bytes > 40`);
  return TCP_HEADER_LENGTH + optLen;
}

/**
 * How encodeSegmentInto fills the checksum field: 'full' (the default) the Internet
 * checksum of RFC 9293 §3.1; 'partial' only the folded pseudo-header sum, for a link that
 * completes it (checksum offload: the sum over the segment from its first byte is added
 * and complemented there, as Linux's CHECKSUM_PARTIAL and virtio's NEEDS_CSUM have it).
 */
export type ChecksumMode = 'full' | 'partial';

/**
 * Encode `s` into `out` at `offset` and return the bytes written: the same bytes as
 * encodeSegment (with mode 'full'). A payload that already sits in `out` right after the
 * header is left in place, so a sender can put its data in a buffer once, with room in
 * front for the TCP and IP headers, and have both written there.
 */
export function encodeSegmentInto(
  s: TcpSegment,
  pseudo: PseudoHeader,
  out: Uint8Array,
  offset: number,
  mode: ChecksumMode = 'full',
): number {
  const o = s.options;
  const tsOnly = timestampsOnly(o);
  const hdrLen = tsOnly ? TCP_HEADER_LENGTH + 12 : segmentHeaderLength(s);
  const total = hdrLen + s.payload.length;
  if (offset < 0 || offset + total > out.length)
    throw new RangeError(`tcp: segment of ${total} bytes does not fit at ${offset} in ${out.length}`);
  const at = offset;
  put16(out, at + TCP.srcPort, s.srcPort);
  put16(out, at + TCP.dstPort, s.dstPort);
  put32(out, at + TCP.seq, s.seq);
  put32(out, at + TCP.ack, s.ack);
  put16(out, at + TCP.dataOffset, ((hdrLen / 4) << 12) | (s.flags & 0x0fff));
  put16(out, at + TCP.window, s.window);
  put16(out, at + TCP.checksum, 0);
  put16(out, at + TCP.urgentPointer, s.urgentPointer);
  if (hdrLen === TCP_HEADER_LENGTH) {
    // No options.
  } else if (tsOnly) {
    // The data-segment fast path: NOP, NOP, timestamps (RFC 7323 Appendix A), in place.
    const ts = o.timestamps as { value: number; echo: number };
    const t = at + TCP_HEADER_LENGTH;
    out[t] = 1;
    out[t + 1] = 1;
    out[t + 2] = 8;
    out[t + 3] = 10;
    put32(out, at + TCP_HEADER_LENGTH + 4, ts.value);
    put32(out, at + TCP_HEADER_LENGTH + 8, ts.echo);
  } else {
    const optLen = hdrLen - TCP_HEADER_LENGTH;
    const w = new ByteWriter(optLen);
    writeOptions(w, o);
    if (w.length !== optLen) throw new RangeError('tcp: options length mismatch');
    out.set(w.finish(), at + TCP_HEADER_LENGTH);
  }
  const p = s.payload;
  if (p.length > 0 && !(p.buffer === out.buffer && p.byteOffset === out.byteOffset + at + hdrLen)) {
    out.set(p, at + hdrLen);
  }
  const pseudoSum = pseudoHeaderSum(pseudo.src, pseudo.dst, IPPROTO_TCP, total);
  // 'partial': the pseudo-header sum folded to 16 bits, not complemented; whoever
  // completes it sums the segment from its first byte (this field included) and
  // complements, which gives the checksum 'full' writes.
  const ck =
    mode === 'partial'
      ? foldSum(pseudoSum)
      : finishChecksum(
          sum16(at === 0 && total === out.length ? out : out.subarray(at, at + total), pseudoSum),
        );
  put16(out, at + TCP.checksum, ck);
  return total;
}

/**
 * Decode and verify a segment. Any malformation (short header, data offset < 5 or past the
 * end, bad option lengths, bad checksum) is a ParseError naming the field and offset.
 */
export function decodeSegment(bytes: Uint8Array, pseudo: PseudoHeader, opts?: DecodeOptions): TcpSegment {
  // A cut-short header names the field it ends in, at that field's offset (wire's rule).
  if (bytes.length < TCP_HEADER_LENGTH) throw truncated(LAYER, TCP, bytes.length, TCP_HEADER_LENGTH);
  const offFlags = get16(bytes, TCP.dataOffset);
  const hdrLen = (offFlags >> 12) * 4;
  if (hdrLen < TCP_HEADER_LENGTH) {
    throw new ParseError(LAYER, 'dataOffset', TCP.dataOffset, `data offset of ${hdrLen / 4} words < 5`);
  }
  if (hdrLen > bytes.length) {
    throw new ParseError(
      LAYER,
      'dataOffset',
      TCP.dataOffset,
      `data offset: header of ${hdrLen} bytes exceeds segment of ${bytes.length}`,
    );
  }
  if (opts?.verifyChecksum !== false) {
    const sum = finishChecksum(sum16(bytes, pseudoSum(pseudo, bytes.length)));
    if (sum !== 0) throw new ParseError(LAYER, 'checksum', TCP.checksum, 'bad checksum');
  }
  const srcPort = get16(bytes, TCP.srcPort);
  const dstPort = get16(bytes, TCP.dstPort);
  const seq = get32(bytes, TCP.seq);
  const ack = get32(bytes, TCP.ack);
  const window = get16(bytes, TCP.window);
  const urgentPointer = get16(bytes, TCP.urgentPointer);
  let options: TcpOptions;
  const o = TCP_HEADER_LENGTH;
  if (hdrLen === 32 && bytes[o] === 1 && bytes[o + 1] === 1 && bytes[o + 2] === 8 && bytes[o + 3] === 10) {
    // The common layout of a data segment: NOP, NOP, timestamps (RFC 7323 Appendix A).
    options = { timestamps: { value: get32(bytes, o + 4), echo: get32(bytes, o + 8) } };
  } else if (hdrLen > TCP_HEADER_LENGTH) {
    options = readOptions(
      new ByteReader(bytes.subarray(TCP_HEADER_LENGTH, hdrLen), 'tcp', TCP_HEADER_LENGTH),
    );
  } else {
    options = {};
  }
  // A pure ACK (a third of a bulk transfer's segments) shares one empty payload: no view
  // of nothing built per segment.
  const payload =
    hdrLen === bytes.length
      ? NO_PAYLOAD
      : new Uint8Array(bytes.buffer, bytes.byteOffset + hdrLen, bytes.length - hdrLen);
  return { srcPort, dstPort, seq, ack, flags: offFlags & 0x0fff, window, urgentPointer, options, payload };
}

// wire's field readers and writers, bound once to locals (see the checksum helpers above).
const get16 = readU16;
const get32 = readU32;
const put16 = writeU16;
const put32 = writeU32;

const LAYER = 'tcp';
const NO_PAYLOAD = new Uint8Array(0);

/** Ports only, for demultiplexing and ICMP error matching (needs the first 4 bytes). */
export function peekPorts(bytes: Uint8Array): { srcPort: number; dstPort: number } | undefined {
  if (bytes.length < TCP.dstPort + 2) return undefined;
  return { srcPort: get16(bytes, TCP.srcPort), dstPort: get16(bytes, TCP.dstPort) };
}
