import { ByteReader, type ByteWriter } from '@stepwire/wire';

/**
 * TCP options (RFC 9293 §3.1, §3.2) as plain data. Absent options are undefined, so the
 * hot path (a data segment with only timestamps) carries one small object.
 *
 * Decoding keeps what the options say, not how they were laid out: the encoder writes a
 * canonical layout (the one Linux uses: MSS, SACK-permitted+timestamps, NOP+window scale,
 * ...) so `decode(encode(x))` equals `x` while the layout of a foreign segment is not kept.
 */
export interface SackBlock {
  /** First sequence number of the block. */
  left: number;
  /** Sequence number just past the block. */
  right: number;
}

export interface TcpTimestamps {
  /** TSval: the sender's timestamp clock (RFC 7323 §3.2). */
  value: number;
  /** TSecr: the echoed TSval of the peer, valid when ACK is set. */
  echo: number;
}

export interface TcpUnknownOption {
  kind: number;
  data: Uint8Array;
}

export interface TcpOptions {
  /** Maximum segment size (kind 2, RFC 9293 §3.7.1), only on SYN. */
  mss?: number;
  /** Window scale shift count (kind 3, RFC 7323 §2.2), raw as received (may exceed 14). */
  windowScale?: number;
  /** SACK-permitted (kind 4, RFC 2018 §2). */
  sackPermitted?: boolean;
  /** SACK blocks (kind 5, RFC 2018 §3), at most 4 fit. */
  sack?: SackBlock[];
  /** Timestamps (kind 8, RFC 7323 §3). */
  timestamps?: TcpTimestamps;
  /** TCP Fast Open cookie (kind 34, RFC 7413 §4.1.1); empty = cookie request. */
  fastOpen?: Uint8Array;
  /** Any other option, kept so a reader can see it. */
  unknown?: TcpUnknownOption[];
}

export const OPT_EOL = 0;
export const OPT_NOP = 1;
export const OPT_MSS = 2;
export const OPT_WSCALE = 3;
export const OPT_SACK_PERMITTED = 4;
export const OPT_SACK = 5;
export const OPT_TIMESTAMPS = 8;
export const OPT_FASTOPEN = 34;

/**
 * Field offsets within one option (RFC 9293 §3.1, "Case 2"): every option but EOL and NOP
 * is Kind, Length (counting the Kind and Length bytes too), then Length-2 bytes of data.
 */
export const TCP_OPTION = Object.freeze({ kind: 0, length: 1, data: 2 } as const);

/**
 * The Length byte of each fixed-size option: MSS (RFC 9293 §3.2), Window Scale
 * (RFC 7323 §2.2), SACK-Permitted (RFC 2018 §2), Timestamps (RFC 7323 §3.2).
 */
export const OPT_LENGTH = Object.freeze({
  mss: 4,
  windowScale: 3,
  sackPermitted: 2,
  timestamps: 10,
} as const);

/** A SACK block is two 32-bit edges (RFC 2018 §3): Length = 2 + 8n. */
export const SACK_BLOCK_LENGTH = 8;

/** The options area is at most 40 bytes (data offset 15 words minus the 5-word header). */
export const MAX_OPTIONS_LENGTH = 40;

/** Bytes the canonical encoding of `o` takes, padded to a multiple of 4. */
export function optionsLength(o: TcpOptions): number {
  let n = 0;
  if (o.mss !== undefined) n += OPT_LENGTH.mss;
  if (o.sackPermitted && o.timestamps) n += OPT_LENGTH.sackPermitted + OPT_LENGTH.timestamps;
  else {
    if (o.timestamps) n += pad4(OPT_LENGTH.timestamps);
    if (o.sackPermitted) n += pad4(OPT_LENGTH.sackPermitted);
  }
  if (o.windowScale !== undefined) n += pad4(OPT_LENGTH.windowScale);
  if (o.sack && o.sack.length > 0) n += pad4(sackLength(o.sack.length));
  if (o.fastOpen) n += pad4(TCP_OPTION.data + o.fastOpen.length);
  if (o.unknown) for (const u of o.unknown) n += pad4(TCP_OPTION.data + u.data.length);
  return n;
}

const pad4 = (n: number): number => (n + 3) & ~3;
const sackLength = (blocks: number): number => TCP_OPTION.data + SACK_BLOCK_LENGTH * blocks;

/**
 * Write the canonical layout. Each option is NOP-padded to a 4-byte boundary so a reader
 * of a hexdump finds every option word-aligned, as RFC 7323 Appendix A suggests.
 */
export function writeOptions(w: ByteWriter, o: TcpOptions): void {
  if (o.mss !== undefined) w.u8(OPT_MSS).u8(OPT_LENGTH.mss).u16(o.mss);
  if (o.sackPermitted && o.timestamps) {
    w.u8(OPT_SACK_PERMITTED).u8(OPT_LENGTH.sackPermitted);
    w.u8(OPT_TIMESTAMPS).u8(OPT_LENGTH.timestamps).u32(o.timestamps.value).u32(o.timestamps.echo);
  } else {
    if (o.timestamps) {
      nops(w, OPT_LENGTH.timestamps);
      w.u8(OPT_TIMESTAMPS).u8(OPT_LENGTH.timestamps).u32(o.timestamps.value).u32(o.timestamps.echo);
    }
    if (o.sackPermitted)
      nops(w, OPT_LENGTH.sackPermitted).u8(OPT_SACK_PERMITTED).u8(OPT_LENGTH.sackPermitted);
  }
  if (o.windowScale !== undefined)
    nops(w, OPT_LENGTH.windowScale).u8(OPT_WSCALE).u8(OPT_LENGTH.windowScale).u8(o.windowScale);
  if (o.sack && o.sack.length > 0) {
    const len = sackLength(o.sack.length);
    nops(w, len).u8(OPT_SACK).u8(len);
    for (const b of o.sack) w.u32(b.left).u32(b.right);
  }
  if (o.fastOpen) writePadded(w, OPT_FASTOPEN, o.fastOpen);
  if (o.unknown) for (const u of o.unknown) writePadded(w, u.kind, u.data);
}

/** The NOPs that put an option of `len` bytes at the end of a 4-byte word (leading padding). */
function nops(w: ByteWriter, len: number): ByteWriter {
  for (let i = len; i < pad4(len); i++) w.u8(OPT_NOP);
  return w;
}

function writePadded(w: ByteWriter, kind: number, data: Uint8Array): void {
  const len = TCP_OPTION.data + data.length;
  nops(w, len).u8(kind).u8(len).bytes(data);
}

/**
 * Parse the options area (RFC 9293 §3.1 "Options"). An option whose length byte is below 2
 * or runs past the area, or a known option with the wrong length, is a ParseError: the
 * segment cannot be trusted (RFC 9293 §3.1, "must be prepared to handle an illegal option
 * length ... by resetting"; we drop instead, RFC 1122 §4.2.2.5 robustness).
 */
export function readOptions(r: ByteReader): TcpOptions {
  const o: TcpOptions = {};
  while (!r.atEnd) {
    const at = r.offset;
    const kind = r.u8('option kind');
    if (kind === OPT_EOL) break; // RFC 9293 §3.1: the rest is padding
    if (kind === OPT_NOP) continue;
    const len = r.u8('option length');
    // Errors about the option's size point at its Length byte (ParseError's offset rule).
    const lengthAt = at + TCP_OPTION.length;
    const dataLength = len - TCP_OPTION.data;
    if (dataLength < 0) r.fail('option length', `kind ${kind} length ${len} < 2`, lengthAt);
    if (dataLength > r.remaining)
      r.fail('option length', `kind ${kind} length ${len} runs past the options`, lengthAt);
    switch (kind) {
      case OPT_MSS:
        if (len !== OPT_LENGTH.mss) r.fail('mss', `length ${len} != ${OPT_LENGTH.mss}`, lengthAt);
        o.mss = r.u16('mss');
        break;
      case OPT_WSCALE:
        if (len !== OPT_LENGTH.windowScale)
          r.fail('window scale', `length ${len} != ${OPT_LENGTH.windowScale}`, lengthAt);
        o.windowScale = r.u8('window scale');
        break;
      case OPT_SACK_PERMITTED:
        if (len !== OPT_LENGTH.sackPermitted)
          r.fail('sack-permitted', `length ${len} != ${OPT_LENGTH.sackPermitted}`, lengthAt);
        o.sackPermitted = true;
        break;
      case OPT_SACK: {
        if (dataLength < SACK_BLOCK_LENGTH || dataLength % SACK_BLOCK_LENGTH !== 0)
          r.fail('sack', `length ${len} is not 2+8n, n>=1`, lengthAt);
        const blocks: SackBlock[] = [];
        for (let i = 0; i < dataLength / SACK_BLOCK_LENGTH; i++)
          blocks.push({ left: r.u32('sack left'), right: r.u32('sack right') });
        o.sack = blocks;
        break;
      }
      case OPT_TIMESTAMPS:
        if (len !== OPT_LENGTH.timestamps)
          r.fail('timestamps', `length ${len} != ${OPT_LENGTH.timestamps}`, lengthAt);
        o.timestamps = { value: r.u32('tsval'), echo: r.u32('tsecr') };
        break;
      case OPT_FASTOPEN:
        // RFC 7413 §4.1.1: cookie 4..16 bytes, or none for a request. Other lengths are
        // kept and judged by the server's validator (an invalid cookie is just not valid).
        o.fastOpen = r.copy(dataLength, 'fastopen cookie');
        break;
      default:
        (o.unknown ??= []).push({ kind, data: r.copy(dataLength, 'option data') });
    }
  }
  return o;
}

/** `readOptions` over a standalone byte string (used by tests and tools). */
export function decodeOptions(bytes: Uint8Array): TcpOptions {
  return readOptions(new ByteReader(bytes, 'tcp'));
}

/** A compact rendering for trace summaries: 'mss=1460 ws=7 sack ts'. */
export function describeOptions(o: TcpOptions): string {
  const parts: string[] = [];
  if (o.mss !== undefined) parts.push(`mss=${o.mss}`);
  if (o.windowScale !== undefined) parts.push(`ws=${o.windowScale}`);
  if (o.sackPermitted) parts.push('sack');
  if (o.timestamps) parts.push('ts');
  if (o.sack) parts.push(`sack=${o.sack.map((b) => `${b.left}-${b.right}`).join(',')}`);
  if (o.fastOpen) parts.push(o.fastOpen.length === 0 ? 'tfo=req' : `tfo=${o.fastOpen.length}B`);
  if (o.unknown) for (const u of o.unknown) parts.push(`opt${u.kind}`);
  return parts.join(' ');
}
