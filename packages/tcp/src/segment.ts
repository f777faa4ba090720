import { ByteReader, ByteWriter, finishChecksum, ParseError, sum16 } from '@stepwire/wire';
import {
  describeOptions,
  MAX_OPTIONS_LENGTH,
  optionsLength,
  readOptions,
  type TcpOptions,
  writeOptions,
} from './options.ts';

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

/** The addresses of the pseudo-header (RFC 9293 §3.1; RFC 8200 §8.1 for IPv6). */
export interface PseudoHeader {
  src: string;
  dst: string;
}

export interface DecodeOptions {
  /** Skip checksum verification (e.g. the link already verified it). Default false. */
  skipChecksum?: boolean;
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
// Pseudo-header sums. Parsing an address string per segment would cost more than the rest
// of the header, so the 16-bit sum of each address is cached (a small bounded map).

const addrSums = new Map<string, number>();

function parseIpv4Words(s: string): number[] | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const b: number[] = [];
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    b.push(v);
  }
  return [(b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!];
}

function parseIpv6Words(s: string): number[] | undefined {
  let text = s;
  const pct = text.indexOf('%');
  if (pct >= 0) text = text.slice(0, pct);
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.indexOf('.', lastColon) >= 0) {
    const v4 = parseIpv4Words(text.slice(lastColon + 1));
    if (!v4) return undefined;
    tail = v4;
    const before = text.slice(0, lastColon + 1);
    text = before.endsWith('::') ? before : text.slice(0, lastColon);
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const group = (h: string): number[] | undefined => {
    if (h === '') return [];
    const out: number[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const head = group(halves[0]!);
  const rest = halves.length === 2 ? group(halves[1]!) : [];
  if (!head || !rest) return undefined;
  const given = head.length + rest.length + tail.length;
  if (halves.length === 2) {
    if (given > 7) return undefined;
    return [...head, ...new Array<number>(8 - given).fill(0), ...rest, ...tail];
  }
  if (given !== 8) return undefined;
  return [...head, ...tail];
}

/** 16-bit one's-complement partial sum of an IPv4 or IPv6 address in text form. */
export function addressSum(addr: string): number {
  const cached = addrSums.get(addr);
  if (cached !== undefined) return cached;
  const words = addr.includes(':') ? parseIpv6Words(addr) : parseIpv4Words(addr);
  if (!words) throw new RangeError(`tcp: not an IP address: ${addr}`);
  let sum = 0;
  for (const w of words) sum += w;
  if (addrSums.size >= 4096) addrSums.clear();
  addrSums.set(addr, sum);
  return sum;
}

/** The unfolded pseudo-header sum for a TCP segment of `length` bytes (protocol 6). */
export function pseudoHeaderSum(p: PseudoHeader, length: number): number {
  // IPv4 (RFC 9293 §3.1): src, dst, zero, PTCL, TCP length(16).
  // IPv6 (RFC 8200 §8.1): src, dst, upper-layer length(32), zero(24), next header.
  // Both reduce to the same one's-complement sum.
  return addressSum(p.src) + addressSum(p.dst) + 6 + (length >>> 16) + (length & 0xffff);
}

// ---------------------------------------------------------------------------------------

/**
 * Encode a segment with its checksum over the pseudo-header. Throws RangeError when the
 * options do not fit in 40 bytes or a field is out of range (a programming error, not
 * input from the network).
 */
export function encodeSegment(s: TcpSegment, pseudo: PseudoHeader): Uint8Array {
  const optLen = optionsLength(s.options);
  if (optLen > MAX_OPTIONS_LENGTH) throw new RangeError(`tcp: options take ${optLen} bytes > 40`);
  const hdrLen = TCP_HEADER_LENGTH + optLen;
  const total = hdrLen + s.payload.length;
  const w = new ByteWriter(total);
  w.u16(s.srcPort).u16(s.dstPort).u32(s.seq).u32(s.ack);
  w.u16(((hdrLen / 4) << 12) | (s.flags & 0x0fff));
  w.u16(s.window).u16(0).u16(s.urgentPointer);
  if (optLen) writeOptions(w, s.options);
  if (w.length !== hdrLen) throw new RangeError('tcp: options length mismatch');
  w.bytes(s.payload);
  const out = w.finish();
  const ck = finishChecksum(sum16(out, pseudoHeaderSum(pseudo, total)));
  out[16] = ck >> 8;
  out[17] = ck & 0xff;
  return out;
}

/**
 * Decode and verify a segment. Any malformation (short header, data offset < 5 or past the
 * end, bad option lengths, bad checksum) is a ParseError naming the field and offset.
 */
export function decodeSegment(bytes: Uint8Array, pseudo: PseudoHeader, opts?: DecodeOptions): TcpSegment {
  const r = new ByteReader(bytes, 'tcp');
  const srcPort = r.u16('source port');
  const dstPort = r.u16('destination port');
  const seq = r.u32('sequence number');
  const ack = r.u32('acknowledgment number');
  const offFlags = r.u16('data offset');
  const window = r.u16('window');
  r.u16('checksum');
  const urgentPointer = r.u16('urgent pointer');
  const hdrLen = (offFlags >> 12) * 4;
  if (hdrLen < TCP_HEADER_LENGTH) r.fail('data offset', `${hdrLen / 4} words < 5`, 12);
  if (hdrLen > bytes.length)
    r.fail('data offset', `header of ${hdrLen} bytes exceeds segment of ${bytes.length}`, 12);
  if (!opts?.skipChecksum) {
    const sum = finishChecksum(sum16(bytes, pseudoHeaderSum(pseudo, bytes.length)));
    if (sum !== 0) throw new ParseError('tcp', 'checksum', 16, 'bad checksum');
  }
  const options = hdrLen > TCP_HEADER_LENGTH ? readOptions(r.sub(hdrLen - TCP_HEADER_LENGTH, 'options')) : {};
  const payload = bytes.subarray(hdrLen);
  return { srcPort, dstPort, seq, ack, flags: offFlags & 0x0fff, window, urgentPointer, options, payload };
}

/** Ports only, for demultiplexing and ICMP error matching (needs the first 4 bytes). */
export function peekPorts(bytes: Uint8Array): { srcPort: number; dstPort: number } | undefined {
  if (bytes.length < 4) return undefined;
  return { srcPort: (bytes[0]! << 8) | bytes[1]!, dstPort: (bytes[2]! << 8) | bytes[3]! };
}
