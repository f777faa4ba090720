import {
  formatIp,
  type IcmpErrorReport,
  type IpAddress,
  type IpDelivery,
  type IpProtocolHandler,
  type IpStack,
  parseIp,
  type SendOptions,
  type SendResult,
} from '@stepwire/ip';
import { icmpErrorReport, ipDelivery } from '@stepwire/ip/testing';
import { Counters, Prng, TraceBus, type VirtualClock } from '@stepwire/wire';

/**
 * A minimal IpStack for socket tests that must not depend on the IP layer: hosts joined on
 * one "wire" that delivers each packet 1 ms later (copied, as a wire would), answers
 * sendUnreachable with an ICMP error report to the origin, and records what it was asked.
 */
export class FakeStack implements IpStack {
  readonly trace = new TraceBus();
  readonly counters = new Counters();
  readonly prng: Prng;
  readonly handlers = new Map<number, IpProtocolHandler>();
  readonly sent: SendOptions[] = [];
  readonly delivered: IpDelivery[] = [];
  readonly unreachables: { d: IpDelivery; reason: string }[] = [];
  /** Every host on the same wire, including this one. */
  peers: FakeStack[] = [this];
  /** When set, send() fails with this error. */
  failSends: 'no-route' | 'too-big' | 'no-source' | undefined;

  constructor(
    readonly name: string,
    readonly clock: VirtualClock,
    readonly addresses: string[],
    seed = 1,
  ) {
    this.prng = new Prng(seed);
  }

  static wire(...hosts: FakeStack[]): void {
    for (const h of hosts) h.peers = hosts;
  }

  registerProtocol(protocol: number, handler: IpProtocolHandler): void {
    this.handlers.set(protocol, handler);
  }

  send(opts: SendOptions): SendResult {
    this.sent.push(opts);
    if (this.failSends) return { ok: false, error: this.failSends };
    const src = opts.src ?? this.sourceFor(opts.dst);
    if (src === undefined) return { ok: false, error: 'no-source' };
    // The bytes a sender passes must name the addresses its text does (types.ts).
    if (opts.srcBytes !== undefined && formatIp(opts.srcBytes) !== src)
      throw new Error(`srcBytes ${formatIp(opts.srcBytes)} are not ${src}`);
    if (opts.dstBytes !== undefined && formatIp(opts.dstBytes) !== opts.dst)
      throw new Error(`dstBytes ${formatIp(opts.dstBytes)} are not ${opts.dst}`);
    const target = this.peers.find((h) => h.addresses.includes(opts.dst));
    if (!target) return { ok: false, error: 'no-route' };
    const payload = opts.payload.slice();
    const d: IpDelivery = {
      version: opts.dst.includes(':') ? 6 : 4,
      src,
      dst: opts.dst,
      // Fresh bytes, as a header on the wire would give the receiver.
      srcBytes: parseIp(src),
      dstBytes: parseIp(opts.dst),
      protocol: opts.protocol,
      ttl: opts.ttl ?? 64,
      payload,
      original: payload.subarray(0, 8),
    };
    this.clock.setTimer(this.clock.now() + 1, () => target.deliver(d));
    return { ok: true };
  }

  /** Hand a datagram to its protocol; one built by hand gets its address bytes from the text (ip/testing). */
  deliver(d: IpDelivery | Omit<IpDelivery, 'srcBytes' | 'dstBytes'>): void {
    const full = 'srcBytes' in d ? d : ipDelivery(d);
    this.delivered.push(full);
    const h = this.handlers.get(full.protocol);
    if (h) h.receive(full);
  }

  /** Hand an ICMP error report to the protocol handler, as the IP layer would. */
  icmpError(e: IcmpErrorReport | Omit<IcmpErrorReport, 'srcBytes' | 'dstBytes'>): void {
    this.handlers.get(e.protocol)?.receiveIcmpError?.('srcBytes' in e ? e : icmpErrorReport(e));
  }

  sourceFor(dst: string): string | undefined {
    const v6 = dst.includes(':');
    return this.addresses.find((a) => a.includes(':') === v6);
  }

  sourceAddressFor(dst: string): IpAddress | undefined {
    const address = this.sourceFor(dst);
    return address === undefined ? undefined : { address, addressBytes: parseIp(address) };
  }

  mtuFor(): number {
    return 1500;
  }

  isLocalAddress(addr: string): boolean {
    return this.addresses.includes(addr);
  }

  sendUnreachable(d: IpDelivery, reason: 'port' | 'protocol' | 'admin'): void {
    this.unreachables.push({ d, reason });
    const origin = this.peers.find((h) => h.addresses.includes(d.src));
    if (!origin) return;
    const report: IcmpErrorReport = {
      version: d.version,
      kind: 'unreachable',
      code: d.version === 4 ? (reason === 'port' ? 3 : 2) : reason === 'port' ? 4 : 1,
      reporter: d.dst,
      src: d.src,
      dst: d.dst,
      srcBytes: d.srcBytes.slice(),
      dstBytes: d.dstBytes.slice(),
      protocol: d.protocol,
      quoted: d.payload.slice(0, 8),
    };
    this.clock.setTimer(this.clock.now() + 1, () => origin.icmpError(report));
  }
}
