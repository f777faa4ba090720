/**
 * Helpers for testing IpCore alone: links that refuse to be used (the core must never
 * send, listen or close), packets built with the codecs, and the actions picked apart.
 * No clock anywhere: every test says what time it is.
 */
import type { Link } from '@stepwire/link';
import { Counters, Prng } from '@stepwire/wire';
import { type IpAction, IpCore, type IpCoreOptions } from '../src/host/core.ts';
import type { HostInterface } from '../src/host/routing.ts';
import { decodeIcmpv4, decodeIcmpv6, encodeIcmpv4, encodeIcmpv6, type IcmpMessage } from '../src/icmp.ts';
import { decodeIpv4, encodeIpv4, type Ipv4Packet } from '../src/ipv4.ts';
import { decodeIpv6, encodeIpv6, type Ipv6ExtensionHeader, type Ipv6Packet } from '../src/ipv6.ts';

/** A Link the core may hold and read (name, mtu) but never use. */
export function inertLink(name: string, mtu = 1500): Link {
  const refuse = (what: string) => () => {
    throw new Error(`IpCore used link ${name}: ${what}`);
  };
  return {
    name,
    mtu,
    counters: new Counters(),
    send: refuse('send'),
    onPacket: refuse('onPacket'),
    close: refuse('close'),
  };
}

export const A4 = '198.18.0.1';
export const B4 = '198.18.0.2';
export const A6 = 'fd00:5757::1';
export const B6 = 'fd00:5757::2';

export function makeCore(
  opts: Partial<IpCoreOptions> = {},
  mtu = 1500,
): { core: IpCore; eth: HostInterface } {
  const core = new IpCore({
    name: 'A',
    counters: new Counters(),
    prng: new Prng(7),
    loopback: inertLink('lo', 65535),
    now: 0,
    ...opts,
  });
  const eth = core.addInterface({ link: inertLink('eth0', mtu), ipv4: `${A4}/24`, ipv6: `${A6}/64` });
  return { core, eth };
}

export function ipv4(p: Partial<Ipv4Packet> & Pick<Ipv4Packet, 'protocol' | 'payload'>): Uint8Array {
  return encodeIpv4({
    dscp: 0,
    ecn: 0,
    identification: 1,
    reservedFlag: false,
    dontFragment: false,
    moreFragments: false,
    fragmentOffset: 0,
    ttl: 64,
    src: B4,
    dst: A4,
    options: [],
    ...p,
  });
}

export function ipv6(p: Partial<Ipv6Packet> & Pick<Ipv6Packet, 'nextHeader' | 'payload'>): Uint8Array {
  return encodeIpv6({
    trafficClass: 0,
    flowLabel: 0,
    hopLimit: 64,
    src: B6,
    dst: A6,
    extensionHeaders: [] as Ipv6ExtensionHeader[],
    ...p,
  });
}

export function icmp4(m: IcmpMessage): Uint8Array {
  return encodeIcmpv4(m);
}

export function icmp6(m: IcmpMessage, src = B6, dst = A6): Uint8Array {
  return encodeIcmpv6(m, src, dst);
}

export function transmits(out: IpAction[]): Array<Extract<IpAction, { kind: 'transmit' }>> {
  return out.filter((a): a is Extract<IpAction, { kind: 'transmit' }> => a.kind === 'transmit');
}

/** The ICMP messages among the IPv4 packets sent. */
export function sentIcmp4(out: IpAction[]): Array<{ ip: Ipv4Packet; icmp: IcmpMessage }> {
  return transmits(out)
    .map((t) => decodeIpv4(t.packet))
    .filter((ip) => ip.protocol === 1)
    .map((ip) => ({ ip, icmp: decodeIcmpv4(ip.payload) }));
}

export function sentIcmp6(out: IpAction[]): Array<{ ip: Ipv6Packet; icmp: IcmpMessage }> {
  return transmits(out)
    .map((t) => decodeIpv6(t.packet))
    .filter((ip) => ip.nextHeader === 58)
    .map((ip) => ({ ip, icmp: decodeIcmpv6(ip.payload, ip.src, ip.dst) }));
}
