import { Host } from '@stepwire/ip';
import {
  type Impairments,
  type Link,
  MemoryLink,
  PcapngWriter,
  PcapWriter,
  recordLink,
} from '@stepwire/link';
import { Tcp } from '@stepwire/tcp';
import { Udp } from '@stepwire/udp';
import { Counters, Prng, TraceBus, type TraceEvent, VirtualClock } from '@stepwire/wire';
import { dissect } from './dissect.ts';
import type { LadderLine } from './ladder.ts';
import { SIM_EPOCH } from './network.ts';
import { type PendingReport, runVirtual } from './run.ts';

/**
 * Two hosts, A and B, on one simulated wire, with everything a reader wants to watch:
 * a ladder of the packets that crossed it, the trace of both hosts, and optionally a pcap.
 * Used by `stepwire demo` and by the tshark oracle test, so both see the same exchange.
 */
export interface SimOptions {
  seed?: number;
  mtu?: number;
  impairments?: Impairments;
  pcapPath?: string;
  /** Also (or instead) a pcapng; give it the TLS secrets with `sim.pcapng.keylog(line)`. */
  pcapngPath?: string;
  /** Keep the pcap in memory (for tests) when no path is given. */
  pcapInMemory?: boolean;
  /** Milliseconds since 1970 at virtual t = 0, for pcap timestamps; default SIM_EPOCH. */
  epoch?: number;
  /** Called for every ladder line as it happens. */
  onLine?: (l: LadderLine) => void;
}

export interface SimHost {
  name: string;
  host: Host;
  udp: Udp;
  tcp: Tcp;
  ipv4: string;
  ipv6: string;
}

export class Sim {
  readonly clock = new VirtualClock();
  readonly trace = new TraceBus();
  readonly lines: LadderLine[] = [];
  readonly a: SimHost;
  readonly b: SimHost;
  readonly pcap: PcapWriter | undefined;
  readonly pcapng: PcapngWriter | undefined;
  readonly links: [Link, Link];

  constructor(opts: SimOptions = {}) {
    const seed = opts.seed ?? 1;
    const prng = new Prng(seed);
    const [la, lb] = MemoryLink.pair({
      clock: this.clock,
      mtu: opts.mtu ?? 1500,
      seed: prng.u32(),
      impairments: opts.impairments ?? {},
      trace: this.trace,
      name: 'wire',
    });
    // Timestamps on the simulation's calendar (SIM_EPOCH + virtual time), like its TLS.
    const epochMs = opts.epoch ?? SIM_EPOCH;
    this.pcap = opts.pcapPath
      ? PcapWriter.toFile(opts.pcapPath, { epochMs })
      : opts.pcapInMemory
        ? PcapWriter.inMemory({ epochMs })
        : undefined;
    // The pcap is taken on A's side, like tcpdump on A's interface: each packet once, with
    // what A sent (before the wire's impairments) and what reached A.
    this.pcapng = opts.pcapngPath ? PcapngWriter.toFile(opts.pcapngPath, { epochMs }) : undefined;
    let recordedA = this.pcap ? recordLink(la, this.pcap, this.clock) : la;
    if (this.pcapng) recordedA = recordLink(recordedA, this.pcapng, this.clock);
    this.links = [this.tap(recordedA, 'A', 'B', opts.onLine), this.tap(lb, 'B', 'A', opts.onLine)];
    this.a = this.makeHost('A', this.links[0], '198.18.0.1', 'fd00:5757::1', prng.u32());
    this.b = this.makeHost('B', this.links[1], '198.18.0.2', 'fd00:5757::2', prng.u32());
  }

  private makeHost(name: string, link: Link, ipv4: string, ipv6: string, seed: number): SimHost {
    const host = new Host({
      name,
      clock: this.clock,
      trace: this.trace,
      prng: new Prng(seed),
      counters: new Counters(),
    });
    host.addInterface({ link, ipv4: `${ipv4}/24`, ipv6: `${ipv6}/64` });
    // Secrets from the seed too: the same seed gives the same ISNs, cookies and ladder.
    const prngOf = host.prng;
    const tcp = new Tcp(host, {
      isnSecret: prngOf.bytes(16),
      synCookieSecret: prngOf.bytes(16),
      fastOpenKey: prngOf.bytes(16),
    });
    return { name, host, udp: new Udp(host), tcp, ipv4, ipv6 };
  }

  /** Record each packet a host hands to the wire as a ladder line (and into the pcap). */
  private tap(link: Link, from: string, to: string, onLine?: (l: LadderLine) => void): Link {
    const send = link.send.bind(link);
    link.send = (packet: Uint8Array) => {
      const line: LadderLine = { kind: 'packet', t: this.clock.now(), from, to, summary: dissect(packet) };
      this.lines.push(line);
      // The bytes go to the listener only (valid during the call: the sender may reuse them).
      onLine?.({ ...line, packet });
      send(packet);
    };
    return link;
  }

  /** Add a trace-derived note to the ladder (state changes, drops). */
  note(e: TraceEvent, text: string): void {
    const line: LadderLine = { kind: 'note', t: e.t, host: e.host, text };
    this.lines.push(line);
  }

  /**
   * Await a promise whose completion depends on simulated time: advance the virtual clock
   * timer by timer, letting promise callbacks run between timers. Throws if nothing is left
   * to fire and the promise is still pending, or after `limitMs` of simulated time.
   */
  async run<T>(p: Promise<T>, limitMs = 120_000): Promise<T> {
    return (await runVirtual(this.clock, p, { limit: limitMs, settleTurns: 0 }, () => this.pending())) as T;
  }

  /** Open TCP connections, listeners and bound UDP sockets of A and B (timers are the wire's, shared). */
  pending(): PendingReport {
    return {
      t: this.clock.now(),
      wireTimers: this.clock.pending,
      hosts: [this.a, this.b].map((h) => ({
        name: h.name,
        timers: { total: 0, tcp: h.tcp.stats.timersArmed ?? 0 },
        connections: h.tcp
          .connections()
          .map((c) => `${c.local.addr}:${c.local.port} → ${c.remote.addr}:${c.remote.port} ${c.state}`),
        listeners: h.tcp.stats.listeners.map((l) => `${l.address}:${l.port}`),
        udpSockets: h.udp.boundSockets().map((s) => `${s.localAddress}:${s.localPort}`),
      })),
    };
  }

  close(): void {
    this.a.host.close();
    this.b.host.close();
    this.pcap?.close();
    this.pcapng?.close();
  }
}
