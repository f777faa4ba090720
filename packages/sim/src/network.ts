import { execFileSync } from 'node:child_process';
import {
  decodeIpv4,
  decodeIpv6,
  encodeIcmpv4,
  encodeIcmpv6,
  encodeIpv4,
  encodeIpv6,
  fragmentIpv4,
  Host,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
} from '@stepwire/ip';
import {
  type Impairments,
  impair,
  type Link,
  MemoryLink,
  Netns,
  PcapngWriter,
  PcapWriter,
  recordLink,
  TunLink,
} from '@stepwire/link';
import { Tcp, type TcpServer } from '@stepwire/tcp';
import {
  type ConnectOptions,
  type CryptoProvider,
  nobleCrypto,
  pki,
  type SecureServer,
  type SecureSocket,
  type ServerOptions,
  connect as tlsConnect,
  createServer as tlsCreateServer,
} from '@stepwire/tls';
import { Udp } from '@stepwire/udp';
import {
  type Clock,
  Counters,
  Prng,
  RealClock,
  TimerGroup,
  TraceBus,
  type TraceEvent,
  VirtualClock,
} from '@stepwire/wire';
import { dissect } from './dissect.ts';
import { KeepAlive, WatchedClock } from './keepalive.ts';
import { formatLadderLine, type LadderLine, ladderHeader, noteFor } from './ladder.ts';
import {
  type PendingHost,
  type PendingReport,
  type RunOptions,
  type RunTarget,
  runVirtual,
  SimulationTimeLimit,
} from './run.ts';

/**
 * The calendar date a simulation's clock starts at: t = 0 on the virtual clock is this
 * instant for certificates, ticket ages and pcap timestamps. Fixed, so runs stay
 * deterministic while Wireshark shows a sensible date (not 1970) and certificates issued
 * "now" are valid. (RealClock networks use the real date.)
 */
export const SIM_EPOCH = Date.UTC(2026, 0, 1);

/** What every link from a host to the network's switch does to packets (one direction: host → switch). */
export interface LinkOptions extends Impairments {
  /** Largest IP packet; default 1500 (IPv6 needs 1280). */
  mtu?: number;
}

export interface NetworkOptions {
  /** Every random choice (ISNs, ports, loss, TLS randoms and key shares) comes from it; default 1. */
  seed?: number;
  link?: LinkOptions;
  /** Write every packet, as each host sends it, to this pcap file (or keep it in memory with `true`). */
  pcap?: string | true;
  /**
   * The same as a pcapng file (or in memory with `true`), with every TLS secret of the run
   * in a Decryption Secrets Block ahead of the packets it decrypts: one file that Wireshark
   * decrypts alone.
   */
  pcapng?: string | true;
  /**
   * Record a ladder (net.ladder(), net.lines): `true`, or a function that also gets each
   * formatted line as it happens (e.g. console.log). Off by default: dissecting costs time.
   */
  trace?: boolean | ((line: string) => void);
  /** With `trace`: every ladder line as data, as it happens (the packet's bytes included). */
  onLine?: (line: LadderLine) => void;
  /**
   * 'virtual' (default): time moves only inside net.run(), deterministically. 'real': a
   * RealClock; packets move on their own and a ref'd handle keeps the process alive while
   * anything is pending.
   */
  clock?: 'virtual' | 'real';
  /** Milliseconds since 1970 at t = 0 (certificates, pcap); default SIM_EPOCH, or Date.now() on a real clock. */
  epoch?: number;
  /** Receives every TLS secret (NSS key log lines), for Wireshark with the pcap. */
  keylog?: (line: string) => void;
  /**
   * On a real clock, hold the process open while anything is pending (default true), as
   * open node:net sockets and listening servers do. false shows what happens without it:
   * the stack's timers are unref'd, so a script awaiting our sockets exits with code 13.
   */
  keepAlive?: boolean;
}

/** The switch's own addresses, when it answers as a router (ICMP errors: packet too big). */
export const ROUTER = { v4: '198.18.0.254', v6: 'fd00:5757::fe' } as const;

export interface HostOptions {
  /**
   * MTU of this host's own link (default: the network's). Packets bigger than it that other
   * hosts send here make the switch answer as a router would (RFC 1191, RFC 8201): ICMP
   * "fragmentation needed" (IPv4 with DF) or "packet too big" (IPv6) from 198.18.0.254 /
   * fd00:5757::fe; IPv4 without DF is fragmented on the way (RFC 791 §2.3).
   */
  mtu?: number;
  /** Options for this host's TCP (connection defaults, ...); secrets still come from the seed. */
  tcp?: ConstructorParameters<typeof Tcp>[1];
}

/** Our TLS on one host, with the network's CA, clock, seeded randomness and trace filled in. */
export interface HostTls {
  /**
   * A node:tls-style server (see @stepwire/tls createServer) with a certificate from the
   * network's CA for this host's addresses, `${name}.test` and stepwire.test; listening on
   * `port` of this host's TCP when one is given.
   */
  createServer(
    options?: Partial<ServerOptions> & { port?: number },
    onSecureConnection?: (s: SecureSocket) => void,
  ): SecureServer & { tcp?: TcpServer };
  /** A TLS client over a new TCP connection from this host; trusts the network's CA by default. */
  connect(options: Omit<ConnectOptions, 'socket'> & { host: string; port: number }): SecureSocket;
}

export interface NetHost {
  name: string;
  /** The IP layer (ICMP, routes, ping). */
  ip: Host;
  udp: Udp;
  tcp: Tcp;
  tls: HostTls;
  ipv4: string;
  ipv6: string;
  /** Timers this host's layers have armed (IP, UDP and TCP; TCP's own count is in tcp.stats). */
  readonly timers: TimerGroup;
}

/** A host of ours on a Linux TUN device whose kernel side lives in a namespace made for it. */
export interface TunHost extends NetHost {
  /** The namespace: run kernel-side programs with netns.spawn()/run(); removed by net.close(). */
  netns: Netns;
  /** The kernel's addresses on the device (198.18.0.1, fd00:5757::1 by default). */
  kernel: { v4: string; v6: string };
}

export interface TunHostOptions {
  /**
   * Name of the namespace to make (removed on close, also on exit or SIGINT); one of a crashed
   * run is replaced. Or the open namespace of another TUN host of this network, to join it:
   * this host gets a device of its own there (give it another `device` and subnet), IPv4
   * forwarding is turned on, and the kernel routes between the namespace's devices — every
   * packet between two of our hosts is a real one through the kernel's forwarding path.
   */
  netns: string | Netns;
  mtu?: number;
  /** The TUN device inside the namespace; default sw0. */
  device?: string;
  /** The kernel's side of the device, address/prefix; default 198.18.0.1/24 (our host's prefix is the same). */
  kernelV4?: string;
  /** Our host's address on the device; default 198.18.0.2. */
  ourV4?: string;
  /** The kernel's IPv6 address/prefix; default fd00:5757::1/64. */
  kernelV6?: string;
  /** Our host's IPv6 address; default fd00:5757::2. */
  ourV6?: string;
  /** Prefixes our host reaches through the kernel ('198.18.0.0/24'): other devices' subnets. */
  routes?: string[];
  /**
   * What the path from our host into the kernel does to packets (delay, rate, loss, ...), as a
   * simulated host's link does; applied as our host sends, so a host-to-host path through
   * the kernel crosses it once. The kernel here has no netem, so it is done in user space.
   */
  impair?: Impairments;
}

interface Port {
  host: NetHost;
  mtu: number;
  /** The switch's end of this host's link. */
  sw: Link;
}

/**
 * A simulated network: hosts on one switch, each behind its own link with the given
 * impairments (applied as a host sends, so a→b crosses them once), everything driven by
 * one clock. Create it with createNetwork().
 */
export class Network {
  readonly clock: Clock;
  readonly trace = new TraceBus();
  /** Ladder lines (with `trace`), in order: packets and the notes between them. */
  readonly lines: LadderLine[] = [];
  readonly pcap: PcapWriter | undefined;
  readonly pcapng: PcapngWriter | undefined;
  readonly epoch: number;
  readonly seed: number;
  /** Counters of the switch ('switch.drop.no-host'). */
  readonly counters = new Counters();
  private readonly wire: TimerGroup;
  private readonly prng: Prng;
  private readonly ports: Port[] = [];
  private readonly tunHosts: TunHost[] = [];
  /** Devices of hosts that joined another host's namespace (the namespace closes only its first). */
  private readonly joinedLinks: TunLink[] = [];
  private readonly byAddress = new Map<string, Port>();
  private readonly opts: NetworkOptions;
  private readonly keepAlive: KeepAlive | undefined;
  private readonly tlsPrng: Prng;
  private readonly cryptoProvider: CryptoProvider;
  private readonly ticketKey: Uint8Array;
  private ca: pki.Credentials | undefined;
  private closed = false;
  /** Where TLS secrets go: the user's keylog and the pcapng's secrets block. */
  private readonly keylog: ((line: string) => void) | undefined;

  constructor(opts: NetworkOptions = {}) {
    this.opts = opts;
    this.seed = opts.seed ?? 1;
    this.prng = new Prng(this.seed);
    const real = opts.clock === 'real';
    this.epoch = opts.epoch ?? (real ? Date.now() : SIM_EPOCH);
    if (real && opts.keepAlive !== false) {
      this.keepAlive = new KeepAlive(() => !this.closed && this.holdsProcess());
      const ka = this.keepAlive;
      this.clock = new WatchedClock(new RealClock(), () => ka.poke());
    } else if (real) {
      this.clock = new RealClock();
    } else {
      this.clock = new VirtualClock();
    }
    this.wire = new TimerGroup(this.clock);
    this.pcap =
      opts.pcap === undefined
        ? undefined
        : opts.pcap === true
          ? PcapWriter.inMemory({ epochMs: this.epoch })
          : PcapWriter.toFile(opts.pcap, { epochMs: this.epoch });
    this.pcapng =
      opts.pcapng === undefined
        ? undefined
        : opts.pcapng === true
          ? PcapngWriter.inMemory({ epochMs: this.epoch })
          : PcapngWriter.toFile(opts.pcapng, { epochMs: this.epoch });
    if (this.pcapng) {
      const ng = this.pcapng;
      const user = opts.keylog;
      this.keylog = (line) => {
        ng.keylog(line);
        user?.(line);
      };
    } else this.keylog = opts.keylog;
    // TLS randomness from its own stream of the seed: adding a host does not shift it.
    this.tlsPrng = new Prng((this.seed ^ 0x7715) >>> 0);
    this.cryptoProvider = real ? nobleCrypto : seededCrypto(this.tlsPrng);
    this.ticketKey = this.tlsPrng.bytes(32);
    if (opts.trace) {
      const sink = typeof opts.trace === 'function' ? opts.trace : undefined;
      sink?.(ladderHeader());
      this.trace.on((e: TraceEvent) => {
        // TLS stamps events with its calendar clock: put them on the network's time line.
        const n = noteFor({ ...e, t: this.clock.now() });
        if (n) this.addLine(n);
      });
    }
  }

  /**
   * Where TLS secrets go (the user's keylog and the pcapng's secrets block), for layers that
   * run the TLS machines themselves rather than through host.tls: QUIC (RFC 9001 §5).
   */
  get keylogSink(): ((line: string) => void) | undefined {
    return this.keylog;
  }

  /** The calendar time of the simulation (ms since 1970): epoch + clock. */
  now(): number {
    return this.epoch + this.clock.now();
  }

  /** The host called `name`, made on first use with the next addresses (198.18.0.N, fd00:5757::N). */
  host(name: string, options: HostOptions = {}): NetHost {
    const found = this.ports.find((p) => p.host.name === name);
    if (found) return found.host;
    if (this.closed) throw new Error('network is closed');
    const n = this.ports.length + 1;
    if (n > 254) throw new RangeError('a network holds at most 254 hosts (one /24)');
    const ipv4 = `198.18.0.${n}`;
    const ipv6 = `fd00:5757::${n.toString(16)}`;
    const l = this.opts.link ?? {};
    const { mtu, ...impairments } = l;
    const [hostEnd, swEnd] = MemoryLink.pair({
      clock: this.wire,
      mtu: options.mtu ?? mtu ?? 1500,
      seed: this.prng.u32(),
      // Impaired on the way from the host to the switch only: each path crosses it once.
      impairments: [impairments, {}],
      trace: this.trace,
      name,
    });
    const timers = new TimerGroup(this.clock);
    const ip = new Host({
      name,
      clock: timers,
      trace: this.trace,
      prng: new Prng(this.prng.u32()),
      counters: new Counters(),
    });
    ip.addInterface({ link: this.tap(hostEnd, name), ipv4: `${ipv4}/24`, ipv6: `${ipv6}/64` });
    // Secrets from the seed too: the same seed gives the same ISNs, cookies and ladder.
    const tcp = new Tcp(ip, {
      isnSecret: ip.prng.bytes(16),
      synCookieSecret: ip.prng.bytes(16),
      fastOpenKey: ip.prng.bytes(16),
      ...options.tcp,
    });
    const udp = new Udp(ip);
    if (this.keepAlive) this.watchSockets(tcp, udp, this.keepAlive);
    const host: NetHost = { name, ip, udp, tcp, ipv4, ipv6, timers, tls: this.tlsFor(() => host) };
    const port: Port = { host, sw: swEnd, mtu: options.mtu ?? mtu ?? 1500 };
    this.ports.push(port);
    this.byAddress.set(addressKey4(n), port);
    this.byAddress.set(addressKey6(n), port);
    swEnd.onPacket((p) => this.forward(port, p));
    return host;
  }

  /**
   * A host on a real Linux TUN device (root only; needs clock: 'real'): the network namespace
   * `netns` is made with the kernel at 198.18.0.1 / fd00:5757::1 and our host at 198.18.0.2 /
   * fd00:5757::2, and removed again by close() (or at exit). Kernel programs (curl, openssl)
   * run inside it with `host.netns.spawn(...)`; nothing is ever sent from the root namespace.
   */
  tun(name: string, options: TunHostOptions): TunHost {
    if (this.clock instanceof VirtualClock)
      throw new Error("a TUN host needs createNetwork({ clock: 'real' })");
    if (this.closed) throw new Error('network is closed');
    const addresses = {
      ...(options.device ? { device: options.device } : {}),
      ...(options.kernelV4 ? { kernelV4: options.kernelV4 } : {}),
      ...(options.ourV4 ? { ourV4: options.ourV4 } : {}),
      ...(options.kernelV6 ? { kernelV6: options.kernelV6 } : {}),
      ...(options.ourV6 ? { ourV6: options.ourV6 } : {}),
    };
    const joining = typeof options.netns !== 'string';
    const ns =
      typeof options.netns === 'string'
        ? Netns.create({
            name: options.netns,
            ...(options.mtu ? { mtu: options.mtu } : {}),
            ...addresses,
            pollTimeoutMs: 50,
          })
        : options.netns;
    let joined: TunLink | undefined;
    try {
      if (joining) {
        if (!ns.isOpen || !this.tunHosts.some((h) => h.netns === ns))
          throw new Error(`namespace '${ns.name}' is not an open one of this network's TUN hosts`);
        joined = joinNetns(ns, options);
      }
      let link: Link = joined ?? ns.link;
      // Drops and holds go on the trace as a simulated link's do ('drop.loss' in the ladder).
      if (options.impair)
        link = impair(
          link,
          { seed: this.prng.u32(), trace: this.trace, host: name, ...options.impair },
          this.wire,
        );
      if (this.pcap) link = recordLink(link, this.pcap, this.clock);
      if (this.pcapng) link = recordLink(link, this.pcapng, this.clock);
      const timers = new TimerGroup(this.clock);
      const ip = new Host({
        name,
        clock: timers,
        trace: this.trace,
        prng: new Prng(this.prng.u32()),
        counters: new Counters(),
      });
      const kernelV4 = options.kernelV4 ?? (joining ? '' : `${ns.kernel.v4}/24`);
      const kernelV6 = options.kernelV6 ?? (joining ? '' : `${ns.kernel.v6}/64`);
      const ourV4 = joining ? (options.ourV4 ?? '') : ns.ours.v4;
      const ourV6 = joining ? (options.ourV6 ?? '') : ns.ours.v6;
      // Our address with the kernel side's prefix: the device is the link between the two.
      const iface = ip.addInterface({
        link: this.tapTun(link, name),
        ipv4: `${ourV4}/${kernelV4.split('/')[1] ?? 24}`,
        ipv6: `${ourV6}/${kernelV6.split('/')[1] ?? 64}`,
      });
      const kernel = { v4: kernelV4.split('/')[0] ?? '', v6: kernelV6.split('/')[0] ?? '' };
      for (const r of options.routes ?? []) ip.addRoute(r, iface, r.includes(':') ? kernel.v6 : kernel.v4);
      const tcp = new Tcp(ip);
      const udp = new Udp(ip);
      if (this.keepAlive) this.watchSockets(tcp, udp, this.keepAlive);
      const host: TunHost = {
        name,
        ip,
        udp,
        tcp,
        ipv4: ourV4,
        ipv6: ourV6,
        timers,
        tls: this.tlsFor(() => host),
        netns: ns,
        kernel,
      };
      this.tunHosts.push(host);
      if (joined) this.joinedLinks.push(joined);
      return host;
    } catch (e) {
      // Undo only what this call made: a joined namespace belongs to the host that made it.
      if (joined) joined.close();
      if (!joining) ns.closeSync();
      throw e;
    }
  }

  /** Every host, in the order they were made. */
  get hosts(): NetHost[] {
    return this.ports.map((p) => p.host);
  }

  /**
   * Drive the network until `until` is done, letting Node's own callbacks (nextTick,
   * promises, setImmediate, node:http on our sockets) run between timers:
   * - a promise: until it settles; returns its value or throws its error;
   * - a function: until it returns true;
   * - a number: for that many ms of simulated time;
   * - nothing: until no timer is armed anywhere (every exchange and TIME-WAIT is over).
   * Throws SimulationStalled when nothing can happen any more while the promise (or
   * condition) is pending, and SimulationTimeLimit after `limit` ms of simulated time.
   * On a real clock, time runs by itself: this just waits (the limit is then real ms).
   */
  async run<T>(until?: Promise<T>, options?: RunOptions): Promise<T>;
  async run(until?: (() => boolean) | number, options?: RunOptions): Promise<void>;
  async run<T>(until?: RunTarget<T>, options: RunOptions = {}): Promise<T | undefined> {
    if (this.clock instanceof VirtualClock) {
      return runVirtual(this.clock, until, options, () => this.pending());
    }
    return this.runReal(until, options);
  }

  private async runReal<T>(until: RunTarget<T>, options: RunOptions): Promise<T | undefined> {
    const limit = options.limit ?? 600_000;
    const start = this.clock.now();
    if (typeof until === 'number') {
      await new Promise((r) => setTimeout(r, until));
      return undefined;
    }
    if (until !== undefined && typeof until !== 'function') {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const limited = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new SimulationTimeLimit('the awaited promise', limit, this.pending())),
          limit,
        );
      });
      try {
        return await Promise.race([until, limited]);
      } finally {
        clearTimeout(timer);
      }
    }
    // Idle on a real clock: nothing in flight and no connection but TIME-WAIT (whose 2×MSL,
    // like the kernel's, outlives the program); listeners may stay open.
    const done = until ?? (() => !this.holdsProcess(false));
    while (!done()) {
      if (this.clock.now() - start > limit) {
        throw new SimulationTimeLimit('the condition given to run()', limit, this.pending());
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    return undefined;
  }

  /**
   * What holds a real-clock process open, as Node's own handles would: packets in flight,
   * IP and UDP timers (a ping awaiting its timeout), TCP connections other than TIME-WAIT
   * (which, like the kernel's, outlives the program), listeners and bound UDP sockets.
   */
  private holdsProcess(listenersCount = true): boolean {
    if (this.wire.armed > 0) return true;
    for (const host of this.allHosts()) {
      const stats = host.tcp.stats;
      if (host.timers.armed - (stats.timersArmed ?? 0) > 0) return true;
      if (listenersCount && (stats.listeners.length > 0 || host.udp.boundSockets().length > 0)) return true;
      for (const c of host.tcp.connections())
        if (c.state !== 'TIME-WAIT' && c.state !== 'CLOSED') return true;
    }
    return false;
  }

  private allHosts(): NetHost[] {
    return [...this.ports.map((p) => p.host), ...this.tunHosts];
  }

  /** What is still pending: armed timers per host and layer, open connections, listeners, sockets. */
  pending(): PendingReport {
    const hosts: PendingHost[] = this.allHosts().map((host) => {
      const tcpStats = host.tcp.stats;
      return {
        name: host.name,
        timers: { total: host.timers.armed, tcp: tcpStats.timersArmed ?? 0 },
        connections: host.tcp
          .connections()
          .map((c) => `${c.local.addr}:${c.local.port} → ${c.remote.addr}:${c.remote.port} ${c.state}`),
        listeners: tcpStats.listeners.map((l) => `${l.address}:${l.port}`),
        udpSockets: host.udp.boundSockets().map((s) => `${s.localAddress}:${s.localPort}`),
      };
    });
    return { t: this.clock.now(), wireTimers: this.wire.armed, hosts };
  }

  /** The ladder so far (needs `trace`), one line per packet or note, with its header. */
  ladder(): string {
    return [ladderHeader(), ...this.lines.map(formatLadderLine)].join('\n');
  }

  /** Stop everything: timers, connections, the pcap, and the real clock's hold on the process. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.ports) {
      p.host.tcp.shutdown();
      p.host.ip.close();
      p.sw.close();
    }
    for (const h of this.tunHosts) {
      h.tcp.shutdown();
      h.ip.close();
    }
    // The joined devices first: an open fd would keep the namespace alive, unnamed.
    for (const l of this.joinedLinks) l.close();
    for (const h of this.tunHosts) h.netns.closeSync();
    this.pcap?.close();
    this.pcapng?.close();
    this.keepAlive?.close();
  }

  private addLine(l: LadderLine): void {
    // The packet goes to onLine only: senders may reuse their buffers, and a long run would
    // otherwise keep every packet alive.
    if (l.kind === 'packet' && l.packet) {
      const { packet: _, ...kept } = l;
      this.lines.push(kept);
    } else this.lines.push(l);
    if (typeof this.opts.trace === 'function') this.opts.trace(formatLadderLine(l));
    this.opts.onLine?.(l);
  }

  private capture(packet: Uint8Array): void {
    this.pcap?.write(packet, this.clock.now());
    this.pcapng?.write(packet, this.clock.now());
  }

  /** Every packet a host hands to its link: into the pcap and (with trace) the ladder. */
  private tap(link: Link, from: string): Link {
    const send = link.send.bind(link);
    link.send = (packet: Uint8Array) => {
      this.capture(packet);
      if (this.opts.trace) {
        const to = this.destination(packet);
        const name = to === 'all' ? '*' : (to?.host.name ?? '?');
        this.addLine({
          kind: 'packet',
          t: this.clock.now(),
          from,
          to: name,
          summary: dissect(packet),
          packet,
        });
      }
      send(packet);
    };
    return link;
  }

  /** A TUN host's packets in the ladder: 'name→kernel' out, 'kernel→name' in. */
  private tapTun(link: Link, name: string): Link {
    if (!this.opts.trace) return link;
    const send = link.send.bind(link);
    link.send = (packet: Uint8Array) => {
      this.addLine({
        kind: 'packet',
        t: this.clock.now(),
        from: name,
        to: 'kernel',
        summary: dissect(packet),
        packet,
      });
      send(packet);
    };
    const onPacket = link.onPacket.bind(link);
    link.onPacket = (handler) =>
      onPacket((packet) => {
        this.addLine({
          kind: 'packet',
          t: this.clock.now(),
          from: 'kernel',
          to: name,
          summary: dissect(packet),
          packet,
        });
        handler(packet);
      });
    return link;
  }

  /** The port a packet is for, 'all' for broadcast and multicast, undefined for nobody here. */
  private destination(p: Uint8Array): Port | 'all' | undefined {
    const v = p[0] === undefined ? 0 : p[0] >> 4;
    if (v === 4 && p.length >= 20) {
      const last = p[19] ?? 0;
      if ((p[16] ?? 0) >= 224 || last === 255) return 'all'; // multicast, broadcast (RFC 919)
      return this.byAddress.get(`4:${p[16]}.${p[17]}.${p[18]}.${last}`);
    }
    if (v === 6 && p.length >= 40) {
      if (p[24] === 0xff) return 'all'; // multicast (RFC 4291 §2.7)
      return this.byAddress.get(`6:${Buffer.from(p.subarray(24, 40)).toString('hex')}`);
    }
    return undefined;
  }

  /** The switch: a packet from one port goes to the port that owns its destination address. */
  private forward(from: Port, packet: Uint8Array): void {
    const to = this.destination(packet);
    if (to === 'all') {
      for (const p of this.ports) if (p !== from) p.sw.send(packet);
    } else if (to) {
      if (packet.length > to.mtu) this.tooBig(from, to, packet);
      else to.sw.send(packet);
    } else {
      this.counters.inc('switch.drop.no-host');
      this.trace.emit({
        t: this.clock.now(),
        host: 'switch',
        layer: 'link',
        dir: 'drop',
        summary: `no host has the destination of ${dissect(packet)}`,
      });
    }
  }

  /**
   * A packet bigger than the next link's MTU, as a router handles it: IPv4 without DF is
   * fragmented (RFC 791 §2.3); IPv4 with DF gets ICMP type 3 code 4 with the next-hop MTU
   * (RFC 1191 §4); IPv6 gets ICMPv6 Packet Too Big (RFC 4443 §3.2, RFC 8201). The error
   * quotes as much of the packet as fits (RFC 1812 §4.3.2.3, RFC 4443 §2.4 (c)).
   */
  private tooBig(from: Port, to: Port, packet: Uint8Array): void {
    const v = (packet[0] ?? 0) >> 4;
    this.counters.inc('switch.too-big');
    if (v === 4) {
      const p = decodeIpv4(packet, { verifyChecksum: false });
      if (!p.dontFragment) {
        for (const f of fragmentIpv4(p, to.mtu)) this.routerSend(to, encodeIpv4(f));
        return;
      }
      const icmp = encodeIcmpv4({
        kind: 'destination-unreachable',
        code: 4,
        nextHopMtu: to.mtu,
        original: packet.subarray(0, Math.min(packet.length, 548)),
      });
      this.routerSend(
        from,
        encodeIpv4({
          dscp: 0,
          ecn: 0,
          identification: 0,
          reservedFlag: false,
          dontFragment: false,
          moreFragments: false,
          fragmentOffset: 0,
          ttl: 64,
          protocol: IPPROTO_ICMP,
          src: ROUTER.v4,
          dst: p.src,
          options: [],
          payload: icmp,
        }),
      );
    } else if (v === 6) {
      const p = decodeIpv6(packet);
      const icmp = encodeIcmpv6(
        {
          kind: 'packet-too-big',
          code: 0,
          mtu: to.mtu,
          original: packet.subarray(0, Math.min(packet.length, 1232)),
        },
        ROUTER.v6,
        p.src,
      );
      this.routerSend(
        from,
        encodeIpv6({
          trafficClass: 0,
          flowLabel: 0,
          hopLimit: 64,
          src: ROUTER.v6,
          dst: p.src,
          extensionHeaders: [],
          nextHeader: IPPROTO_ICMPV6,
          payload: icmp,
        }),
      );
    }
  }

  /** A packet the switch itself sends, as a router: into the pcap and the ladder like a host's. */
  private routerSend(to: Port, packet: Uint8Array): void {
    this.capture(packet);
    if (this.opts.trace) {
      this.addLine({
        kind: 'packet',
        t: this.clock.now(),
        from: 'router',
        to: to.host.name,
        summary: dissect(packet),
        packet,
      });
    }
    to.sw.send(packet);
  }

  /** Listeners and bound sockets hold a real-clock process like Node's servers and dgram sockets do. */
  private watchSockets(tcp: Tcp, udp: Udp, ka: KeepAlive): void {
    const listen = tcp.listen.bind(tcp);
    tcp.listen = (o) => {
      const r = listen(o);
      ka.poke();
      return r;
    };
    const claim = udp.claim.bind(udp);
    udp.claim = (s, address, port) => {
      const r = claim(s, address, port);
      ka.poke();
      return r;
    };
  }

  /** The network's CA, made on first use (valid from an hour before t = 0). */
  certificateAuthority(): pki.Credentials {
    this.ca ??= pki.createCertificateAuthority({
      now: new Date(this.epoch - 3600_000),
      keyType: 'ed25519',
      commonName: 'stepwire simulation CA',
    });
    return this.ca;
  }

  /** A certificate and key from the network's CA (server and client use), for these names. */
  issueCertificate(dnsNames: string[], ipAddresses: string[] = []): pki.Credentials {
    return pki.createLeafCertificate(this.certificateAuthority(), {
      now: new Date(this.epoch - 3600_000),
      dnsNames,
      ipAddresses,
      keyType: 'ed25519',
    });
  }

  private tlsFor(self: () => NetHost): HostTls {
    return {
      createServer: (options = {}, onSecure) => {
        const h = self();
        const { port, ...rest } = options;
        let cert = rest.cert;
        let key = rest.key;
        if (cert === undefined || key === undefined) {
          const leaf = this.issueCertificate([`${h.name}.test`, 'stepwire.test'], [h.ipv4, h.ipv6]);
          cert = leaf.certificatePem;
          key = leaf.privateKeyPem;
        }
        const server: SecureServer & { tcp?: TcpServer } = tlsCreateServer(
          {
            provider: this.cryptoProvider,
            ticketKey: this.ticketKey,
            trace: this.trace,
            hostName: h.name,
            now: () => this.now(),
            ...(this.keylog ? { keylog: this.keylog } : {}),
            ...rest,
            cert,
            key,
          },
          onSecure,
        );
        if (port !== undefined) {
          const tcpServer = h.tcp.createServer();
          server.listen(tcpServer);
          tcpServer.listen(port);
          server.tcp = tcpServer;
          server.on('close', () => tcpServer.close());
        }
        return server;
      },
      connect: (options) => {
        const h = self();
        const { host, port, ...rest } = options;
        return tlsConnect({
          ca: this.certificateAuthority().certificatePem,
          servername: 'stepwire.test',
          provider: this.cryptoProvider,
          trace: this.trace,
          hostName: h.name,
          now: () => this.now(),
          ...(this.keylog ? { keylog: this.keylog } : {}),
          ...rest,
          socket: h.tcp.connect({ host, port }),
        });
      },
    };
  }
}

/**
 * Another TUN device in an open namespace (for a host joining it), configured as Netns does
 * its first one: IPv6 router solicitations off, the kernel's addresses, up; and IPv4
 * forwarding on, so the kernel routes between the namespace's devices (RFC 1812 §5.2).
 */
function joinNetns(ns: Netns, o: TunHostOptions): TunLink {
  const device = o.device;
  if (!device || device.includes('%') || !o.kernelV4 || !o.ourV4 || !o.kernelV6 || !o.ourV6)
    throw new Error(
      'a host joining a namespace needs a device of its own (a fixed name), kernelV4/ourV4 and kernelV6/ourV6',
    );
  const link = TunLink.open({ name: device, netns: ns.name, mtu: o.mtu ?? 1500, pollTimeoutMs: 50 });
  try {
    const run = (args: string[]) =>
      execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
    // Per-namespace sysctls, written from inside it; before the device comes up, so it sends
    // no router solicitation (RFC 4861 §6.3.7) and only the examples' packets cross it.
    const conf = `/proc/sys/net/ipv6/conf/${device}`;
    run([
      'netns',
      'exec',
      ns.name,
      'sh',
      '-c',
      `echo 0 > ${conf}/router_solicitations && echo 0 > ${conf}/accept_ra && echo 1 > /proc/sys/net/ipv4/ip_forward`,
    ]);
    run(['-n', ns.name, 'addr', 'add', o.kernelV4, 'dev', device]);
    // nodad: no duplicate address detection (RFC 4862 §5.4), usable at once.
    run(['-n', ns.name, '-6', 'addr', 'add', o.kernelV6, 'dev', device, 'nodad']);
    run(['-n', ns.name, 'link', 'set', device, 'up']);
  } catch (e) {
    link.close();
    throw e;
  }
  return link;
}

/** Make a simulated network; add hosts with net.host('a'). */
export function createNetwork(options: NetworkOptions = {}): Network {
  return new Network(options);
}

function addressKey4(n: number): string {
  return `4:198.18.0.${n}`;
}

function addressKey6(n: number): string {
  const b = new Uint8Array(16);
  b.set([0xfd, 0x00, 0x57, 0x57]);
  b[14] = n >> 8;
  b[15] = n & 0xff;
  return `6:${Buffer.from(b).toString('hex')}`;
}

/**
 * TLS randomness (client/server randoms, key shares, ticket nonces) from a seeded stream:
 * the same seed gives the same handshake bytes. Only for simulations — never outside one.
 */
export function seededCrypto(prng: Prng): CryptoProvider {
  return {
    ...nobleCrypto,
    randomBytes: (n: number) => prng.bytes(n),
    generateKeyPair: (group, privateKey) => nobleCrypto.generateKeyPair(group, privateKey ?? prng.bytes(32)),
  };
}
