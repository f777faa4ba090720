/**
 * Software GRO (generic receive offload) for TCP: the in-order segments of one flow that
 * arrive in one batch from a link (a TUN reader's batch, a NAPI poll in Linux) joined into
 * one super-segment before IP and TCP see them, so the receiver pays its per-segment cost
 * once per run of segments instead of once per packet. The counterpart of gso.ts.
 *
 * The rules are Linux's (net/ipv4/tcp_offload.c tcp_gro_receive, net/ipv4/af_inet.c
 * inet_gro_receive, net/ipv6/ip6_offload.c ipv6_gro_receive): a segment joins the run of
 * its flow when
 *  - it is the same flow: IP version, addresses, ports; the same IP header apart from the
 *    lengths, IPv4's Identification and header checksum (TOS, TTL, DF; IPv6 traffic class,
 *    flow label, hop limit), no IPv4 options, no IPv6 extension headers, not a fragment;
 *  - its sequence number follows the run's last data octet (RFC 9293 §3.4) and it has data;
 *  - its TCP header is the run's byte for byte — acknowledgment, window, options (so equal
 *    timestamps) — except CWR, PSH and FIN; it carries no CWR (the first segment after a
 *    window cut is delivered as itself, RFC 3168 §6.1.2), SYN, RST or URG;
 *  - it is no longer than the run's first segment, whose length is the run's `gso.size`;
 *  - the run stays within one IP datagram (65535 octets).
 * A segment shorter than the first, or with PSH or FIN, ends its run (it joins, then the
 * run is closed), as in Linux. A segment whose TCP checksum fails is never joined: it goes
 * up as it came, for TCP to count and drop.
 *
 * The joined packet is a valid datagram: IPv4 Total Length and header checksum, IPv6
 * Payload Length, the first segment's TCP header with PSH and FIN of the last, and a TCP
 * checksum computed from the pieces' own sums (RFC 1071 §2: the sum of a whole is the
 * sum of its parts, a part at an odd offset byte-swapped), so a capture of it verifies.
 * It travels with PacketInfo { csum 'valid', gso } as a GRO packet from the kernel does.
 */
import type { PacketInfo } from '@stepwire/link';
import { finishChecksum, foldSum, readU16, readU32, subview, sum16, writeU16 } from '@stepwire/wire';
import { GSO_MAX_SIZE, pseudoSum, sumBytes, TCP_GSO_FIELD } from './gso.ts';
import { IPV4, IPV4_MIN_HEADER } from './ipv4.ts';
import { IPV6, IPV6_HEADER_LENGTH } from './ipv6.ts';
import { IPPROTO_TCP } from './types.ts';

/** A packet as a link hands it over. */
export interface GroPacket {
  packet: Uint8Array;
  info?: PacketInfo;
}

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const PSH = 0x08;
const URG = 0x20;
const CWR = 0x80;
const TCP_MIN_HEADER = 20;

/** One segment of a run, with what joining it needs. */
interface Piece {
  packet: Uint8Array;
  /** Where the data starts (IP + TCP headers) and how long it is. */
  hdrLen: number;
  dataLen: number;
  /** The unfolded sum of the data, or undefined when the link vouched for the checksum. */
  dataSum: number | undefined;
}

/** A run of one flow's segments being joined. */
interface Run {
  /** The first segment as it came: what goes up when nothing joins it. */
  item: GroPacket;
  v4: boolean;
  l4: number;
  pieces: Piece[];
  /** Data bytes in the run, the first piece's data length (the cut size), the next sequence number. */
  bytes: number;
  size: number;
  nextSeq: number;
  open: boolean;
}

/**
 * Join the in-order TCP segments of each flow in `batch` (see the module comment). Packets
 * that cannot join anything come back untouched; every flow's packets keep their order,
 * and a run takes the place of its first segment. `stats`, when given, counts the joins;
 * `onJoin` hears of each joined packet and how many segments it holds.
 */
export function groCoalesce(
  batch: readonly GroPacket[],
  stats?: { inc(name: string, by?: number): void },
  onJoin?: (joined: GroPacket, pieces: number) => void,
): GroPacket[] {
  if (batch.length < 2) return batch.slice();
  const slots: (GroPacket | Run)[] = [];
  // The runs still open, one per flow at most: a batch holds few flows, so they are
  // found by comparing header bytes (as Linux's gro_list), not through a key built per packet.
  const open: Run[] = [];
  for (const item of batch) {
    const c = candidate(item);
    if (c === undefined) {
      // Not a segment that can join (another protocol, IP options, a bad checksum): its
      // flow is not known cheaply, so every open run ends here and nothing overtakes it.
      for (const r of open) r.open = false;
      open.length = 0;
      slots.push(item);
      continue;
    }
    const { seq, flags, piece } = c;
    const b = piece.packet;
    let at = -1;
    for (let i = 0; i < open.length; i++) {
      if (sameFlow((open[i] as Run).item.packet, b, c.v4)) {
        at = i;
        break;
      }
    }
    const run = at < 0 ? undefined : (open[at] as Run);
    if (run !== undefined && joins(run, b, piece, seq, flags)) {
      run.pieces.push(piece);
      run.bytes += piece.dataLen;
      run.nextSeq = (run.nextSeq + piece.dataLen) >>> 0;
      // tcp_gro_receive: a short segment or one with PSH/FIN (URG, RST, SYN never get here) ends the run.
      if (piece.dataLen < run.size || flags & (PSH | FIN)) {
        run.open = false;
        open.splice(at, 1);
      }
      continue;
    }
    if (run !== undefined) {
      run.open = false;
      open.splice(at, 1);
    }
    if (flags & (CWR | SYN | RST | URG) || piece.dataLen === 0) {
      slots.push(item);
      continue;
    }
    const fresh: Run = {
      item,
      v4: c.v4,
      l4: c.l4,
      pieces: [piece],
      bytes: piece.dataLen,
      size: piece.dataLen,
      nextSeq: (seq + piece.dataLen) >>> 0,
      open: !(flags & (PSH | FIN)),
    };
    slots.push(fresh);
    if (fresh.open) open.push(fresh);
  }
  const out: GroPacket[] = [];
  for (let i = 0; i < slots.length; i++) {
    const s = slots[i] as GroPacket | Run;
    if (!('pieces' in s)) out.push(s);
    else if (s.pieces.length === 1) out.push(s.item);
    else {
      const joined = join(s);
      out.push(joined);
      onJoin?.(joined, s.pieces.length);
      stats?.inc('ip.rx.gro-runs');
      stats?.inc('ip.rx.gro-joined', s.pieces.length);
    }
  }
  return out;
}

/**
 * Whether two candidate segments are of one flow with the same IP header fields: IPv4
 * TOS, TTL, addresses and ports; IPv6 version/traffic class/flow label, hop limit,
 * addresses and ports (inet_gro_receive, ipv6_gro_receive, tcp_gro_receive).
 */
function sameFlow(h: Uint8Array, b: Uint8Array, v4: boolean): boolean {
  if (v4) {
    if ((h[0] ?? 0) >> 4 !== 4 || h[IPV4.tos] !== b[IPV4.tos] || h[IPV4.ttl] !== b[IPV4.ttl]) return false;
    for (let i = IPV4.src; i < IPV4_MIN_HEADER + 4; i++) if (h[i] !== b[i]) return false;
    return true;
  }
  if ((h[0] ?? 0) >> 4 !== 6 || h[IPV6.hopLimit] !== b[IPV6.hopLimit]) return false;
  for (let i = 0; i < 4; i++) if (h[i] !== b[i]) return false;
  for (let i = IPV6.src; i < IPV6_HEADER_LENGTH + 4; i++) if (h[i] !== b[i]) return false;
  return true;
}

/**
 * A TCP segment that might join a run: its sequence number, flags and piece. Undefined
 * for anything else (not TCP, IPv4 options, IPv6 extension headers, a fragment, malformed,
 * a bad checksum).
 */
function candidate(
  item: GroPacket,
): { v4: boolean; seq: number; flags: number; l4: number; piece: Piece } | undefined {
  const b = item.packet;
  const first = b[0] ?? 0;
  let l4: number;
  let end: number;
  let v4: boolean;
  if (first === 0x45) {
    // IPv4 without options (IHL 5, RFC 791 §3.1), TCP, not a fragment, DF set (an atomic
    // datagram, RFC 6864 §4: its Identification means nothing, so pieces may differ in it).
    if (b.length < IPV4_MIN_HEADER || b[IPV4.protocol] !== IPPROTO_TCP) return undefined;
    if (b[IPV4.flags] !== 0x40 || b[IPV4.flags + 1] !== 0) return undefined;
    end = readU16(b, IPV4.totalLength);
    if (end > b.length || end < IPV4_MIN_HEADER + TCP_MIN_HEADER) return undefined;
    if (finishChecksum(sumBytes(b, 0, IPV4_MIN_HEADER)) !== 0) return undefined;
    l4 = IPV4_MIN_HEADER;
    v4 = true;
  } else if (first >> 4 === 6) {
    // IPv6 with TCP straight after the fixed header (RFC 8200 §3).
    if (b.length < IPV6_HEADER_LENGTH || b[IPV6.nextHeader] !== IPPROTO_TCP) return undefined;
    end = IPV6_HEADER_LENGTH + readU16(b, IPV6.payloadLength);
    if (end > b.length || end < IPV6_HEADER_LENGTH + TCP_MIN_HEADER) return undefined;
    l4 = IPV6_HEADER_LENGTH;
    v4 = false;
  } else return undefined;
  const doff = ((b[l4 + TCP_GSO_FIELD.dataOffset] ?? 0) >> 4) * 4;
  if (doff < TCP_MIN_HEADER || l4 + doff > end) return undefined;
  const hdrLen = l4 + doff;
  const dataLen = end - hdrLen;
  const packet = end === b.length ? b : subview(b, 0, end);
  let dataSum: number | undefined;
  if (item.info?.csum === undefined) {
    // RFC 9293 §3.1: verified here, as TCP would; the joined packet is then marked valid.
    dataSum = sum16(subview(packet, hdrLen, hdrLen + dataLen));
    const total = pseudoSum(packet, v4) + doff + dataLen + sumBytes(packet, l4, hdrLen) + dataSum;
    if (finishChecksum(total) !== 0) return undefined;
  }
  return {
    v4,
    seq: readU32(b, l4 + TCP_GSO_FIELD.seq),
    flags: b[l4 + TCP_GSO_FIELD.flags] ?? 0,
    l4,
    piece: { packet, hdrLen, dataLen, dataSum },
  };
}

/** Whether a segment joins the open run of its flow (tcp_gro_receive's flush conditions). */
function joins(run: Run, b: Uint8Array, piece: Piece, seq: number, flags: number): boolean {
  const head = (run.pieces[0] as Piece).packet;
  if (!run.open || seq !== run.nextSeq || piece.dataLen === 0) return false;
  if (flags & (CWR | SYN | RST | URG)) return false;
  if (piece.dataLen > run.size || piece.hdrLen !== (run.pieces[0] as Piece).hdrLen) return false;
  if (piece.hdrLen + run.bytes + piece.dataLen > GSO_MAX_SIZE) return false;
  const l4 = run.l4;
  // Acknowledgment number, data offset, flags (but PSH/FIN/CWR), window, and options:
  // the TCP header from byte 8 on, checksum and urgent pointer aside.
  for (let i = l4 + 8; i < piece.hdrLen; i++) {
    if (i === l4 + TCP_GSO_FIELD.checksum) {
      i += 3; // the checksum, then the urgent pointer (no URG here, so it means nothing)
      continue;
    }
    const x = b[i] ?? 0;
    const y = head[i] ?? 0;
    if (i === l4 + TCP_GSO_FIELD.flags) {
      if ((x ^ y) & ~(PSH | FIN | CWR)) return false;
    } else if (x !== y) return false;
  }
  return true;
}

/** Build the joined packet of a run of two or more pieces. */
function join(run: Run): GroPacket {
  const first = run.pieces[0] as Piece;
  const last = run.pieces[run.pieces.length - 1] as Piece;
  const hdrLen = first.hdrLen;
  const l4 = run.l4;
  const total = hdrLen + run.bytes;
  const out = new Uint8Array(total);
  out.set(subview(first.packet, 0, hdrLen), 0);
  let at = hdrLen;
  let dataSum: number | undefined = 0;
  for (const p of run.pieces) {
    out.set(subview(p.packet, p.hdrLen, p.hdrLen + p.dataLen), at);
    if (dataSum !== undefined && p.dataSum !== undefined) {
      // RFC 1071 §2(B): a part that starts at an odd offset adds its sum byte-swapped.
      dataSum += (at - hdrLen) & 1 ? swap(foldSum(p.dataSum)) : p.dataSum;
    } else dataSum = undefined;
    at += p.dataLen;
  }
  if (run.v4) {
    writeU16(out, IPV4.totalLength, total);
    writeU16(out, IPV4.checksum, 0);
    writeU16(out, IPV4.checksum, finishChecksum(sumBytes(out, 0, IPV4_MIN_HEADER)));
  } else {
    writeU16(out, IPV6.payloadLength, total - IPV6_HEADER_LENGTH);
  }
  // The first segment's header with the last one's PSH and FIN (tcp_gro_complete's flags).
  const lastFlags = last.packet[l4 + TCP_GSO_FIELD.flags] ?? 0;
  out[l4 + TCP_GSO_FIELD.flags] =
    ((out[l4 + TCP_GSO_FIELD.flags] ?? 0) & ~(PSH | FIN)) | (lastFlags & (PSH | FIN));
  if (dataSum !== undefined) {
    const tcpLen = total - l4;
    writeU16(out, l4 + TCP_GSO_FIELD.checksum, 0);
    // The pseudo-header with this packet's TCP length (below 2^16: one IP datagram).
    const ck = finishChecksum(pseudoSum(out, run.v4) + tcpLen + sumBytes(out, l4, hdrLen) + dataSum);
    writeU16(out, l4 + TCP_GSO_FIELD.checksum, ck);
  }
  return {
    packet: out,
    info: { csum: { kind: 'valid' }, gso: { type: run.v4 ? 'tcpv4' : 'tcpv6', size: run.size, hdrLen } },
  };
}

function swap(v: number): number {
  return ((v & 0xff) << 8) | (v >> 8);
}
