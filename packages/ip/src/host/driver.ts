/**
 * Host: the driver around IpCore. It owns what the core must not: the clock, one
 * TimerGroup (so `stats` shows how many timers it holds), the links, and the protocol
 * handlers. Each entry point asks the clock once, hands the core the work with `now`, and
 * then carries out the core's actions in order: packets to links, datagrams and ICMP
 * errors to handlers, trace events to the bus, ping outcomes to their callbacks.
 */
import type { Link, LinkOffloads, PacketInfo } from '@stepwire/link';
import { type Clock, Counters, Prng, type Timer, TimerGroup, TraceBus } from '@stepwire/wire';
import { type GroPacket, groCoalesce } from '../gro.ts';
import type {
  IcmpErrorReport,
  IpAddress,
  IpDelivery,
  IpProtocolHandler,
  IpStack,
  SendOptions,
  SendResult,
} from '../types.ts';
import { type IpAction, IpCore, type IpTuning } from './core.ts';
import type { EchoOutcome, PingOptions, PingResult } from './echo.ts';
import type { HostInterface, InterfaceConfig, RouteEntry } from './routing.ts';

export interface HostOptions extends IpTuning {
  name: string;
  /**
   * Software GRO on `receiveBatch`: the in-order TCP segments of a flow that arrive in one
   * batch are joined before IP and TCP see them (gro.ts; Linux does it for every device at
   * the end of a NAPI poll). Off by default; `receive` (one packet) is never affected.
   */
  softwareGro?: boolean;
  clock: Clock;
  trace?: TraceBus;
  prng?: Prng;
  counters?: Counters;
}

export class PingError extends Error {
  override readonly name = 'PingError';
  constructor(
    readonly reason: 'timeout' | 'icmp-error' | 'send-failed' | 'cancelled',
    message: string,
    readonly report?: IcmpErrorReport,
    readonly sendResult?: SendResult,
  ) {
    super(message);
  }
}

export interface EchoHandle {
  readonly id: number;
  readonly seq: number;
  cancel(): void;
}

/** What the host holds right now: a leak shows as one of these growing under load. */
export interface HostStats {
  timersArmed: number;
  pendingPings: number;
  reassemblyDatagrams: number;
  reassemblyBytes: number;
  pmtuEntries: number;
}

/** Most packets held for one GRO batch (Linux's NAPI budget is 64). */
const GRO_BATCH_MAX = 64;

type EchoDone = (err: PingError | undefined, r?: PingResult) => void;

interface PendingPing {
  timer: Timer;
  done: EchoDone;
}

class LoopbackLink implements Link {
  readonly name = 'lo';
  readonly mtu = 65535;
  readonly counters = new Counters();
  private handler: ((p: Uint8Array) => void) | undefined;
  constructor(private readonly clock: Clock) {}
  send(packet: Uint8Array): void {
    this.counters.inc('tx');
    // Delivered from a timer, never re-entrantly from inside send().
    this.clock.setTimer(this.clock.now(), () => {
      this.counters.inc('rx');
      this.handler?.(packet);
    });
  }
  onPacket(handler: (packet: Uint8Array) => void): void {
    this.handler = handler;
  }
  close(): void {
    this.handler = undefined;
  }
}

/**
 * An IPv4/IPv6 end host (RFC 1122 §3, RFC 8200, RFC 4443): interfaces over Links, a
 * longest-prefix-match routing table, fragmentation and reassembly, protocol dispatch,
 * an echo responder and ping client, ICMP error generation and path-MTU memory — all of
 * it decided by `core`, an IpCore; this class only does the I/O and keeps the time.
 */
export class Host implements IpStack {
  readonly name: string;
  readonly clock: Clock;
  readonly trace: TraceBus;
  readonly prng: Prng;
  readonly counters: Counters;
  readonly defaultTtl: number;
  /** The sans-I/O core: routing, fragmentation, reassembly, ICMP, path MTU, echo bookkeeping. */
  readonly core: IpCore;
  readonly softwareGro: boolean;

  private readonly handlers = new Map<number, IpProtocolHandler>();
  /** The host's own timers (reassembly, pings), counted for `stats`. */
  private readonly timers: TimerGroup;
  private reasmTimer: Timer | undefined;
  private reasmTimerAt = Number.POSITIVE_INFINITY;
  /**
   * One timer per ping, armed when it is sent for its own deadline, rather than one for
   * the core's nextTimeout(): a timeout then fires in the same place among other timers
   * due at the same instant as it always did, so seeded runs keep their ladders.
   */
  private readonly pings = new Map<number, PendingPing>();
  private readonly lists: IpAction[][] = [];
  private depth = 0;

  constructor(opts: HostOptions) {
    this.name = opts.name;
    this.clock = opts.clock;
    this.timers = new TimerGroup(this.clock);
    this.trace = opts.trace ?? new TraceBus();
    this.prng = opts.prng ?? new Prng(0x1a2b3c4d);
    this.counters = opts.counters ?? new Counters();
    this.softwareGro = opts.softwareGro === true;
    const {
      clock: _clock,
      trace: _trace,
      prng: _prng,
      counters: _counters,
      softwareGro: _softwareGro,
      ...tuning
    } = opts;
    this.core = new IpCore({
      ...tuning,
      counters: this.counters,
      prng: this.prng,
      trace: this.trace,
      now: this.clock.now(),
      loopback: new LoopbackLink(this.clock),
    });
    this.defaultTtl = this.core.defaultTtl;
    this.attach(this.core.loopback);
  }

  // ---- configuration ------------------------------------------------------------------

  /** Attach a link with optional addresses; connected routes for their prefixes are added. */
  addInterface(cfg: InterfaceConfig): HostInterface {
    const iface = this.core.addInterface(cfg);
    this.attach(iface);
    return iface;
  }

  private attach(iface: HostInterface): void {
    // With softwareGro, a link that says `more` (another packet of the same batch follows
    // in this same turn, as a TUN reader's batch or a NAPI poll) has its packets held and
    // handed up together by receiveBatch when the batch ends, or at GRO_BATCH_MAX. Links
    // that never say it deliver packet by packet as before. `more` is only a hint: should the
    // batch's last packet be dropped by the link, a microtask hands up what is held once the
    // link's turn is over.
    let held: GroPacket[] = [];
    const flush = () => {
      if (held.length === 0) return;
      const batch = held;
      held = [];
      this.receiveBatch(batch, iface);
    };
    iface.link.onPacket((packet: Uint8Array, info?: PacketInfo, more?: boolean) => {
      if (!this.softwareGro || (more !== true && held.length === 0)) {
        this.receive(packet, iface, info);
        return;
      }
      if (held.length === 0) queueMicrotask(flush);
      held.push(info === undefined ? { packet } : { packet, info });
      if (more === true && held.length < GRO_BATCH_MAX) return;
      flush();
    });
  }

  get interfaces(): readonly HostInterface[] {
    return this.core.routing.ifaces;
  }

  get routes(): readonly RouteEntry[] {
    return this.core.routing.routes;
  }

  /** See RoutingTable.addRoute: 'prefix/len' via an interface or its link name. */
  addRoute(prefix: string, iface: HostInterface | string, gateway?: string): RouteEntry {
    return this.core.routing.addRoute(prefix, iface, gateway);
  }

  removeRoute(prefix: string): boolean {
    return this.core.routing.removeRoute(prefix);
  }

  registerProtocol(protocol: number, handler: IpProtocolHandler): void {
    this.handlers.set(protocol, handler);
    this.core.registerProtocol(protocol);
  }

  /** Longest-prefix match (RFC 1812 §5.2.4.3); local addresses route over loopback. */
  lookupRoute(dst: string): RouteEntry | undefined {
    return this.core.lookupRoute(dst);
  }

  isLocalAddress(addr: string): boolean {
    return this.core.isLocalAddress(addr);
  }

  sourceFor(dst: string): string | undefined {
    return this.core.sourceFor(dst);
  }

  sourceAddressFor(dst: string, dstBytes?: Uint8Array): IpAddress | undefined {
    return this.core.sourceAddressFor(dst, dstBytes);
  }

  mtuFor(dst: string): number {
    return this.core.mtuFor(dst, this.clock.now());
  }

  offloadsFor(dst: string): LinkOffloads | undefined {
    return this.core.offloadsFor(dst);
  }

  /** Cancel timers and pending pings; detach nothing else (links belong to the caller). */
  close(): void {
    this.reasmTimer?.cancel();
    this.reasmTimer = undefined;
    const out: IpAction[] = [];
    this.core.cancelAllEchoes(out);
    this.run(out);
    this.pings.clear();
  }

  /** What the host holds right now: a leak shows as one of these growing under load. */
  get stats(): HostStats {
    const s = this.core.stats;
    return {
      timersArmed: this.timers.armed,
      pendingPings: this.pings.size,
      reassemblyDatagrams: s.reassemblyDatagrams,
      reassemblyBytes: s.reassemblyBytes,
      pmtuEntries: s.pmtuEntries,
    };
  }

  // ---- traffic ------------------------------------------------------------------------

  send(opts: SendOptions): SendResult {
    const out = this.takeList();
    try {
      const r = this.core.send(opts, this.clock.now(), out);
      this.run(out);
      return r;
    } finally {
      this.giveList(out);
    }
  }

  /** Hand the host one IP packet as it arrived on `iface` (the first real interface by default). */
  receive(packet: Uint8Array, iface?: HostInterface, info?: PacketInfo): void {
    const out = this.takeList();
    try {
      this.core.receive(packet, iface, this.clock.now(), out, info);
      // Armed before the actions run, as it was when the core's work was done inline.
      this.armReassemblyTimer();
      this.run(out);
    } finally {
      this.giveList(out);
    }
  }

  /**
   * Hand the host packets that arrived together on `iface` (a TUN reader's batch, a
   * MemoryLink instant), in order. With `softwareGro` each flow's in-order TCP segments are
   * joined first (gro.ts), so TCP does its per-segment work once per run.
   */
  receiveBatch(batch: readonly GroPacket[], iface?: HostInterface): void {
    const items = this.softwareGro ? groCoalesce(batch, this.counters, this.traceJoin) : batch;
    for (const it of items) this.receive(it.packet, iface, it.info);
  }

  /** One trace line per GRO run, built only when someone listens. */
  private readonly traceJoin = (joined: GroPacket, pieces: number): void => {
    if (!this.trace.enabled) return;
    const gso = joined.info?.gso;
    this.trace.emit({
      t: this.clock.now(),
      host: this.name,
      layer: gso?.type === 'tcpv6' ? 'ipv6' : 'ipv4',
      dir: 'local',
      summary: `gro: ${pieces} segments of ≤ ${gso?.size} data bytes joined into a ${joined.packet.length}-byte super-segment`,
      fields: { segments: pieces, size: gso?.size, length: joined.packet.length },
      rfc: 'RFC 9293 §3.1; Linux tcp_gro_receive',
    });
  };

  sendUnreachable(d: IpDelivery, reason: 'port' | 'protocol' | 'admin'): void {
    const out: IpAction[] = [];
    this.core.sendUnreachable(d, reason, this.clock.now(), out);
    this.run(out);
  }

  /**
   * The action list for a send or receive, reused rather than allocated per packet: one
   * per nesting depth, since a handler may send while its delivery is being carried out.
   */
  private takeList(): IpAction[] {
    let out = this.lists[this.depth];
    if (out === undefined) {
      out = [];
      this.lists.push(out);
    }
    this.depth++;
    return out;
  }

  private giveList(out: IpAction[]): void {
    // Popped rather than `length = 0`, which V8 runs as a slower builtin: a list holds a
    // few actions and this runs for every packet.
    while (out.length > 0) out.pop();
    this.depth--;
  }

  /** Carry out the core's actions in the order it gave them. */
  private run(out: IpAction[]): void {
    for (const a of out) {
      switch (a.kind) {
        case 'trace':
          this.trace.emit(a.event);
          break;
        case 'transmit':
          a.iface.link.send(a.packet, a.info);
          break;
        case 'deliver':
          this.handlers.get(a.delivery.protocol)?.receive(a.delivery);
          break;
        case 'icmp-error': {
          const h = this.handlers.get(a.report.protocol);
          if (h?.receiveIcmpError) h.receiveIcmpError(a.report);
          else this.counters.inc(`icmpv${a.report.version}.error.unclaimed`);
          break;
        }
        case 'echo':
          this.echoEnded(a.echo, a.outcome);
          break;
      }
    }
  }

  // ---- reassembly timer ---------------------------------------------------------------

  private armReassemblyTimer(): void {
    const next = this.core.reassemblyTimeout();
    if (next === undefined) return;
    if (this.reasmTimer !== undefined && this.reasmTimerAt <= next) return;
    this.reasmTimer?.cancel();
    this.reasmTimerAt = next;
    this.reasmTimer = this.timers.setTimer(next, () => {
      this.reasmTimer = undefined;
      this.reasmTimerAt = Number.POSITIVE_INFINITY;
      const out: IpAction[] = [];
      this.core.expireReassembly(this.clock.now(), out);
      this.run(out);
      this.armReassemblyTimer();
    });
  }

  // ---- ping ---------------------------------------------------------------------------

  /**
   * Send one echo request and call `done` once: with the reply, or with a PingError on
   * timeout, an ICMP error about the request, or a local send failure. Works on any Clock;
   * on a VirtualClock nothing happens until the driver advances time.
   */
  sendEcho(dst: string, opts: PingOptions, done: EchoDone): EchoHandle {
    const out: IpAction[] = [];
    const s = this.core.startEcho(dst, opts, this.clock.now(), out);
    if (s.superseded !== undefined) {
      const old = this.pings.get(s.superseded);
      if (old !== undefined) {
        old.timer.cancel();
        this.pings.delete(s.superseded);
        old.done(new PingError('cancelled', 'superseded by a new request with the same id and seq'));
      }
    }
    if (!s.ok) {
      this.run(out);
      done(new PingError('send-failed', s.message, undefined, s.sendResult));
      return { id: s.id, seq: s.seq, cancel: () => {} };
    }
    const echo = s.echo;
    const pending: PendingPing = {
      done,
      timer: this.timers.setTimer(s.deadline, () => {
        const o: IpAction[] = [];
        this.core.expireEcho(echo, o);
        this.run(o);
      }),
    };
    this.pings.set(echo, pending);
    this.run(out);
    return {
      id: s.id,
      seq: s.seq,
      cancel: () => {
        if (this.pings.get(echo) !== pending) return;
        pending.timer.cancel();
        this.pings.delete(echo);
        this.core.cancelEcho(echo);
      },
    };
  }

  /** Promise form of sendEcho: resolves with the reply, rejects with a PingError. */
  ping(dst: string, opts: PingOptions = {}): Promise<PingResult> {
    return new Promise((resolve, reject) => {
      this.sendEcho(dst, opts, (err, r) => (err || r === undefined ? reject(err) : resolve(r)));
    });
  }

  private echoEnded(echo: number, outcome: EchoOutcome): void {
    const p = this.pings.get(echo);
    if (p === undefined) return;
    this.pings.delete(echo);
    p.timer.cancel();
    if (outcome.kind === 'reply') p.done(undefined, outcome.result);
    else if (outcome.kind === 'icmp-error')
      p.done(new PingError('icmp-error', outcome.message, outcome.report));
    else p.done(new PingError(outcome.kind, outcome.message));
  }
}
