/**
 * Interfaces, their addresses and the routing table of an end host (RFC 1122 §3.3.1,
 * RFC 1812 §5.2.4.3 longest-prefix match). Plain state: it holds each interface's Link
 * only to name it and to read its MTU, and never sends on it.
 */
import type { Link } from '@stepwire/link';
import {
  cachedAddressBytes,
  canonicalIp,
  ipv4BroadcastOf,
  isIpv4LimitedBroadcast,
  isIpv4Multicast,
  isIpv6Multicast,
  type Prefix,
  parsePrefix,
  prefixContains,
} from '../address.ts';
import type { IpAddress } from '../types.ts';

export interface InterfaceConfig {
  link: Link;
  /** 'a.b.c.d/len' */
  ipv4?: string;
  /** 'x::y/len' */
  ipv6?: string;
}

export interface HostInterface {
  readonly index: number;
  readonly link: Link;
  /** Interface address and its prefix. */
  readonly ipv4?: Prefix;
  readonly ipv6?: Prefix;
  /** Directed broadcast of the IPv4 prefix (RFC 919), if any. */
  readonly ipv4Broadcast?: string;
}

export interface RouteEntry {
  prefix: Prefix;
  iface: HostInterface;
  gateway?: string;
  /** Added with an interface address (a connected route). */
  connected: boolean;
}

/** Destinations whose lookup is remembered before the cache is emptied and starts over. */
const ROUTE_CACHE_LIMIT = 4096;

export class RoutingTable {
  readonly ifaces: HostInterface[] = [];
  readonly routes: RouteEntry[] = [];
  /** This host's own addresses (any interface's, loopback's included). */
  readonly local = new Set<string>();
  /** Each of those addresses as its interface's Prefix (which carries the bytes). */
  private readonly ownAddresses = new Map<string, Prefix>();
  /** Broadcast addresses that name this host: limited (RFC 919) and each prefix's directed one. */
  readonly broadcasts = new Set<string>(['255.255.255.255']);
  private readonly cache = new Map<string, RouteEntry | null>();
  /**
   * The last destination looked up and its answer, checked before the cache: a transport
   * asks for the offloads and then sends, and a bulk flow sends to one address, so most
   * lookups repeat the previous one (compared by identity first: the same string object).
   */
  private lastDst: string | undefined;
  private lastRoute: RouteEntry | undefined;
  /** The loopback interface, set by the first addInterface call. */
  private loopbackIface: HostInterface | undefined;

  get loopback(): HostInterface {
    if (this.loopbackIface === undefined) throw new Error('routing table has no loopback interface yet');
    return this.loopbackIface;
  }

  /** Attach a link with optional addresses; connected routes for their prefixes are added. */
  addInterface(cfg: InterfaceConfig): HostInterface {
    const ipv4 = cfg.ipv4 === undefined ? undefined : parsePrefix(cfg.ipv4);
    const ipv6 = cfg.ipv6 === undefined ? undefined : parsePrefix(cfg.ipv6);
    if (ipv4 && ipv4.version !== 4) throw new RangeError(`not an IPv4 prefix: ${cfg.ipv4}`);
    if (ipv6 && ipv6.version !== 6) throw new RangeError(`not an IPv6 prefix: ${cfg.ipv6}`);
    const iface: HostInterface = {
      index: this.ifaces.length,
      link: cfg.link,
      ipv4,
      ipv6,
      ipv4Broadcast: ipv4 ? ipv4BroadcastOf(ipv4) : undefined,
    };
    this.ifaces.push(iface);
    this.loopbackIface ??= iface;
    if (ipv4) {
      this.local.add(ipv4.address);
      this.ownAddresses.set(ipv4.address, ipv4);
      if (iface.ipv4Broadcast) this.broadcasts.add(iface.ipv4Broadcast);
      this.routes.push({ prefix: ipv4, iface, connected: true });
    }
    if (ipv6) {
      this.local.add(ipv6.address);
      this.ownAddresses.set(ipv6.address, ipv6);
      this.routes.push({ prefix: ipv6, iface, connected: true });
    }
    this.forget();
    return iface;
  }

  /**
   * Add a route: 'prefix/len' via an interface (or its link name), optionally naming a
   * gateway. '0.0.0.0/0' and '::/0' are default routes. Links carry raw IP packets, so the
   * gateway is kept for display only: there is no link-layer next hop to resolve.
   */
  addRoute(prefix: string, iface: HostInterface | string, gateway?: string): RouteEntry {
    const p = parsePrefix(prefix);
    const i = typeof iface === 'string' ? this.ifaces.find((x) => x.link.name === iface) : iface;
    if (!i) throw new RangeError(`no interface ${String(iface)}`);
    const r: RouteEntry = {
      prefix: p,
      iface: i,
      gateway: gateway === undefined ? undefined : canonicalIp(gateway),
      connected: false,
    };
    this.routes.push(r);
    this.forget();
    return r;
  }

  removeRoute(prefix: string): boolean {
    const text = parsePrefix(prefix).text;
    const i = this.routes.findIndex((r) => r.prefix.text === text && !r.connected);
    if (i < 0) return false;
    this.routes.splice(i, 1);
    this.forget();
    return true;
  }

  /**
   * Longest-prefix match (RFC 1812 §5.2.4.3); local addresses route over loopback. Matched
   * on `dstBytes` when the caller holds them (they must be dst's), else on dst parsed.
   */
  lookup(dst: string, dstBytes?: Uint8Array): RouteEntry | undefined {
    if (dst === this.lastDst) return this.lastRoute;
    const hit = this.cache.get(dst);
    if (hit !== undefined) {
      this.lastDst = dst;
      this.lastRoute = hit ?? undefined;
      return this.lastRoute;
    }
    const b = dstBytes ?? cachedAddressBytes(dst);
    let best: RouteEntry | undefined;
    if (b !== undefined) {
      const loopback = this.loopback;
      if (this.local.has(dst)) {
        const v4 = b.length === 4;
        best = this.routes.find((r) => r.iface === loopback && r.prefix.version === (v4 ? 4 : 6));
      } else {
        for (const r of this.routes) {
          if (prefixContains(r.prefix, b) && (best === undefined || r.prefix.length > best.prefix.length))
            best = r;
        }
        // A group or limited-broadcast address no route names goes out the first interface
        // of its family (a host with one link needs no multicast routes).
        if (best === undefined && (isIpv6Multicast(b) || isIpv4Multicast(b) || isIpv4LimitedBroadcast(b))) {
          const v4 = b.length === 4;
          const iface = this.ifaces.find((i) => i !== loopback && (v4 ? i.ipv4 : i.ipv6) !== undefined);
          const prefix = iface && (v4 ? iface.ipv4 : iface.ipv6);
          if (iface && prefix) best = { prefix, iface, connected: true };
        }
      }
    }
    if (this.cache.size > ROUTE_CACHE_LIMIT) this.cache.clear();
    this.cache.set(dst, best ?? null);
    this.lastDst = dst;
    this.lastRoute = best;
    return best;
  }

  /** Empty the lookup cache (the routes or addresses changed). */
  private forget(): void {
    this.cache.clear();
    this.lastDst = undefined;
    this.lastRoute = undefined;
  }

  /** RFC 1122 §3.3.4.3: the source is the address of the interface the route leaves by. */
  sourceFor(dst: string): string | undefined {
    return this.sourceAddressFor(dst)?.address;
  }

  /**
   * sourceFor as the interface's address, text and bytes (its Prefix): a sender that writes
   * a pseudo-header gets the bytes without parsing. A local dst is its own source.
   */
  sourceAddressFor(dst: string, dstBytes?: Uint8Array): IpAddress | undefined {
    const own = this.ownAddresses.get(dst);
    if (own !== undefined) return own;
    const r = this.lookup(dst, dstBytes);
    if (!r) return undefined;
    return r.prefix.version === 4 ? r.iface.ipv4 : r.iface.ipv6;
  }
}
