/**
 * ICMP messages arriving at the host: echo requests answered (RFC 792, RFC 1122 §3.2.2.6,
 * RFC 4443 §4.2), echo replies matched to pending pings, and errors read (RFC 1122 §3.2.2
 * and §4.1.3.3, RFC 4443 §3) — which of our datagrams they are about, what they teach about
 * the path MTU (RFC 1191 §4, RFC 8201 §4), and whom to tell.
 */
import { ParseError } from '@stepwire/wire';
import { ipv4BytesAt, ipv6BytesAt } from '../address.ts';
import {
  decodeIcmpv4,
  decodeIcmpv6,
  encodeIcmpv4,
  encodeIcmpv6,
  ICMPV4_ECHO_REQUEST,
  ICMPV4_UNREACH,
  ICMPV6_ECHO_REQUEST,
  type IcmpMessage,
} from '../icmp.ts';
import { decodeIpv4, IPV4, type Ipv4DecodeInfo } from '../ipv4.ts';
import { decodeIpv6, decodeIpv6ExtensionChain, IPV6 } from '../ipv6.ts';
import type { IcmpErrorReport, IpVersion } from '../types.ts';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, type IpDelivery } from '../types.ts';
import { type CoreContext, type Cx, dropped, traceEvent } from './context.ts';
import { MIN_MTU_V4, MIN_MTU_V6 } from './pmtu.ts';
import type { HostInterface } from './routing.ts';

/** RFC 1191 §7 plateau table, for frag-needed messages from routers that leave Next-Hop MTU zero. */
export const PLATEAUS = [65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68];

/** An ICMP error message kind, as decoded. */
export type IcmpErrorMessage = Extract<
  IcmpMessage,
  { kind: 'destination-unreachable' | 'packet-too-big' | 'time-exceeded' | 'parameter-problem' }
>;

/** What an arriving error says, before anyone decides whether to believe it. */
export interface IcmpErrorRead {
  report: IcmpErrorReport;
  /** False when the quote is of a fragment other than the first: no transport header to match. */
  firstFragment: boolean;
}

export function isIcmpErrorMessage(m: IcmpMessage): m is IcmpErrorMessage {
  return (
    m.kind === 'destination-unreachable' ||
    m.kind === 'packet-too-big' ||
    m.kind === 'time-exceeded' ||
    m.kind === 'parameter-problem'
  );
}

/** True when `bytes` hold a whole IPv6 extension chain starting at `first` (RFC 8200 §4, RFC 7112). */
export function chainComplete(first: number, bytes: Uint8Array): boolean {
  try {
    decodeIpv6ExtensionChain(first, bytes);
    return true;
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
    return false;
  }
}

/**
 * Decode the datagram an error quotes and say what the error reports about it. Throws
 * ParseError when the quote does not decode.
 */
export function readIcmpError(version: IpVersion, reporter: string, m: IcmpErrorMessage): IcmpErrorRead {
  let src: string;
  let dst: string;
  let srcBytes: Uint8Array;
  let dstBytes: Uint8Array;
  let protocol: number;
  let quoted: Uint8Array;
  let firstFragment = true;
  let quotedTotal = 0;
  if (version === 4) {
    const q = decodeIpv4(m.original, { truncated: true, verifyChecksum: false }, {} as Ipv4DecodeInfo);
    src = q.src;
    dst = q.dst;
    // The quoted header's addresses as bytes beside the text (it decoded: they are there).
    srcBytes = ipv4BytesAt(m.original, IPV4.src);
    dstBytes = ipv4BytesAt(m.original, IPV4.dst);
    protocol = q.protocol;
    quoted = q.payload;
    firstFragment = q.fragmentOffset === 0;
    // The quoted header's Total Length: what the router could not forward.
    quotedTotal = ((m.original[2] ?? 0) << 8) | (m.original[3] ?? 0);
  } else {
    const q = decodeIpv6(m.original, { truncated: true });
    src = q.src;
    dst = q.dst;
    srcBytes = ipv6BytesAt(m.original, IPV6.src);
    dstBytes = ipv6BytesAt(m.original, IPV6.dst);
    protocol = q.nextHeader;
    quoted = q.payload;
    const fh = q.extensionHeaders.find((h) => h.kind === 'fragment');
    if (fh?.kind === 'fragment') {
      firstFragment = fh.fragmentOffset === 0;
      // The quote may end inside the chain; then the transport stays unknown.
      if (firstFragment && chainComplete(q.nextHeader, q.payload)) {
        const chain = decodeIpv6ExtensionChain(q.nextHeader, q.payload);
        protocol = chain.nextHeader;
        quoted = q.payload.subarray(chain.payloadOffset);
      }
    }
  }
  let kind: IcmpErrorReport['kind'];
  let mtu: number | undefined;
  if (m.kind === 'destination-unreachable') {
    if (version === 4 && m.code === ICMPV4_UNREACH.fragmentationNeeded) {
      // Reported as 'packet-too-big': the same news as ICMPv6 type 2 (RFC 1191), and not a
      // hard error for transports (RFC 1122 §4.2.3.9 predates path MTU discovery).
      kind = 'packet-too-big';
      mtu = m.nextHopMtu ?? 0;
      // RFC 1191 §5: an old router leaves Next-Hop MTU zero; guess the next plateau down.
      if (mtu === 0 || mtu >= quotedTotal) mtu = PLATEAUS.find((x) => x < quotedTotal) ?? 68;
    } else {
      kind = 'unreachable';
    }
  } else if (m.kind === 'packet-too-big') {
    kind = 'packet-too-big';
    mtu = m.mtu;
  } else {
    kind = m.kind;
  }
  return {
    report: { version, kind, code: m.code, reporter, src, dst, srcBytes, dstBytes, protocol, quoted, mtu },
    firstFragment,
  };
}

// ---- ICMP messages arriving (called by receive4.ts / receive6.ts with the core's context) ----

/**
 * What differs between ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) where the two are worked
 * alike: the layer, the IP protocol number, and the counter names, spelled out once here
 * so that no counter name is built per message.
 */
interface IcmpFamily {
  readonly version: IpVersion;
  readonly layer: 'icmpv4' | 'icmpv6';
  readonly protocol: typeof IPPROTO_ICMP | typeof IPPROTO_ICMPV6;
  readonly rx: string;
  readonly dropChecksum: string;
  readonly dropMalformed: string;
  readonly echoReplied: string;
  readonly echoReplyFailed: string;
}

const ICMPV4: IcmpFamily = {
  version: 4,
  layer: 'icmpv4',
  protocol: IPPROTO_ICMP,
  rx: 'icmpv4.rx',
  dropChecksum: 'icmpv4.drop.checksum',
  dropMalformed: 'icmpv4.drop.malformed',
  echoReplied: 'icmpv4.echo.replied',
  echoReplyFailed: 'icmpv4.echo.reply-failed',
};

const ICMPV6: IcmpFamily = {
  version: 6,
  layer: 'icmpv6',
  protocol: IPPROTO_ICMPV6,
  rx: 'icmpv6.rx',
  dropChecksum: 'icmpv6.drop.checksum',
  dropMalformed: 'icmpv6.drop.malformed',
  echoReplied: 'icmpv6.echo.replied',
  echoReplyFailed: 'icmpv6.echo.reply-failed',
};

/**
 * An ICMP message delivered to this host, of either version: decoded, then answered (echo
 * request), matched (echo reply), read (errors) or counted. `toGroup`: it was sent to a
 * broadcast or multicast address; `iface`: the interface it came in on.
 */
export function icmpIn(
  ctx: CoreContext,
  cx: Cx,
  version: IpVersion,
  d: IpDelivery,
  toGroup: boolean,
  iface: HostInterface,
): void {
  const f = version === 4 ? ICMPV4 : ICMPV6;
  let m: IcmpMessage;
  try {
    // RFC 792: the ICMPv4 checksum covers the message alone; RFC 4443 §2.3: the ICMPv6
    // checksum covers the IPv6 pseudo-header too, so the decoder needs the addresses.
    m = version === 4 ? decodeIcmpv4(d.payload) : decodeIcmpv6(d.payload, d.srcBytes, d.dstBytes);
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
    dropped(ctx, cx, f.layer, e.field === 'checksum' ? f.dropChecksum : f.dropMalformed, e.message);
    return;
  }
  ctx.counters.inc(f.rx);
  switch (m.kind) {
    case 'echo-request':
      answerEcho(ctx, cx, f, d, m, toGroup, iface);
      return;
    case 'echo-reply':
      echoReply(ctx, cx, version, d.src, m, d.ttl, d.payload.length);
      return;
    // Packet Too Big is ICMPv6's alone (RFC 4443 §3.2): decodeIcmpv4 never gives it, and
    // ICMPv4's news of the same (Destination Unreachable code 4, RFC 1191) is read as such.
    case 'destination-unreachable':
    case 'packet-too-big':
    case 'time-exceeded':
    case 'parameter-problem':
      icmpErrorIn(ctx, cx, version, d.src, m);
      return;
    default:
      if (version === 4) ctx.counters.inc('icmpv4.unhandled');
      else otherIcmpv6(ctx, m);
  }
}

/** Answer an echo request with an echo reply carrying its identifier, sequence and data. */
function answerEcho(
  ctx: CoreContext,
  cx: Cx,
  f: IcmpFamily,
  d: IpDelivery,
  m: Extract<IcmpMessage, { kind: 'echo-request' | 'echo-reply' }>,
  toGroup: boolean,
  iface: HostInterface,
): void {
  // The reply goes back from the address the request was sent to ...
  let src = d.dst;
  let srcBytes = d.dstBytes;
  let reply: Uint8Array;
  if (f.version === 4) {
    // RFC 1122 §3.2.2.6: an echo request to a broadcast or multicast address MAY be ignored.
    if (toGroup) {
      dropped(ctx, cx, 'icmpv4', 'icmpv4.drop.echo-to-group', d.dst);
      return;
    }
    reply = encodeIcmpv4({ ...m, kind: 'echo-reply' });
  } else {
    // ... but RFC 4443 §4.2: a reply to a multicast request comes from a unicast address of
    // the interface.
    if (toGroup) {
      const own = iface.ipv6 ?? ctx.routing.sourceAddressFor(d.src, d.srcBytes);
      if (own === undefined) {
        ctx.counters.inc(f.echoReplyFailed);
        return;
      }
      src = own.address;
      srcBytes = own.addressBytes;
    }
    reply = encodeIcmpv6({ ...m, kind: 'echo-reply' }, srcBytes, d.srcBytes);
  }
  const r = ctx.sendAt(cx, {
    src,
    srcBytes,
    dst: d.src,
    dstBytes: d.srcBytes,
    protocol: f.protocol,
    payload: reply,
  });
  ctx.counters.inc(r.ok ? f.echoReplied : f.echoReplyFailed);
}

/** ICMPv6 messages this host does not act on, counted by what they are. */
function otherIcmpv6(ctx: CoreContext, m: IcmpMessage): void {
  const t = m.kind === 'unknown' ? m.type : -1;
  // Neighbour discovery (RFC 4861, types 133-137) and MLD (RFC 2710/3810) from a kernel:
  // there is no link layer to resolve on a raw-IP link, so they are dropped quietly.
  if (t >= 133 && t <= 137) ctx.counters.inc('icmpv6.drop.ndp');
  else if ((t >= 130 && t <= 132) || t === 143) ctx.counters.inc('icmpv6.drop.mld');
  // RFC 4443 §2.4(b): an unknown informational message is silently discarded.
  else ctx.counters.inc('icmpv6.unhandled');
}

/** An ICMP error arrived: decode the quoted datagram and tell whoever sent it (RFC 1122 §3.2.2, §4.1.3.3). */
export function icmpErrorIn(
  ctx: CoreContext,
  cx: Cx,
  version: IpVersion,
  reporter: string,
  m: IcmpMessage,
): void {
  if (!isIcmpErrorMessage(m)) return;
  const layer = version === 4 ? 'icmpv4' : 'icmpv6';
  let read: ReturnType<typeof readIcmpError>;
  try {
    read = readIcmpError(version, reporter, m);
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
    dropped(ctx, cx, layer, `${layer}.drop.bad-quote`, e.message);
    return;
  }
  const { report, firstFragment } = read;
  // Only errors about datagrams this host sent are believed (RFC 5927 §4.1).
  if (!ctx.routing.local.has(report.src)) {
    dropped(ctx, cx, layer, `${layer}.drop.error-not-ours`, `quoted source ${report.src}`);
    return;
  }
  if (report.mtu !== undefined) lowerPathMtu(ctx, cx, version, report.dst, report.mtu);
  ctx.counters.inc(`${layer}.rx.error`);
  if (!firstFragment) {
    ctx.counters.inc(`${layer}.error.non-first-fragment`);
    return;
  }
  const quoted = report.quoted;
  if (report.protocol === (version === 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6)) {
    // About one of our echo requests: ping learns why it will get no reply.
    const echoType = version === 4 ? ICMPV4_ECHO_REQUEST : ICMPV6_ECHO_REQUEST;
    if (quoted.length >= 8 && quoted[0] === echoType) {
      const id = ((quoted[4] ?? 0) << 8) | (quoted[5] ?? 0);
      const seq = ((quoted[6] ?? 0) << 8) | (quoted[7] ?? 0);
      const e = ctx.echoes.takeQuoted(version, report.dst, id, seq);
      if (e !== undefined) {
        const message = `${report.kind} code ${report.code} from ${report.reporter}`;
        cx.out.push({ kind: 'echo', echo: e.echo, outcome: { kind: 'icmp-error', message, report } });
      }
    }
    return;
  }
  if (ctx.protocols.has(report.protocol)) cx.out.push({ kind: 'icmp-error', report });
  else ctx.counters.inc(`${layer}.error.unclaimed`);
}

/** RFC 1191 §6.1 / RFC 8201 §4: lower (never raise) the estimate, not below 68 / 1280. */
export function lowerPathMtu(
  ctx: CoreContext,
  cx: Cx,
  version: IpVersion,
  dst: string,
  reported: number,
): void {
  const mtu = Math.max(version === 4 ? MIN_MTU_V4 : MIN_MTU_V6, reported);
  const current = ctx.mtuFor(dst, cx.now);
  if (mtu >= current) return;
  ctx.pmtu.lower(dst, mtu, cx.now);
  ctx.counters.inc('pmtu.lowered');
  if (ctx.trace.enabled) {
    traceEvent(
      ctx,
      cx,
      version === 4 ? 'ipv4' : 'ipv6',
      'local',
      `path MTU to ${dst} ${current}→${mtu}`,
      { dst, mtu },
      undefined,
      version === 4 ? 'RFC 1191 §6.1' : 'RFC 8201 §4',
    );
  }
}

/** RFC 792 / RFC 4443 §4.2: an echo reply ends the pending request with its identifier and sequence. */
export function echoReply(
  ctx: CoreContext,
  cx: Cx,
  version: IpVersion,
  from: string,
  m: IcmpMessage,
  ttl: number,
  bytes: number,
): void {
  if (m.kind !== 'echo-reply') return;
  const e = ctx.echoes.takeReply(version, from, m.identifier, m.sequence);
  if (e === undefined) {
    ctx.counters.inc(`icmpv${version}.echo.unmatched-reply`);
    return;
  }
  if (m.data.length !== e.data.length || m.data.some((x, i) => x !== e.data[i])) {
    // ping(8) reports "wrong data byte" but still counts the reply.
    ctx.counters.inc(`icmpv${version}.echo.data-mismatch`);
  }
  const result = { rtt: cx.now - e.sentAt, ttl, bytes, from, id: m.identifier, seq: m.sequence };
  cx.out.push({ kind: 'echo', echo: e.echo, outcome: { kind: 'reply', result } });
}
