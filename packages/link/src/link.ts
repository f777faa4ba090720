import type { Counters } from '@stepwire/wire';

/**
 * A link moves whole IP packets (no link-layer header: like a TUN device in IFF_TUN |
 * IFF_NO_PI mode, or pcap's LINKTYPE_RAW). The Host does not know which kind it has.
 */
export interface Link {
  readonly name: string;
  /** Largest IP packet this link carries; larger ones are dropped and counted. */
  readonly mtu: number;
  /** Send one IP packet. Never throws for network conditions: drops are counted. */
  send(packet: Uint8Array): void;
  /** Set the receiver of packets arriving on this link (one receiver; the Host). */
  onPacket(handler: (packet: Uint8Array) => void): void;
  close(): void;
  /** 'tx', 'rx', and one counter per drop reason ('drop.mtu', 'drop.loss', ...). */
  readonly counters: Counters;
}
