/**
 * What the core's pieces share while one call is being worked: the time and the action
 * list (`Cx`), the host state the ICMP code reads and changes (`CoreContext`), and what the
 * receive path reads besides (`ReceiveContext`). IpCore builds one context over its own
 * private state and hands it to the functions in icmp-in.ts, icmp-out.ts, receive4.ts and
 * receive6.ts (and to its IpSender, send.ts), so they see what they need and nothing else.
 */
import type { PacketInfo } from '@stepwire/link';
import type { Counter, Counters, TraceEvent } from '@stepwire/wire';
import type { IcmpErrorReport, IpDelivery, SendOptions, SendResult } from '../types.ts';
import type { EchoBook, EchoOutcome } from './echo.ts';
import type { IcmpTokenBucket } from './icmp-rate.ts';
import type { PathMtuCache } from './pmtu.ts';
import type { HostReassembly } from './reassembly.ts';
import type { HostInterface, RoutingTable } from './routing.ts';
import { dropEvent, ipEvent } from './trace.ts';

/** What the host must do, in order (see core.ts). */
export type IpAction =
  | { kind: 'transmit'; iface: HostInterface; packet: Uint8Array; info?: PacketInfo }
  | { kind: 'deliver'; delivery: IpDelivery }
  | { kind: 'icmp-error'; report: IcmpErrorReport }
  | { kind: 'echo'; echo: number; outcome: EchoOutcome }
  | { kind: 'trace'; event: TraceEvent };

/**
 * 'ipv4.tx', 'ipv4.rx', 'ipv4.delivered' and their IPv6 twins: each held once it is first
 * counted (see Counters.counter), so a datagram costs no Map lookup by name for them — three
 * per packet were the last ones on the IPv4 path (issue 13).
 */
export class PacketCounters {
  private tx4: Counter | undefined;
  private rx4: Counter | undefined;
  private delivered4: Counter | undefined;
  private tx6: Counter | undefined;
  private rx6: Counter | undefined;
  private delivered6: Counter | undefined;

  constructor(private readonly counters: Counters) {}

  ipv4Tx(): void {
    (this.tx4 ??= this.counters.counter('ipv4.tx')).value++;
  }
  ipv4Rx(): void {
    (this.rx4 ??= this.counters.counter('ipv4.rx')).value++;
  }
  ipv4Delivered(): void {
    (this.delivered4 ??= this.counters.counter('ipv4.delivered')).value++;
  }
  ipv6Tx(): void {
    (this.tx6 ??= this.counters.counter('ipv6.tx')).value++;
  }
  ipv6Rx(): void {
    (this.rx6 ??= this.counters.counter('ipv6.rx')).value++;
  }
  ipv6Delivered(): void {
    (this.delivered6 ??= this.counters.counter('ipv6.delivered')).value++;
  }
}

/** The time of the work and the list its results go to, passed down every call. */
export interface Cx {
  readonly now: number;
  readonly out: IpAction[];
}

export interface CoreContext {
  readonly name: string;
  readonly counters: Counters;
  /** The counters every datagram moves, held rather than looked up by name per packet. */
  readonly perPacket: PacketCounters;
  readonly trace: { readonly enabled: boolean };
  readonly routing: RoutingTable;
  /** Protocols someone registered: datagrams and errors for them are handed up. */
  readonly protocols: ReadonlySet<number>;
  readonly echoes: EchoBook;
  readonly pmtu: PathMtuCache;
  readonly icmpBucket: IcmpTokenBucket;
  mtuFor(dst: string, now: number): number;
  /** The core's send path, appending to cx.out. */
  sendAt(cx: Cx, opts: SendOptions): SendResult;
}

/** The receive path's view (receive4.ts, receive6.ts): the ICMP state, and reassembly and loopback. */
export interface ReceiveContext extends CoreContext {
  /** Interface 0: a loopback source (127/8, ::1) is refused on any other (RFC 1122 §3.2.1.3). */
  readonly loopback: HostInterface;
  readonly reassembly: HostReassembly;
}

type Tracing = Pick<CoreContext, 'name' | 'counters' | 'trace'>;

/** As wire's countDrop: always counted, traced only when someone listens. */
export function dropped(
  ctx: Tracing,
  cx: Cx,
  layer: string,
  counter: string,
  detail: string,
  rfc?: string,
): void {
  ctx.counters.inc(counter);
  if (ctx.trace.enabled)
    cx.out.push({ kind: 'trace', event: dropEvent(cx.now, ctx.name, layer, counter, detail, rfc) });
}

/**
 * A reassembled datagram as bytes again. Fragments may add up to more than one datagram can
 * carry (RFC 791 §3.2's 65,535 bytes, RFC 8200 §4.5's payload length): that one is dropped
 * and counted, and undefined returned.
 */
export function encodeReassembled<P>(
  ctx: Tracing,
  cx: Cx,
  layer: 'ipv4' | 'ipv6',
  encode: (p: P) => Uint8Array,
  packet: P,
): Uint8Array | undefined {
  try {
    return encode(packet);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    dropped(ctx, cx, layer, 'reasm.drop.too-long', e.message);
    return undefined;
  }
}

/** Queue a trace event (the caller has checked `trace.enabled` before building its text). */
export function traceEvent(
  ctx: Tracing,
  cx: Cx,
  layer: string,
  dir: TraceEvent['dir'],
  summary: string,
  fields?: Record<string, unknown>,
  reason?: string,
  rfc?: string,
): void {
  cx.out.push({ kind: 'trace', event: ipEvent(cx.now, ctx.name, layer, dir, summary, fields, reason, rfc) });
}
