import type { Counters } from '@stepwire/wire';

/**
 * What a link can do for the layers above, as Linux's netdev features and the virtio-net
 * header (virtio spec §5.1.6) describe it. A link without offloads omits the field.
 */
export interface LinkOffloads {
  /**
   * The link accepts a packet whose TCP/UDP checksum is only the pseudo-header sum
   * (PacketInfo.csum 'partial') and completes it, and it may deliver packets whose
   * checksum it (or the kernel) already verified ('valid') or left partial.
   */
  readonly checksum: boolean;
  /**
   * Largest IP packet of a TCP super-segment the link accepts and cuts into MSS-sized
   * segments itself (TSO/GSO); 0 when it does not. Received packets may also be
   * coalesced super-segments (GRO) when this is non-zero.
   */
  readonly tsoMax: number;
}

/** Per-packet metadata travelling with a packet across a link with offloads. */
export interface PacketInfo {
  /**
   * 'partial': the transport checksum field at `start + offset` holds the pseudo-header
   * sum only; the bytes from `start` still need summing (VIRTIO_NET_HDR_F_NEEDS_CSUM).
   * 'valid': the checksum was verified before the packet reached us
   * (VIRTIO_NET_HDR_F_DATA_VALID); the receiver need not verify it again.
   */
  csum?: { kind: 'partial'; start: number; offset: number } | { kind: 'valid' };
  /**
   * A TCP super-segment: on send, to be cut into segments of `size` payload bytes after
   * `hdrLen` bytes of IP and TCP headers; on receive, coalesced from such segments.
   */
  gso?: { type: 'tcpv4' | 'tcpv6'; size: number; hdrLen: number };
}

/**
 * A link moves whole IP packets (no link-layer header: like a TUN device in IFF_TUN |
 * IFF_NO_PI mode, or pcap's LINKTYPE_RAW). The Host does not know which kind it has.
 */
/**
 * The receiver of a link's packets. `more` is a hint, true when the link hands over a batch
 * (a TUN reader's, as a NIC's NAPI poll does) and another packet of it follows in this same
 * turn: a receiver may hold packets to join them (software GRO). A receiver must not wait
 * for a closing `more: false` either: a batch's last packet may be dropped before delivery.
 */
export type PacketHandler = (packet: Uint8Array, info?: PacketInfo, more?: boolean) => void;

export interface Link {
  readonly name: string;
  /** Largest IP packet this link carries; larger ones are dropped and counted (super-segments within `offloads.tsoMax` excepted). */
  readonly mtu: number;
  /** Offloads this link provides; absent means none. */
  readonly offloads?: LinkOffloads;
  /** Send one IP packet. Never throws for network conditions: drops are counted. */
  send(packet: Uint8Array, info?: PacketInfo): void;
  /** Set the receiver of packets arriving on this link (one receiver; the Host). */
  onPacket(handler: PacketHandler): void;
  close(): void;
  /** 'tx', 'rx', and one counter per drop reason ('drop.mtu', 'drop.loss', ...). */
  readonly counters: Counters;
}
