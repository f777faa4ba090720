import {
  decodeIcmpv4,
  decodeIcmpv6,
  decodeIpv4,
  decodeIpv6,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
} from '@stepwire/ip';
import { ACK, CWR, decodeSegment, ECE, FIN, PSH, RST, SYN, URG } from '@stepwire/tcp';
import { decodeUdp } from '@stepwire/udp';
import { ParseError } from '@stepwire/wire';

/**
 * A packet as a tree of layers and fields, like Wireshark's detail pane: every field knows
 * the bytes it came from (offset and length within the whole packet), what it means and the
 * RFC section that defines it. The values come from our codecs; only the field positions,
 * which the codecs do not report, are laid out here from the RFCs' header diagrams.
 */
export interface TreeField {
  name: string;
  /** What the field says, for a person. */
  value: string;
  offset: number;
  length: number;
  rfc?: string;
}

export interface TreeLayer {
  name: string;
  summary: string;
  offset: number;
  length: number;
  rfc: string;
  fields: TreeField[];
  /** Our decoder refused this layer: where and why (the layers before it still decoded). */
  error?: { offset: number; field: string; reason: string };
}

/** Connection key of a TCP or UDP packet: the same for both directions. */
export interface PacketInfo {
  layers: TreeLayer[];
  /** 'tcp 198.18.0.1:49152 198.18.0.2:80' with the endpoints in sorted order; absent for others. */
  flow?: string;
  src?: string;
  dst?: string;
}

const PROTOCOL_NAMES: Record<number, string> = {
  1: 'ICMP',
  6: 'TCP',
  17: 'UDP',
  58: 'ICMPv6',
  44: 'Fragment',
};
const word = (b: Uint8Array, at: number) => `0x${((b[at]! << 8) | b[at + 1]!).toString(16).padStart(4, '0')}`;

/**
 * Whether a decode that also checks the checksum succeeds. The viewer decodes with the check
 * off so that it can show every field, then records the refusal the checking decoder makes.
 */
function verifies(decode: () => unknown, layer?: TreeLayer, base = 0): boolean {
  try {
    decode();
    return true;
  } catch (e) {
    if (e instanceof ParseError && e.field === 'checksum') {
      if (layer && strict) layer.error = { offset: base + e.offset, field: e.field, reason: e.reason };
      return false;
    }
    return true;
  }
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

function fail(layer: TreeLayer, e: unknown, base: number): void {
  if (e instanceof ParseError) {
    layer.error = { offset: base + e.offset, field: e.field, reason: e.reason };
  } else {
    layer.error = { offset: base, field: '', reason: (e as Error).message };
  }
}

export interface TreeOptions {
  /**
   * Default true: a wrong checksum is a refusal, as our stack would drop the packet. False
   * for captures taken on a host with checksum offload (the kernel fills checksums in after
   * tcpdump sees the packet), as Wireshark does by default: the field still says "incorrect".
   */
  verifyChecksums?: boolean;
}

let strict = true;

export function packetTree(packet: Uint8Array, options: TreeOptions = {}): PacketInfo {
  strict = options.verifyChecksums !== false;
  const version = packet.length > 0 ? packet[0]! >> 4 : 0;
  if (version === 4) return ipv4(packet);
  if (version === 6) return ipv6(packet);
  return {
    layers: [
      {
        name: 'Data',
        summary: `not IP (version ${version})`,
        offset: 0,
        length: packet.length,
        rfc: '',
        fields: [],
        error: { offset: 0, field: 'version', reason: `IP version ${version} is neither 4 nor 6` },
      },
    ],
  };
}

function ipv4(packet: Uint8Array): PacketInfo {
  const layer: TreeLayer = {
    name: 'IPv4',
    summary: '',
    offset: 0,
    length: packet.length,
    rfc: 'RFC 791 §3.1',
    fields: [],
  };
  const out: PacketInfo = { layers: [layer] };
  try {
    const p = decodeIpv4(packet, { verifyChecksum: false });
    const ihl = (packet[0]! & 0x0f) * 4;
    layer.length = ihl;
    const f = (name: string, value: string | number, offset: number, length: number, rfc = 'RFC 791 §3.1') =>
      layer.fields.push({ name, value: String(value), offset, length, rfc });
    f('Version', 4, 0, 1);
    f('Header length', `${ihl} bytes (IHL ${ihl / 4})`, 0, 1);
    f('DSCP', p.dscp, 1, 1, 'RFC 2474 §3');
    f('ECN', ['Not-ECT', 'ECT(1)', 'ECT(0)', 'CE'][p.ecn] ?? p.ecn, 1, 1, 'RFC 3168 §5');
    f('Total length', (packet[2]! << 8) | packet[3]!, 2, 2);
    f('Identification', `0x${p.identification.toString(16).padStart(4, '0')}`, 4, 2, 'RFC 6864');
    f('Flags', `${p.dontFragment ? 'DF ' : ''}${p.moreFragments ? 'MF' : ''}`.trim() || 'none', 6, 1);
    f('Fragment offset', `${p.fragmentOffset * 8} bytes`, 6, 2);
    f('TTL', p.ttl, 8, 1);
    f('Protocol', `${p.protocol} (${PROTOCOL_NAMES[p.protocol] ?? 'other'})`, 9, 1, 'RFC 790');
    const good = verifies(() => decodeIpv4(packet), layer, 0);
    f('Header checksum', `${word(packet, 10)}${good ? ' (correct)' : ' (incorrect)'}`, 10, 2, 'RFC 1071');
    f('Source', p.src, 12, 4);
    f('Destination', p.dst, 16, 4);
    if (ihl > 20) f('Options', `${p.options.length} option(s)`, 20, ihl - 20, 'RFC 791 §3.1');
    layer.summary = `${p.src} → ${p.dst}, ${PROTOCOL_NAMES[p.protocol] ?? p.protocol}, ttl ${p.ttl}`;
    out.src = p.src;
    out.dst = p.dst;
    const whole = p.fragmentOffset === 0 && !p.moreFragments;
    if (!whole) {
      layer.summary += `, fragment at ${p.fragmentOffset * 8}${p.moreFragments ? ' (more follow)' : ' (last)'}`;
      out.layers.push(data('Fragment data', ihl, p.payload.length));
      return out;
    }
    transport(out, p.protocol, ihl, p.payload, p.src, p.dst);
  } catch (e) {
    fail(layer, e, 0);
  }
  return out;
}

function ipv6(packet: Uint8Array): PacketInfo {
  const layer: TreeLayer = {
    name: 'IPv6',
    summary: '',
    offset: 0,
    length: 40,
    rfc: 'RFC 8200 §3',
    fields: [],
  };
  const out: PacketInfo = { layers: [layer] };
  try {
    const p = decodeIpv6(packet);
    const f = (name: string, value: string | number, offset: number, length: number, rfc = 'RFC 8200 §3') =>
      layer.fields.push({ name, value: String(value), offset, length, rfc });
    f('Version', 6, 0, 1);
    f('Traffic class', p.trafficClass, 0, 2, 'RFC 8200 §7');
    f('Flow label', `0x${p.flowLabel.toString(16)}`, 1, 3, 'RFC 6437');
    f('Payload length', (packet[4]! << 8) | packet[5]!, 4, 2);
    f('Next header', `${packet[6]} (${PROTOCOL_NAMES[packet[6]!] ?? 'extension/other'})`, 6, 1);
    f('Hop limit', p.hopLimit, 7, 1);
    f('Source', p.src, 8, 16);
    f('Destination', p.dst, 24, 16);
    out.src = p.src;
    out.dst = p.dst;
    // Extension headers, each [next header, length in 8-octet units - 1, ...] (RFC 8200 §4).
    let at = 40;
    let fragmented = false;
    for (const h of p.extensionHeaders) {
      const len = h.kind === 'fragment' ? 8 : (packet[at + 1]! + 1) * 8;
      layer.fields.push({
        name: `Extension: ${h.kind}`,
        value: `${len} bytes`,
        offset: at,
        length: len,
        rfc: 'RFC 8200 §4',
      });
      if (h.kind === 'fragment' && (h.fragmentOffset !== 0 || h.moreFragments)) fragmented = true;
      at += len;
    }
    layer.length = at;
    layer.summary = `${p.src} → ${p.dst}, ${PROTOCOL_NAMES[p.nextHeader] ?? p.nextHeader}, hop limit ${p.hopLimit}`;
    if (fragmented) {
      out.layers.push(data('Fragment data', at, p.payload.length));
      return out;
    }
    transport(out, p.nextHeader, at, p.payload, p.src, p.dst);
  } catch (e) {
    fail(layer, e, 0);
  }
  return out;
}

function data(name: string, offset: number, length: number): TreeLayer {
  return { name, summary: `${length} bytes`, offset, length, rfc: '', fields: [] };
}

function flowKey(proto: string, a: string, ap: number, b: string, bp: number): string {
  const x = `${a}:${ap}`;
  const y = `${b}:${bp}`;
  return x < y ? `${proto} ${x} ${y}` : `${proto} ${y} ${x}`;
}

function transport(
  out: PacketInfo,
  protocol: number,
  base: number,
  payload: Uint8Array,
  src: string,
  dst: string,
): void {
  if (protocol === IPPROTO_TCP) tcp(out, base, payload, src, dst);
  else if (protocol === IPPROTO_UDP) udp(out, base, payload, src, dst);
  else if (protocol === IPPROTO_ICMP || protocol === IPPROTO_ICMPV6)
    icmp(out, protocol, base, payload, src, dst);
  else out.layers.push(data(`Protocol ${protocol}`, base, payload.length));
}

function tcp(out: PacketInfo, base: number, payload: Uint8Array, src: string, dst: string): void {
  const layer: TreeLayer = {
    name: 'TCP',
    summary: '',
    offset: base,
    length: payload.length,
    rfc: 'RFC 9293 §3.1',
    fields: [],
  };
  out.layers.push(layer);
  try {
    const s = decodeSegment(payload, { src, dst }, { skipChecksum: true });
    const good = verifies(() => decodeSegment(payload, { src, dst }), layer, base);
    const hlen = (payload[12]! >> 4) * 4;
    layer.length = hlen;
    const f = (name: string, value: string | number, offset: number, length: number, rfc = 'RFC 9293 §3.1') =>
      layer.fields.push({ name, value: String(value), offset: base + offset, length, rfc });
    f('Source port', s.srcPort, 0, 2);
    f('Destination port', s.dstPort, 2, 2);
    f('Sequence number', s.seq >>> 0, 4, 4);
    f('Acknowledgment number', s.ack >>> 0, 8, 4);
    f('Data offset', `${hlen} bytes`, 12, 1);
    const names: [number, string][] = [
      [CWR, 'CWR'],
      [ECE, 'ECE'],
      [URG, 'URG'],
      [ACK, 'ACK'],
      [PSH, 'PSH'],
      [RST, 'RST'],
      [SYN, 'SYN'],
      [FIN, 'FIN'],
    ];
    const flags = names.filter(([bit]) => s.flags & bit).map(([, n]) => n);
    f('Flags', flags.join(' ') || 'none', 13, 1);
    f('Window', s.window, 14, 2, 'RFC 9293 §3.1, RFC 7323 §2');
    f('Checksum', `${word(payload, 16)}${good ? ' (correct)' : ' (incorrect)'}`, 16, 2, 'RFC 9293 §3.1');
    f('Urgent pointer', s.urgentPointer, 18, 2, 'RFC 9293 §3.8.5');
    // Options, each kind [len data] (RFC 9293 §3.2), laid out for their byte ranges; the
    // decoded values come from the codec's TcpOptions.
    let at = 20;
    while (at < hlen) {
      const kind = payload[at]!;
      if (kind === 0) {
        f('Option: end of list', '', at, hlen - at, 'RFC 9293 §3.2');
        break;
      }
      if (kind === 1) {
        f('Option: no-operation', '', at, 1, 'RFC 9293 §3.2');
        at++;
        continue;
      }
      const len = Math.max(2, payload[at + 1] ?? 2);
      const o = s.options;
      const [name, value, rfc] =
        kind === 2
          ? ['MSS', String(o.mss), 'RFC 9293 §3.7.1']
          : kind === 3
            ? ['Window scale', `shift ${o.windowScale}`, 'RFC 7323 §2.2']
            : kind === 4
              ? ['SACK permitted', '', 'RFC 2018 §2']
              : kind === 5
                ? [
                    'SACK',
                    (o.sack ?? []).map((b) => `${b.left >>> 0}-${b.right >>> 0}`).join(' '),
                    'RFC 2018 §3',
                  ]
                : kind === 8
                  ? ['Timestamps', `TSval ${o.timestamps?.value} TSecr ${o.timestamps?.echo}`, 'RFC 7323 §3']
                  : kind === 34
                    ? [
                        'Fast Open cookie',
                        o.fastOpen?.length ? hex(o.fastOpen) : '(request)',
                        'RFC 7413 §4.1.1',
                      ]
                    : [`kind ${kind}`, '', 'RFC 9293 §3.2'];
      f(`Option: ${name}`, value, at, len, rfc);
      at += len;
    }
    const port = (p: number) => `${p}`;
    layer.summary = `${port(s.srcPort)} → ${port(s.dstPort)} [${flags.join(', ')}] seq=${s.seq >>> 0}${s.flags & ACK ? ` ack=${s.ack >>> 0}` : ''} win=${s.window} len=${s.payload.length}`;
    out.flow = flowKey('tcp', src, s.srcPort, dst, s.dstPort);
    if (s.payload.length > 0) out.layers.push(application(s.payload, base + hlen, s.srcPort, s.dstPort));
  } catch (e) {
    fail(layer, e, base);
  }
}

function udp(out: PacketInfo, base: number, payload: Uint8Array, src: string, dst: string): void {
  const layer: TreeLayer = { name: 'UDP', summary: '', offset: base, length: 8, rfc: 'RFC 768', fields: [] };
  out.layers.push(layer);
  try {
    const d = decodeUdp(payload, { src, dst }, { skipChecksumVerification: true });
    const good = verifies(() => decodeUdp(payload, { src, dst }), layer, base);
    const f = (name: string, value: string | number, offset: number, length: number) =>
      layer.fields.push({ name, value: String(value), offset: base + offset, length, rfc: 'RFC 768' });
    f('Source port', d.sourcePort, 0, 2);
    f('Destination port', d.destinationPort, 2, 2);
    f('Length', (payload[4]! << 8) | payload[5]!, 4, 2);
    f('Checksum', `${word(payload, 6)}${good ? ' (correct)' : ' (incorrect)'}`, 6, 2);
    layer.summary = `${d.sourcePort} → ${d.destinationPort} len=${d.payload.length}`;
    out.flow = flowKey('udp', src, d.sourcePort, dst, d.destinationPort);
    if (d.payload.length > 0) out.layers.push(data('Data', base + 8, d.payload.length));
  } catch (e) {
    fail(layer, e, base);
  }
}

function icmp(
  out: PacketInfo,
  protocol: number,
  base: number,
  payload: Uint8Array,
  src: string,
  dst: string,
): void {
  const v6 = protocol === IPPROTO_ICMPV6;
  const layer: TreeLayer = {
    name: v6 ? 'ICMPv6' : 'ICMP',
    summary: '',
    offset: base,
    length: payload.length,
    rfc: v6 ? 'RFC 4443 §2.1' : 'RFC 792',
    fields: [],
  };
  out.layers.push(layer);
  try {
    const noCheck = { verifyChecksum: false };
    const m = v6 ? decodeIcmpv6(payload, src, dst, noCheck) : decodeIcmpv4(payload, noCheck);
    const good = verifies(() => (v6 ? decodeIcmpv6(payload, src, dst) : decodeIcmpv4(payload)), layer, base);
    const f = (name: string, value: string | number, offset: number, length: number) =>
      layer.fields.push({ name, value: String(value), offset: base + offset, length, rfc: layer.rfc });
    f('Type', `${payload[0]} (${m.kind})`, 0, 1);
    f('Code', payload[1]!, 1, 1);
    f('Checksum', `${word(payload, 2)}${good ? ' (correct)' : ' (incorrect)'}`, 2, 2);
    const echo = m.kind === 'echo-request' || m.kind === 'echo-reply' ? m : undefined;
    if (echo) {
      f('Identifier', echo.identifier, 4, 2);
      f('Sequence number', echo.sequence, 6, 2);
    }
    if (payload.length > 8) f(echo ? 'Data' : 'Body', `${payload.length - 8} bytes`, 8, payload.length - 8);
    layer.summary = `${m.kind}${echo ? ` id=${echo.identifier} seq=${echo.sequence}` : ''}`;
  } catch (e) {
    fail(layer, e, base);
  }
}

const TLS_TYPES: Record<number, string> = {
  20: 'change_cipher_spec',
  21: 'alert',
  22: 'handshake',
  23: 'application_data',
};
const HANDSHAKE_TYPES: Record<number, string> = {
  1: 'ClientHello',
  2: 'ServerHello',
  4: 'NewSessionTicket',
  5: 'EndOfEarlyData',
  8: 'EncryptedExtensions',
  11: 'Certificate',
  13: 'CertificateRequest',
  15: 'CertificateVerify',
  20: 'Finished',
  24: 'KeyUpdate',
};

/** What a TCP payload carries, by its first bytes: TLS records, HTTP/1.x text, or data. */
function application(payload: Uint8Array, offset: number, sport: number, dport: number): TreeLayer {
  const t = payload[0]!;
  if (TLS_TYPES[t] && payload[1] === 3 && payload.length >= 5) return tlsRecords(payload, offset);
  const head = new TextDecoder('latin1').decode(payload.subarray(0, Math.min(payload.length, 2048)));
  if (
    /^(GET|HEAD|POST|PUT|DELETE|OPTIONS|CONNECT|PATCH|TRACE) \S+ HTTP\/1\.[01]\r\n/.test(head) ||
    head.startsWith('HTTP/1.')
  ) {
    const layer: TreeLayer = {
      name: 'HTTP/1.1',
      summary: head.split('\r\n')[0]!,
      offset,
      length: payload.length,
      rfc: 'RFC 9112',
      fields: [],
    };
    let at = 0;
    for (const line of head.split('\r\n')) {
      if (line === '') break;
      layer.fields.push({
        name: at === 0 ? (head.startsWith('HTTP/') ? 'Status line' : 'Request line') : 'Field line',
        value: line,
        offset: offset + at,
        length: line.length + 2,
        rfc: at === 0 ? 'RFC 9112 §3, §4' : 'RFC 9112 §5',
      });
      at += line.length + 2;
    }
    return layer;
  }
  return data(`Data (port ${Math.min(sport, dport)})`, offset, payload.length);
}

function tlsRecords(payload: Uint8Array, offset: number): TreeLayer {
  const layer: TreeLayer = {
    name: 'TLS',
    summary: '',
    offset,
    length: payload.length,
    rfc: 'RFC 8446 §5.1',
    fields: [],
  };
  const kinds: string[] = [];
  let at = 0;
  while (at + 5 <= payload.length) {
    const type = payload[at]!;
    const len = (payload[at + 3]! << 8) | payload[at + 4]!;
    const name = TLS_TYPES[type] ?? `type ${type}`;
    // A handshake record is in the clear only before the keys change; its first byte names it.
    const hs = type === 22 && at + 5 < payload.length ? HANDSHAKE_TYPES[payload[at + 5]!] : undefined;
    const what = hs ? `${name} (${hs})` : name;
    kinds.push(hs ?? name);
    layer.fields.push({
      name: 'Record',
      value: `${what}, ${len} bytes`,
      offset: offset + at,
      length: Math.min(5 + len, payload.length - at),
      rfc: hs ? 'RFC 8446 §4' : type === 23 ? 'RFC 8446 §5.2' : 'RFC 8446 §5.1',
    });
    at += 5 + len;
  }
  if (at < payload.length) {
    layer.fields.push({
      name: 'Partial record',
      value: `${payload.length - at} bytes`,
      offset: offset + at,
      length: payload.length - at,
    });
  }
  layer.summary = kinds.join(', ');
  return layer;
}
