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
import { finishChecksum, sum16 } from '@stepwire/wire';
import { pseudoHeaderSum } from './checksum.ts';
import { GSO_MAX_SIZE, TCP_GSO_FIELD } from './gso.ts';
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
 * and a run takes the place of its first segment. `stats`, when given, counts the joins.
 */
export function groCoalesce(
  batch: readonly GroPacket[],
  stats?: { inc(name: string, by?: number): void },
): GroPacket[] {
  if (batch.length < 2) return batch.slice();
  const slots: (GroPacket | Run)[] = [];
  const open = new Map<string, Run>();
  for (const item of batch) {
    const c = candidate(item);
    if (c === undefined) {
      // Not a segment that can join (another protocol, IP options, a bad checksum): its
      // flow is not known cheaply, so every open run ends here and nothing overtakes it.
      for (const r of open.values()) r.open = false;
      open.clear();
      slots.push(item);
      continue;
    }
    const { key, seq, flags, piece } = c;
    const run = open.get(key);
    if (run !== undefined && joins(run, item.packet, piece, seq, flags)) {
      run.pieces.push(piece);
      run.bytes += piece.dataLen;
      run.nextSeq = (run.nextSeq + piece.dataLen) >>> 0;
      // tcp_gro_receive: a short segment or one with PSH/FIN (URG, RST, SYN never get here) ends the run.
      if (piece.dataLen < run.size || flags & (PSH | FIN)) {
        run.open = false;
        open.delete(key);
      }
      continue;
    }
    if (run !== undefined) {
      run.open = false;
      open.delete(key);
    }
    if (flags & (CWR | SYN | RST | URG) || piece.dataLen === 0) {
      slots.push(item);
      continue;
    }
    const fresh: Run = {
      item,
      v4: (item.packet[0] ?? 0) >> 4 === 4,
      l4: c.l4,
      pieces: [piece],
      bytes: piece.dataLen,
      size: piece.dataLen,
      nextSeq: (seq + piece.dataLen) >>> 0,
      open: !(flags & (PSH | FIN)),
    };
    slots.push(fresh);
    if (fresh.open) open.set(key, fresh);
  }
  const out: GroPacket[] = [];
  for (let i = 0; i < slots.length; i++) {
    const s = slots[i] as GroPacket | Run;
    if (!('pieces' in s)) out.push(s);
    else if (s.pieces.length === 1) out.push(s.item);
    else {
      out.push(join(s));
      stats?.inc('ip.rx.gro-runs');
      stats?.inc('ip.rx.gro-joined', s.pieces.length);
    }
  }
  return out;
}

/**
 * A TCP segment that might join a run: its flow key, sequence number, flags and piece.
 * Undefined for anything else (not TCP, options, a fragment, malformed, a bad checksum).
 */
function candidate(
  item: GroPacket,
): { key: string; seq: number; flags: number; l4: number; piece: Piece } | undefined {
  const b = item.packet;
  const first = b[0] ?? 0;
  let l4: number;
  let end: number;
  let key: string;
  let pseudo: number;
  if (first === 0x45) {
    // IPv4 without options (IHL 5, RFC 791 §3.1), TCP, not a fragment, DF set (an atomic
    // datagram, RFC 6864 §4: its Identification means nothing, so pieces may differ in it).
    if (b.length < IPV4_MIN_HEADER || b[IPV4.protocol] !== IPPROTO_TCP) return undefined;
    if (((b[IPV4.flags] ?? 0) & 0xff) !== 0x40 || b[IPV4.flags + 1] !== 0) return undefined;
    end = get16(b, IPV4.totalLength);
    if (end > b.length || end < IPV4_MIN_HEADER + TCP_MIN_HEADER) return undefined;
    if (finishChecksum(sum16(b.subarray(0, IPV4_MIN_HEADER))) !== 0) return undefined;
    l4 = IPV4_MIN_HEADER;
    // TOS, TTL and both addresses belong to the key: pieces of a run share them.
    key = `4 ${b[IPV4.tos]} ${b[IPV4.ttl]} ${get32(b, IPV4.src)} ${get32(b, IPV4.dst)} ${get32(b, l4)}`;
    pseudo = pseudoHeaderSum(
      b.subarray(IPV4.src, IPV4.src + 4),
      b.subarray(IPV4.dst, IPV4.dst + 4),
      IPPROTO_TCP,
      0,
    );
  } else if (first >> 4 === 6) {
    // IPv6 with TCP straight after the fixed header (RFC 8200 §3).
    if (b.length < IPV6_HEADER_LENGTH || b[IPV6.nextHeader] !== IPPROTO_TCP) return undefined;
    end = IPV6_HEADER_LENGTH + get16(b, IPV6.payloadLength);
    if (end > b.length || end < IPV6_HEADER_LENGTH + TCP_MIN_HEADER) return undefined;
    l4 = IPV6_HEADER_LENGTH;
    // Version, traffic class, flow label, hop limit, addresses and ports.
    let addrs = '';
    for (let i = IPV6.src; i < IPV6.dst + 16; i += 4) addrs += ` ${get32(b, i)}`;
    key = `6 ${get32(b, 0)} ${b[IPV6.hopLimit]}${addrs} ${get32(b, l4)}`;
    pseudo = pseudoHeaderSum(
      b.subarray(IPV6.src, IPV6.src + 16),
      b.subarray(IPV6.dst, IPV6.dst + 16),
      IPPROTO_TCP,
      0,
    );
  } else return undefined;
  const doff = ((b[l4 + TCP_GSO_FIELD.dataOffset] ?? 0) >> 4) * 4;
  if (doff < TCP_MIN_HEADER || l4 + doff > end) return undefined;
  const hdrLen = l4 + doff;
  const dataLen = end - hdrLen;
  const packet = end === b.length ? b : b.subarray(0, end);
  let dataSum: number | undefined;
  if (item.info?.csum === undefined) {
    // RFC 9293 §3.1: verified here, as TCP would; the joined packet is then marked valid.
    dataSum = sum16(packet.subarray(hdrLen));
    const total = pseudo + doff + dataLen + sum16(packet.subarray(l4, hdrLen)) + dataSum;
    if (finishChecksum(total) !== 0) return undefined;
  }
  return {
    key,
    seq: get32(b, l4 + TCP_GSO_FIELD.seq),
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
  out.set(first.packet.subarray(0, hdrLen), 0);
  let at = hdrLen;
  let dataSum: number | undefined = 0;
  for (const p of run.pieces) {
    out.set(p.packet.subarray(p.hdrLen, p.hdrLen + p.dataLen), at);
    if (dataSum !== undefined && p.dataSum !== undefined) {
      // RFC 1071 §2(B): a part that starts at an odd offset adds its sum byte-swapped.
      dataSum += (at - hdrLen) & 1 ? swap(fold(p.dataSum)) : p.dataSum;
    } else dataSum = undefined;
    at += p.dataLen;
  }
  if (run.v4) {
    put16(out, IPV4.totalLength, total);
    put16(out, IPV4.checksum, 0);
    put16(out, IPV4.checksum, finishChecksum(sum16(out.subarray(0, IPV4_MIN_HEADER))));
  } else {
    put16(out, IPV6.payloadLength, total - IPV6_HEADER_LENGTH);
  }
  // The first segment's header with the last one's PSH and FIN (tcp_gro_complete's flags).
  const lastFlags = last.packet[l4 + TCP_GSO_FIELD.flags] ?? 0;
  out[l4 + TCP_GSO_FIELD.flags] =
    ((out[l4 + TCP_GSO_FIELD.flags] ?? 0) & ~(PSH | FIN)) | (lastFlags & (PSH | FIN));
  if (dataSum !== undefined) {
    const tcpLen = total - l4;
    put16(out, l4 + TCP_GSO_FIELD.checksum, 0);
    const pseudo = run.v4
      ? pseudoHeaderSum(
          out.subarray(IPV4.src, IPV4.src + 4),
          out.subarray(IPV4.dst, IPV4.dst + 4),
          IPPROTO_TCP,
          tcpLen,
        )
      : pseudoHeaderSum(
          out.subarray(IPV6.src, IPV6.src + 16),
          out.subarray(IPV6.dst, IPV6.dst + 16),
          IPPROTO_TCP,
          tcpLen,
        );
    const ck = finishChecksum(pseudo + sum16(out.subarray(l4, hdrLen)) + dataSum);
    put16(out, l4 + TCP_GSO_FIELD.checksum, ck);
  }
  return {
    packet: out,
    info: { csum: { kind: 'valid' }, gso: { type: run.v4 ? 'tcpv4' : 'tcpv6', size: run.size, hdrLen } },
  };
}

function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

function swap(v: number): number {
  return ((v & 0xff) << 8) | (v >> 8);
}

function get16(b: Uint8Array, at: number): number {
  return ((b[at] ?? 0) << 8) | (b[at + 1] ?? 0);
}

function get32(b: Uint8Array, at: number): number {
  return (((b[at] ?? 0) << 24) | ((b[at + 1] ?? 0) << 16) | ((b[at + 2] ?? 0) << 8) | (b[at + 3] ?? 0)) >>> 0;
}

function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >> 8) & 0xff;
  b[at + 1] = v & 0xff;
}
