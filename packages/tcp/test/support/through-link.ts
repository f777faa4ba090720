import type { Link, PacketHandler, PacketInfo } from '@stepwire/link';

/**
 * A test's wrapper around a Link that passes everything through unchanged; a test link
 * that watches, delays or holds packets overrides send or onPacket and keeps the rest.
 */
export class ThroughLink implements Link {
  constructor(protected readonly inner: Link) {}
  get name(): string {
    return this.inner.name;
  }
  get mtu(): number {
    return this.inner.mtu;
  }
  get counters(): Link['counters'] {
    return this.inner.counters;
  }
  send(packet: Uint8Array, info?: PacketInfo): void {
    this.inner.send(packet, info);
  }
  onPacket(handler: PacketHandler): void {
    this.inner.onPacket(handler);
  }
  close(): void {
    this.inner.close();
  }
}

/** TCP payload bytes of an IPv4 packet carrying TCP, or undefined for anything else. */
export function tcpPayloadLength4(p: Uint8Array): number | undefined {
  if (p.length < 40 || p[9] !== 6) return undefined;
  const ihl = ((p[0] as number) & 0x0f) * 4;
  return (((p[2] as number) << 8) | (p[3] as number)) - ihl - ((p[ihl + 12] as number) >> 4) * 4;
}
