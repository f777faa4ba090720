/**
 * Ping (RFC 792 Echo / RFC 4443 §4.1-4.2): sending an echo request (`sendEchoRequest`),
 * and the book of the requests this host has sent and waits on, matched to replies by
 * (version, peer, Identifier, Sequence Number), each with the deadline after which it is
 * given up. Sans-I/O: times come in as
 * `now`, and the driver wakes the host at `nextTimeout()` (or at each request's deadline).
 */
import { ParseError } from '@stepwire/wire';
import { formatIp, parseIp } from '../address.ts';
import { encodeIcmpv4, encodeIcmpv6, type IcmpMessage } from '../icmp.ts';
import {
  type IcmpErrorReport,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  type IpAddress,
  type IpVersion,
  type SendResult,
} from '../types.ts';
import type { CoreContext, Cx } from './context.ts';

export interface PingOptions {
  /** ICMP Identifier; a per-host value by default. */
  id?: number;
  /** ICMP Sequence Number; a per-host counter by default. */
  seq?: number;
  /** Bytes of echo data after the 8-byte ICMP header (like ping -s; default 56). */
  size?: number;
  /** Default 1000 ms. */
  timeoutMs?: number;
  ttl?: number;
  dontFragment?: boolean;
  src?: string;
}

export interface PingResult {
  /** Milliseconds on the host's clock from request to reply. */
  rtt: number;
  /** TTL / Hop Limit of the reply as received. */
  ttl: number;
  /** ICMP bytes of the reply (header + data), as ping prints them. */
  bytes: number;
  from: string;
  id: number;
  seq: number;
}

/** One echo request waiting for its reply. `echo` names it uniquely for the driver. */
export interface PendingEcho {
  readonly echo: number;
  readonly version: IpVersion;
  readonly target: string;
  readonly id: number;
  readonly seq: number;
  readonly data: Uint8Array;
  readonly sentAt: number;
  readonly timeoutMs: number;
  readonly deadline: number;
}

/** How a pending echo ended, as the core reports it to the driver. */
export type EchoOutcome =
  | { kind: 'reply'; result: PingResult }
  | { kind: 'timeout'; message: string }
  | { kind: 'icmp-error'; message: string; report: IcmpErrorReport }
  | { kind: 'cancelled'; message: string };

/** The echo data ping(8) sends: bytes counting up from zero. */
export function echoData(size: number): Uint8Array {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = i & 0xff;
  return data;
}

function keyOf(version: IpVersion, peer: string, id: number, seq: number): string {
  return `${version}|${peer}|${id}|${seq}`;
}

export class EchoBook {
  private readonly pending = new Map<string, PendingEcho>();
  private readonly byEcho = new Map<number, string>();
  private nextEcho = 1;

  get size(): number {
    return this.pending.size;
  }

  /**
   * Remember a request sent at `now`. A request still pending with the same
   * (version, target, id, seq) can no longer be told apart from this one: it is returned
   * as superseded and forgotten.
   */
  add(
    version: IpVersion,
    target: string,
    id: number,
    seq: number,
    data: Uint8Array,
    now: number,
    timeoutMs: number,
  ): { entry: PendingEcho; superseded: PendingEcho | undefined } {
    const key = keyOf(version, target, id, seq);
    const superseded = this.pending.get(key);
    if (superseded !== undefined) this.byEcho.delete(superseded.echo);
    const entry: PendingEcho = {
      echo: this.nextEcho++,
      version,
      target,
      id,
      seq,
      data,
      sentAt: now,
      timeoutMs,
      deadline: now + timeoutMs,
    };
    this.pending.set(key, entry);
    this.byEcho.set(entry.echo, key);
    return { entry, superseded };
  }

  /** Forget a request (cancelled, or its send failed); returns it if it was pending. */
  remove(echo: number): PendingEcho | undefined {
    const key = this.byEcho.get(echo);
    if (key === undefined) return undefined;
    const e = this.pending.get(key);
    this.byEcho.delete(echo);
    this.pending.delete(key);
    return e;
  }

  /** The pending request a reply from `from` answers, removed; undefined if none. */
  takeReply(version: IpVersion, from: string, id: number, seq: number): PendingEcho | undefined {
    return this.take(keyOf(version, from, id, seq));
  }

  /** The pending request an ICMP error quoting (dst, id, seq) is about, removed. */
  takeQuoted(version: IpVersion, dst: string, id: number, seq: number): PendingEcho | undefined {
    return this.take(keyOf(version, dst, id, seq));
  }

  /** The request `echo` if it is still pending at `now` past its deadline, removed. */
  takeExpired(echo: number, now: number): PendingEcho | undefined {
    const key = this.byEcho.get(echo);
    if (key === undefined) return undefined;
    const e = this.pending.get(key);
    if (e === undefined || e.deadline > now) return undefined;
    return this.take(key);
  }

  /** Every request whose deadline has passed at `now`, in the order they were sent. */
  expire(now: number): PendingEcho[] {
    const out: PendingEcho[] = [];
    for (const [key, e] of this.pending) {
      if (e.deadline <= now) {
        this.pending.delete(key);
        this.byEcho.delete(e.echo);
        out.push(e);
      }
    }
    return out;
  }

  nextTimeout(): number | undefined {
    let next: number | undefined;
    for (const e of this.pending.values()) if (next === undefined || e.deadline < next) next = e.deadline;
    return next;
  }

  /** Every pending request, removed (the host is closing). */
  clear(): PendingEcho[] {
    const all = [...this.pending.values()];
    this.pending.clear();
    this.byEcho.clear();
    return all;
  }

  private take(key: string): PendingEcho | undefined {
    const e = this.pending.get(key);
    if (e === undefined) return undefined;
    this.pending.delete(key);
    this.byEcho.delete(e.echo);
    return e;
  }
}

/** How an echo request went out: pending until its deadline, or failed at once. */
export type EchoStart =
  | { ok: true; echo: number; id: number; seq: number; deadline: number; superseded?: number }
  | {
      ok: false;
      id: number;
      seq: number;
      message: string;
      sendResult?: SendResult;
      superseded?: number;
    };

/**
 * Send one echo request (RFC 792, RFC 4443 §4.1) with identifier `id` and sequence `seq`,
 * and remember it in the core's book until its deadline (IpCore.startEcho picks the two).
 */
export function sendEchoRequest(
  ctx: CoreContext,
  cx: Cx,
  dst: string,
  opts: PingOptions,
  id: number,
  seq: number,
): EchoStart {
  // The target is a person's text: parsed once here, and its bytes travel with it.
  let targetBytes: Uint8Array;
  try {
    targetBytes = parseIp(dst);
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
    return { ok: false, id, seq, message: `not an address: ${dst}` };
  }
  const target = formatIp(targetBytes);
  const version: IpVersion = targetBytes.length === 4 ? 4 : 6;
  const data = echoData(opts.size ?? 56);
  const m: IcmpMessage = { kind: 'echo-request', code: 0, identifier: id, sequence: seq, data };
  let payload: Uint8Array | undefined;
  let own: IpAddress | undefined;
  if (version === 4) payload = encodeIcmpv4(m);
  else {
    // The ICMPv6 checksum covers the pseudo-header (RFC 4443 §2.3): the source must be known now.
    if (opts.src === undefined) own = ctx.routing.sourceAddressFor(target, targetBytes);
    const src = opts.src ?? own?.addressBytes;
    if (src !== undefined) payload = encodeIcmpv6(m, src, targetBytes);
  }
  const timeoutMs = opts.timeoutMs ?? 1000;
  // Remembered before anything is sent: an earlier request it supersedes ends either way.
  const { entry, superseded } = ctx.echoes.add(version, target, id, seq, data, cx.now, timeoutMs);
  const sup = superseded === undefined ? {} : { superseded: superseded.echo };
  if (payload === undefined) {
    ctx.echoes.remove(entry.echo);
    return {
      ok: false,
      id,
      seq,
      message: `no route to ${target}`,
      sendResult: { ok: false, error: 'no-route' },
      ...sup,
    };
  }
  const r = ctx.sendAt(cx, {
    src: opts.src ?? own?.address,
    srcBytes: own?.addressBytes,
    dst: target,
    dstBytes: targetBytes,
    protocol: version === 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6,
    payload,
    ttl: opts.ttl,
    dontFragment: opts.dontFragment,
  });
  if (!r.ok) {
    ctx.echoes.remove(entry.echo);
    return { ok: false, id, seq, message: `send to ${target} failed: ${r.error}`, sendResult: r, ...sup };
  }
  return { ok: true, echo: entry.echo, id, seq, deadline: entry.deadline, ...sup };
}
