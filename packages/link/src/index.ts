export { type LinkSetupCode, LinkSetupError } from './errors.ts';
export { type ImpairedLink, type Impairments, type ImpairOptions, impair, markCe } from './impair.ts';
export type { Link, LinkOffloads, PacketHandler, PacketInfo } from './link.ts';
export { MemoryLink, type MemoryLinkOptions } from './memory.ts';
export {
  NETNS_DEFAULTS,
  Netns,
  type NetnsInfo,
  type NetnsOptions,
  netnsDown,
  netnsExists,
  netnsUp,
  type RunOptions,
  type RunResult,
} from './netns.ts';
export {
  decodePcap,
  encodePcap,
  LINKTYPE_RAW,
  msToPcapTime,
  PCAP_MAX_RECORD,
  PCAP_SNAPLEN,
  type PcapFile,
  type PcapRecord,
  PcapWriter,
  type PcapWriterOptions,
  type RecordedLink,
  recordLink,
} from './pcap.ts';
export {
  BT_DSB,
  BT_EPB,
  BT_IDB,
  BT_SHB,
  BT_SPB,
  decodePcapng,
  encodePcapng,
  encodePcapngBlock,
  OPT_IF_TSOFFSET,
  OPT_IF_TSRESOL,
  PCAPNG_MAX_BLOCK,
  type PcapngBlock,
  type PcapngFile,
  type PcapngOption,
  type PcapngPacket,
  type PcapngSection,
  PcapngWriter,
  type PcapngWriterOptions,
  pcapngPackets,
  SECRETS_TYPE_TLS_KEYLOG,
  tsresolPerSecond,
} from './pcapng.ts';
export { TunLink, type TunLinkOptions } from './tun.ts';
export type { OpenTunOptions, TunOffloadRequest } from './tun-ffi.ts';
export {
  decodeVnetHdr,
  encodeVnetHdr,
  encodeVnetHdrInto,
  PLAIN_VNET_HDR,
  packetInfoFromVnetHdr,
  VIRTIO_NET_HDR_F_DATA_VALID,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_F_RSC_INFO,
  VIRTIO_NET_HDR_GSO_ECN,
  type VirtioNetHdr,
  VNET_HDR,
  VNET_HDR_LEN,
  type VnetGsoType,
  vnetHdrFromPacketInfo,
} from './vnet-hdr.ts';
