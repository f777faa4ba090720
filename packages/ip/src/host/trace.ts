/**
 * How IP datagrams read on a ladder line and in a trace event's detail pane: one-line
 * summaries (`summary4`/`summary6`, also used by the CLI's dissector) and the decoded
 * header fields. Pure functions of the packet: no clock, no host.
 */
import type { TraceEvent } from '@stepwire/wire';
import { describeIcmp } from '../icmp.ts';
import type { Ipv4Packet } from '../ipv4.ts';
import type { Ipv6Packet } from '../ipv6.ts';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, type IpVersion } from '../types.ts';

const PROTO_NAMES: Record<number, string> = { [IPPROTO_TCP]: 'TCP', [IPPROTO_UDP]: 'UDP' };

function upperSummary(version: IpVersion, protocol: number, payload: Uint8Array, first: boolean): string {
  // Only the first fragment carries the upper-layer header (RFC 791 §2.3, RFC 8200 §4.5).
  if (!first) return PROTO_NAMES[protocol] ?? `proto=${protocol}`;
  if (protocol === (version === 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6)) return describeIcmp(version, payload);
  return PROTO_NAMES[protocol] ?? `proto=${protocol}`;
}

export function summary4(p: Ipv4Packet, length: number): string {
  const first = p.fragmentOffset === 0;
  const frag =
    p.moreFragments || !first
      ? ` frag id=${p.identification} off=${p.fragmentOffset * 8}${p.moreFragments ? ' MF' : ''}`
      : '';
  const df = p.dontFragment ? ' DF' : '';
  return `IPv4 ${p.src}→${p.dst} ${upperSummary(4, p.protocol, p.payload, first)} len=${length} ttl=${p.ttl}${df}${frag}`;
}

export function summary6(p: Ipv6Packet, length: number): string {
  const fh = p.extensionHeaders.find((h) => h.kind === 'fragment');
  const first = fh?.kind !== 'fragment' || fh.fragmentOffset === 0;
  const ext = p.extensionHeaders.length
    ? ` ext=${p.extensionHeaders.map((h) => (h.kind === 'fragment' ? `frag(id=${h.identification} off=${h.fragmentOffset * 8}${h.moreFragments ? ' M' : ''})` : h.kind)).join(',')}`
    : '';
  return `IPv6 ${p.src}→${p.dst} ${upperSummary(6, p.nextHeader, p.payload, first)} len=${length} hlim=${p.hopLimit}${ext}`;
}

export function fields4(p: Ipv4Packet, length: number): Record<string, unknown> {
  return {
    version: 4,
    src: p.src,
    dst: p.dst,
    protocol: p.protocol,
    ttl: p.ttl,
    totalLength: length,
    identification: p.identification,
    dontFragment: p.dontFragment,
    moreFragments: p.moreFragments,
    fragmentOffset: p.fragmentOffset,
    dscp: p.dscp,
    ecn: p.ecn,
    options: p.options.map((o) => o.type),
  };
}

export function fields6(p: Ipv6Packet, length: number): Record<string, unknown> {
  return {
    version: 6,
    src: p.src,
    dst: p.dst,
    nextHeader: p.nextHeader,
    hopLimit: p.hopLimit,
    length,
    trafficClass: p.trafficClass,
    flowLabel: p.flowLabel,
    extensionHeaders: p.extensionHeaders.map((h) => h.kind),
  };
}

/** A host-level trace event, built the one way the core and the driver both use. */
export function ipEvent(
  t: number,
  host: string,
  layer: string,
  dir: TraceEvent['dir'],
  summary: string,
  fields?: Record<string, unknown>,
  reason?: string,
  rfc?: string,
): TraceEvent {
  const e: TraceEvent = { t, host, layer, dir, summary };
  if (fields) e.fields = fields;
  if (reason) e.reason = reason;
  if (rfc) e.rfc = rfc;
  return e;
}

/**
 * A drop as wire's countDrop builds it (the counter is the reason; the RFC only when
 * given), so the ladder reads the same whoever counted the drop.
 */
export function dropEvent(
  t: number,
  host: string,
  layer: string,
  counter: string,
  detail: string,
  rfc?: string,
): TraceEvent {
  return {
    t,
    host,
    layer,
    summary: `drop ${counter}: ${detail}`,
    ...(rfc ? { rfc } : {}),
    dir: 'drop',
    reason: counter,
  };
}
