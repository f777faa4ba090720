export { type ImpairedLink, type Impairments, type ImpairOptions, impair } from './impair.ts';
export type { Link } from './link.ts';
export { MemoryLink, type MemoryLinkOptions } from './memory.ts';
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
