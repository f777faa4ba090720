/**
 * What the tshark tests share: our QUIC datagrams wrapped in hand-written IPv4 (RFC 791) and
 * our UDP, written as a LINKTYPE_RAW pcap with the link package's writer, and tshark's fields
 * read back one row per packet.
 */
import { execFileSync } from 'node:child_process';
import { encodePcap, LINKTYPE_RAW, msToPcapTime, PCAP_SNAPLEN } from '@stepwire/link';
import { encodeUdp } from '@stepwire/udp';
import { concatBytes, internetChecksum } from '@stepwire/wire';

export const CLIENT = { addr: '198.18.0.1', port: 50000 };
export const SERVER = { addr: '198.18.0.2', port: 443 };

/** IPv4 + UDP around a QUIC datagram; the IPv4 header by hand, so the oracle stays independent of our ip codec. */
export function ipUdp(payload: Uint8Array, fromClient: boolean): Uint8Array {
  const [src, dst] = fromClient ? [CLIENT, SERVER] : [SERVER, CLIENT];
  const udp = encodeUdp({ srcPort: src.port, dstPort: dst.port, payload }, { src: src.addr, dst: dst.addr });
  const ip = new Uint8Array(20);
  ip[0] = 0x45;
  ip[2] = (20 + udp.length) >> 8;
  ip[3] = (20 + udp.length) & 0xff;
  ip[8] = 64;
  ip[9] = 17;
  ip.set(src.addr.split('.').map(Number), 12);
  ip.set(dst.addr.split('.').map(Number), 16);
  const sum = internetChecksum(ip);
  ip[10] = sum >> 8;
  ip[11] = sum & 0xff;
  return concatBytes(ip, udp);
}

/** A pcap of raw IP packets; `at` in milliseconds (default: packet i at i seconds). */
export function rawPcap(packets: (Uint8Array | { at: number; bytes: Uint8Array })[]): Uint8Array {
  return encodePcap({
    byteOrder: 'le',
    precision: 'usec',
    versionMajor: 2,
    versionMinor: 4,
    thiszone: 0,
    sigfigs: 0,
    snaplen: PCAP_SNAPLEN,
    linkType: LINKTYPE_RAW,
    records: packets.map((p, i) => {
      const { at, bytes } = p instanceof Uint8Array ? { at: i * 1000, bytes: p } : p;
      const t = msToPcapTime(at);
      return { tsSec: t.tsSec, tsFrac: t.tsUsec, origLen: bytes.length, data: bytes };
    }),
  });
}

/** Runs tshark on `file` (QUIC on port 443), one row of tab-separated `fields` per packet. */
export function tsharkFields(file: string, fields: string[], extra: string[] = []): string[][] {
  const out = execFileSync(
    'tshark',
    [
      '-r',
      file,
      '-o',
      'quic.udp.port:443',
      ...extra,
      '-T',
      'fields',
      '-E',
      'separator=/t',
      '-E',
      'aggregator=,',
      ...fields.flatMap((f) => ['-e', f]),
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return out
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => l.split('\t'));
}
