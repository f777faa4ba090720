export { type LinkSetupCode, LinkSetupError } from './errors.ts';
export { type ImpairedLink, type Impairments, type ImpairOptions, impair } from './impair.ts';
export type { Link } from './link.ts';
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
export { TunLink, type TunLinkOptions } from './tun.ts';
export type { OpenTunOptions } from './tun-ffi.ts';
