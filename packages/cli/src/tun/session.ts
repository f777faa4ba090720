import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Host } from '@stepwire/ip';
import {
  type Link,
  type LinkOffloads,
  NETNS_DEFAULTS,
  Netns,
  netnsExists,
  type PacketHandler,
  type PacketInfo,
  PcapWriter,
  type RecordedLink,
  recordLink,
  TunLink,
} from '@stepwire/link';
import { type CongestionName, congestionFromLinux, Tcp, type TcpStackOptions } from '@stepwire/tcp';
import { Udp } from '@stepwire/udp';
import { type Counters, RealClock, TraceBus } from '@stepwire/wire';
import { UsageError } from '../errors.ts';

/** Which way a packet crossed the TUN device, seen from our stack. */
export type TapDirection = 'in' | 'out';

export interface TunSessionOptions {
  /** Network namespace holding the kernel side; made (and removed on close) if missing. */
  netns: string;
  /** Host name in trace events; default 'stepwire'. */
  hostName?: string;
  /** Called for every packet in and out, after the pcap and before the stack sees it. */
  tap?: (dir: TapDirection, packet: Uint8Array, t: number) => void;
  /** Record every packet to this pcap file. */
  pcap?: string;
  /** Keep a pcap in memory (tests) when no path is given. */
  pcapInMemory?: boolean;
  /** Passed to TunLink: bounds how long the read loop outlives close(). */
  pollTimeoutMs?: number;
  /**
   * Open the device with offloads (IFF_VNET_HDR): the kernel hands us coalesced TCP
   * super-segments and partial checksums, and takes ours, cutting them to the MTU (TSO/GSO)
   * as gVisor and wireguard-go have it. A pcap then shows packets as the stack handed them
   * over (super-segments, partial checksums), as tcpdump does on such an interface.
   */
  offloads?: boolean;
  /**
   * Software GSO and GRO in our IP layer (packages/ip/src/gso.ts, gro.ts), as Linux does for
   * every device that lacks the hardware kind: TCP builds 64 KB super-segments that IP cuts
   * to the MTU just before the device, and the in-order segments of a flow in one reader
   * batch are joined before TCP sees them. For a plain device (no `offloads`); with offloads
   * the kernel does both. Default false.
   */
  softwareOffloads?: boolean;
  /**
   * Always make a fresh namespace, removing one of the same name first (tests: a leftover
   * of a crashed run must not be mistaken for `stepwire netns up`'s). Default false.
   */
  replace?: boolean;
  /** For a namespace this session makes: keep the kernel from soliciting routers (default true). */
  quietIpv6?: boolean;
  /**
   * Options of the session's TCP (connection defaults, secrets, ephemeral ports). Unless
   * `tcp.connection.congestion` says otherwise, connections use the host's congestion
   * control (hostCongestionControl) and a 200 ms minimum RTO, as Linux's TCP does.
   */
  tcp?: TcpStackOptions;
  /**
   * Wrap the link between the TUN device (with its pcap) and the stack, e.g. with
   * @stepwire/link's impair() to add loss or reordering the kernel cannot (no netem here).
   */
  wrapLink?: (link: Link, clock: RealClock) => Link;
  /**
   * Count time from this instant (epoch milliseconds) instead of from the session's start.
   * The stacks of `serve --workers` share one origin, so a SYN cookie minted by one (its
   * period counter comes from the clock, RFC 4987 §3.6) is checked against the same time
   * in another, and their trace lines merge in time order.
   */
  clockOrigin?: number;
}

/**
 * A real clock counting from a fixed epoch instant. performance.now() starts at each
 * thread's own origin, so `performance.timeOrigin + performance.now()` is what agrees
 * across worker threads.
 */
class EpochClock extends RealClock {
  constructor(private readonly originEpochMs: number) {
    super();
  }
  override now(): number {
    return performance.timeOrigin + performance.now() - this.originEpochMs;
  }
}

/** Where Linux names the congestion control its TCP uses (net.ipv4.tcp_congestion_control). */
const LINUX_CONGESTION_CONTROL = '/proc/sys/net/ipv4/tcp_congestion_control';
let hostCc: CongestionName | undefined;

/**
 * The congestion control a TUN session's TCP uses by default: the host's own (bbr, cubic;
 * reno as our newreno), read once per process, else CUBIC, Linux's default — so our stack
 * on a TUN device behaves toward a path as the host's kernel would. The simulated network
 * keeps the stack's own default. `tcp.connection.congestion` in the options overrides it.
 */
export function hostCongestionControl(): CongestionName {
  if (hostCc === undefined) {
    let name: string | undefined;
    try {
      name = readFileSync(LINUX_CONGESTION_CONTROL, 'utf8');
    } catch {
      name = undefined; // not Linux, or /proc not mounted: the fallback
    }
    hostCc = congestionFromLinux(name);
  }
  return hostCc;
}

/** A Link that shows every packet to a tap on its way in and out. */
class TappedLink implements Link {
  private handler: PacketHandler | undefined;
  constructor(
    private readonly inner: Link,
    private readonly clock: RealClock,
    private readonly tap: (dir: TapDirection, packet: Uint8Array, t: number) => void,
  ) {
    inner.onPacket((p, info, more) => {
      this.tap('in', p, this.clock.now());
      this.handler?.(p, info, more);
    });
  }
  get name(): string {
    return this.inner.name;
  }
  get mtu(): number {
    return this.inner.mtu;
  }
  get offloads(): LinkOffloads | undefined {
    return this.inner.offloads;
  }
  get counters(): Counters {
    return this.inner.counters;
  }
  send(packet: Uint8Array, info?: PacketInfo): void {
    this.tap('out', packet, this.clock.now());
    this.inner.send(packet, info);
  }
  onPacket(handler: PacketHandler): void {
    this.handler = handler;
  }
  close(): void {
    this.inner.close();
  }
}

/**
 * Our stack on a TUN device whose kernel side lives in a network namespace: a Host with
 * 198.18.0.2/24 and fd00:5757::2/64 on a real clock, UDP and TCP on top, and the namespace.
 *
 * If the namespace exists (made by `stepwire netns up`, with its persistent device), the
 * session attaches to its device and leaves both in place on close. Otherwise it makes
 * them with Netns.create and removes them on close, and also on exit, SIGINT and SIGTERM
 * (Netns registers those handlers), so an interrupted run leaves nothing behind.
 */
export class TunSession {
  readonly clock: RealClock;
  readonly trace = new TraceBus();
  readonly host: Host;
  readonly udp: Udp;
  readonly tcp: Tcp;
  /** The TUN device itself, for its counters ('rx', 'tx', 'drop.*'). */
  readonly tun: TunLink;
  readonly pcap: PcapWriter | undefined;
  readonly device: string;
  /** Whether this session made the namespace (and so removes it). */
  readonly created: boolean;
  readonly ours = { v4: NETNS_DEFAULTS.ourV4, v6: NETNS_DEFAULTS.ourV6 } as const;
  readonly kernel = {
    v4: NETNS_DEFAULTS.kernelV4.split('/')[0]!,
    v6: NETNS_DEFAULTS.kernelV6.split('/')[0]!,
  };
  readonly prefixes = { v4: '198.18.0.0/24', v6: 'fd00:5757::/64' } as const;
  private readonly ns: Netns | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    readonly netns: string,
    tun: TunLink,
    ns: Netns | undefined,
    opts: TunSessionOptions,
  ) {
    this.clock = opts.clockOrigin !== undefined ? new EpochClock(opts.clockOrigin) : new RealClock();
    this.tun = tun;
    this.ns = ns;
    this.created = ns !== undefined;
    this.device = NETNS_DEFAULTS.device;
    // The capture's dates are the clock's zero plus its times: the shared origin, if any.
    const epochMs = opts.clockOrigin ?? Date.now();
    this.pcap = opts.pcap
      ? PcapWriter.toFile(opts.pcap, { epochMs })
      : opts.pcapInMemory
        ? PcapWriter.inMemory({ epochMs })
        : undefined;
    let link: Link = tun;
    if (this.pcap) link = recordLink(link, this.pcap, this.clock) satisfies RecordedLink;
    if (opts.tap) link = new TappedLink(link, this.clock, opts.tap);
    if (opts.wrapLink) link = opts.wrapLink(link, this.clock);
    this.host = new Host({
      name: opts.hostName ?? 'stepwire',
      clock: this.clock,
      trace: this.trace,
      ...(opts.softwareOffloads ? { softwareGso: true, softwareGro: true } : {}),
    });
    this.host.addInterface({ link, ipv4: `${this.ours.v4}/24`, ipv6: `${this.ours.v6}/64` });
    this.udp = new Udp(this.host);
    // Like Linux itself: the RTO floor of 200 ms (RFC 6298 §2.4 allows it) and the host's
    // congestion control, unless the options say otherwise.
    this.tcp = new Tcp(this.host, {
      ...opts.tcp,
      connection: { minRto: 200, congestion: hostCongestionControl(), ...opts.tcp?.connection },
    });
  }

  /** Open the namespace's TUN device (making both if needed). Setup errors are one line. */
  static open(opts: TunSessionOptions): TunSession {
    const name = opts.netns;
    const poll = {
      ...(opts.pollTimeoutMs !== undefined ? { pollTimeoutMs: opts.pollTimeoutMs } : {}),
      ...(opts.offloads ? { offloads: true } : {}),
    };
    if (!opts.replace && netnsExists(name)) {
      const device = NETNS_DEFAULTS.device;
      if (!deviceExists(name, device)) {
        throw new UsageError(
          `namespace '${name}' exists but has no device ${device}: remove it with 'stepwire netns down --netns ${name}' or choose another --netns`,
        );
      }
      const tun = TunLink.open({ netns: name, name: device, ...poll });
      return new TunSession(name, tun, undefined, opts);
    }
    const ns = Netns.create({
      name,
      ...poll,
      ...(opts.quietIpv6 !== undefined ? { quietIpv6: opts.quietIpv6 } : {}),
    });
    try {
      return new TunSession(name, ns.link, ns, opts);
    } catch (e) {
      ns.closeSync();
      throw e;
    }
  }

  /**
   * A stack on one queue of a multi-queue device that someone else made and configured
   * (`serve --workers`: the main thread owns the namespace, each worker thread one queue).
   * close() closes only this queue.
   */
  static onQueue(netns: string, queue: TunLink, opts: Omit<TunSessionOptions, 'netns'>): TunSession {
    return new TunSession(netns, queue, undefined, { ...opts, netns });
  }

  /** Run a program inside the namespace (only for sessions that made it; tests use this). */
  get namespace(): Netns | undefined {
    return this.ns;
  }

  /** Close the stack and the device; remove the namespace if this session made it. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.host.close();
      if (this.ns) await this.ns.close();
      else {
        this.tun.close();
        await Promise.race([this.tun.closed, new Promise((r) => setTimeout(r, 2000).unref())]);
      }
      this.pcap?.close();
    })();
    return this.closing;
  }

  /** The same without waiting, for paths that cannot await. */
  closeSync(): void {
    this.host.close();
    if (this.ns) this.ns.closeSync();
    else this.tun.close();
    this.pcap?.close();
  }
}

function deviceExists(netns: string, device: string): boolean {
  const r = spawnSync('ip', ['-n', netns, 'link', 'show', 'dev', device], {
    stdio: 'ignore',
    timeout: 10_000,
  });
  return r.status === 0;
}

/** Every drop a Counters holds: the names '<layer>.drop.<reason>' (and a link's 'drop.<reason>'). */
export function dropCount(c: Counters): number {
  let n = 0;
  for (const [k, v] of Object.entries(c.snapshot()))
    if (k.includes('.drop.') || k.startsWith('drop.')) n += v;
  return n;
}
