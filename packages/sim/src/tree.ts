/**
 * A packet as a layer tree, like Wireshark's packet details pane: each layer with the RFC
 * section that defines its header, each field with its bytes (offset and hex), its value
 * and what that value means. Used by `stepwire demo --step`. Like every dissector it never
 * throws: what does not decode is shown as the ParseError's field, offset and reason.
 */
import { decodeIpv4, decodeIpv6, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from '@stepwire/ip';
import { ParseError } from '@stepwire/wire';

export interface TreeField {
  /** Offset of the field's first byte in the packet. */
  offset: number;
  length: number;
  name: string;
  /** The value and what it means, in words. */
  value: string;
}

export interface TreeLayer {
  /** Short name for filters: 'ipv4', 'ipv6', 'tcp', 'udp', 'icmp', 'tls', 'http', 'data'. */
  layer: string;
  title: string;
  rfc: string;
  fields: TreeField[];
}

const u16 = (b: Uint8Array, at: number) => ((b[at] ?? 0) << 8) | (b[at + 1] ?? 0);
const u32 = (b: Uint8Array, at: number) => (u16(b, at) * 65536 + u16(b, at + 2)) >>> 0;

const PROTOCOLS: Record<number, string> = {
  1: 'ICMP',
  6: 'TCP',
  17: 'UDP',
  44: 'IPv6 Fragment',
  58: 'ICMPv6',
};

export function packetTree(packet: Uint8Array): TreeLayer[] {
  const layers: TreeLayer[] = [];
  try {
    const version = (packet[0] ?? 0) >> 4;
    if (version === 4) ipv4(packet, layers);
    else if (version === 6) ipv6(packet, layers);
    else layers.push({ layer: 'data', title: `not IP (version ${version})`, rfc: '', fields: [] });
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
    layers.push({
      layer: 'malformed',
      title: `malformed: ${e.field}: ${e.reason}`,
      rfc: '',
      fields: [{ offset: e.offset, length: 1, name: e.field, value: e.reason }],
    });
  }
  return layers;
}

function ipv4(b: Uint8Array, layers: TreeLayer[]): void {
  const p = decodeIpv4(b, { verifyChecksum: false });
  const ihl = ((b[0] ?? 0) & 0x0f) * 4;
  const flags = [p.dontFragment ? 'DF (do not fragment)' : '', p.moreFragments ? 'MF (more fragments)' : '']
    .filter(Boolean)
    .join(', ');
  layers.push({
    layer: 'ipv4',
    title: `Internet Protocol version 4, ${p.src} → ${p.dst}`,
    rfc: 'RFC 791 §3.1',
    fields: [
      { offset: 0, length: 1, name: 'Version / IHL', value: `4 / ${ihl / 4}: a ${ihl}-byte header` },
      { offset: 1, length: 1, name: 'DSCP / ECN', value: `${p.dscp} / ${p.ecn} (RFC 2474, RFC 3168)` },
      { offset: 2, length: 2, name: 'Total Length', value: `${u16(b, 2)} bytes, header and data` },
      { offset: 4, length: 2, name: 'Identification', value: `${p.identification}: ties fragments together` },
      {
        offset: 6,
        length: 2,
        name: 'Flags / Fragment Offset',
        value: `${flags || 'none'} / ${p.fragmentOffset} (× 8 = byte ${p.fragmentOffset * 8})`,
      },
      { offset: 8, length: 1, name: 'Time to Live', value: `${p.ttl} hops left` },
      {
        offset: 9,
        length: 1,
        name: 'Protocol',
        value: `${p.protocol} (${PROTOCOLS[p.protocol] ?? 'other'})`,
      },
      {
        offset: 10,
        length: 2,
        name: 'Header Checksum',
        value: `0x${u16(b, 10).toString(16).padStart(4, '0')} (RFC 1071)`,
      },
      { offset: 12, length: 4, name: 'Source Address', value: p.src },
      { offset: 16, length: 4, name: 'Destination Address', value: p.dst },
      ...(ihl > 20 ? [{ offset: 20, length: ihl - 20, name: 'Options', value: `${ihl - 20} bytes` }] : []),
    ],
  });
  // A later fragment is bare data; the first one still starts with the transport header.
  if (p.fragmentOffset !== 0) {
    layers.push(data(ihl, p.payload.length, `fragment data (reassembled at the destination, RFC 791 §3.2)`));
    return;
  }
  upper(4, p.protocol, b, ihl, p.payload, layers);
}

function ipv6(b: Uint8Array, layers: TreeLayer[]): void {
  const p = decodeIpv6(b);
  const w0 = u32(b, 0);
  layers.push({
    layer: 'ipv6',
    title: `Internet Protocol version 6, ${p.src} → ${p.dst}`,
    rfc: 'RFC 8200 §3',
    fields: [
      {
        offset: 0,
        length: 4,
        name: 'Version / Traffic Class / Flow Label',
        value: `6 / ${(w0 >>> 20) & 0xff} / ${w0 & 0xfffff}`,
      },
      { offset: 4, length: 2, name: 'Payload Length', value: `${u16(b, 4)} bytes after this header` },
      { offset: 6, length: 1, name: 'Next Header', value: `${b[6]} (${PROTOCOLS[b[6] ?? 0] ?? 'other'})` },
      { offset: 7, length: 1, name: 'Hop Limit', value: `${p.hopLimit} hops left` },
      { offset: 8, length: 16, name: 'Source Address', value: p.src },
      { offset: 24, length: 16, name: 'Destination Address', value: p.dst },
    ],
  });
  let at = 40;
  for (const h of p.extensionHeaders) {
    if (h.kind === 'fragment') {
      layers.push({
        layer: 'ipv6',
        title: 'Fragment header',
        rfc: 'RFC 8200 §4.5',
        fields: [
          {
            offset: at,
            length: 1,
            name: 'Next Header',
            value: `${b[at]} (${PROTOCOLS[b[at] ?? 0] ?? 'other'})`,
          },
          {
            offset: at + 2,
            length: 2,
            name: 'Fragment Offset / M',
            value: `${h.fragmentOffset} (× 8 = byte ${h.fragmentOffset * 8}) / ${h.moreFragments ? 'more follow' : 'last'}`,
          },
          { offset: at + 4, length: 4, name: 'Identification', value: `${h.identification}` },
        ],
      });
      at += 8;
      if (h.fragmentOffset !== 0) {
        layers.push(data(at, b.length - at, 'fragment data (reassembled at the destination, RFC 8200 §4.5)'));
        return;
      }
    } else {
      const len = ((b[at + 1] ?? 0) + 1) * 8;
      layers.push({
        layer: 'ipv6',
        title: `${h.kind} extension header`,
        rfc: 'RFC 8200 §4',
        fields: [{ offset: at, length: len, name: h.kind, value: `${len} bytes` }],
      });
      at += len;
    }
  }
  upper(6, p.nextHeader, b, at, p.payload, layers);
}

function upper(
  version: 4 | 6,
  protocol: number,
  b: Uint8Array,
  at: number,
  payload: Uint8Array,
  layers: TreeLayer[],
) {
  if (protocol === IPPROTO_TCP && payload.length >= 20) tcp(b, at, layers);
  else if (protocol === IPPROTO_UDP && payload.length >= 8) udp(b, at, layers);
  else if (protocol === (version === 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6) && payload.length >= 4)
    icmp(version, b, at, layers);
  else if (payload.length > 0) layers.push(data(at, payload.length, 'payload'));
}

const TCP_FLAGS: [number, string][] = [
  [0x80, 'CWR'],
  [0x40, 'ECE'],
  [0x20, 'URG'],
  [0x10, 'ACK'],
  [0x08, 'PSH'],
  [0x04, 'RST'],
  [0x02, 'SYN'],
  [0x01, 'FIN'],
];

function tcp(b: Uint8Array, at: number, layers: TreeLayer[]): void {
  const offset = ((b[at + 12] ?? 0) >> 4) * 4;
  const flagBits = b[at + 13] ?? 0;
  const flags = TCP_FLAGS.filter(([bit]) => flagBits & bit).map(([, n]) => n);
  const fields: TreeField[] = [
    { offset: at, length: 2, name: 'Source Port', value: `${u16(b, at)}` },
    { offset: at + 2, length: 2, name: 'Destination Port', value: `${u16(b, at + 2)}` },
    {
      offset: at + 4,
      length: 4,
      name: 'Sequence Number',
      value: `${u32(b, at + 4)}${flagBits & 0x02 ? ': the ISN; the SYN takes one number (§3.4.1)' : ': the first data byte'}`,
    },
    {
      offset: at + 8,
      length: 4,
      name: 'Acknowledgment Number',
      value:
        flagBits & 0x10 ? `${u32(b, at + 8)}: the next byte expected from the peer` : '(not valid: no ACK)',
    },
    {
      offset: at + 12,
      length: 2,
      name: 'Data Offset / Flags',
      value: `${offset / 4} (a ${offset}-byte header) / ${flags.join(', ') || 'none'}`,
    },
    {
      offset: at + 14,
      length: 2,
      name: 'Window',
      value:
        flagBits & 0x02
          ? `${u16(b, at + 14)} (a SYN's window is never scaled, RFC 7323 §2.2)`
          : `${u16(b, at + 14)} (× 2^ws announced in the sender's SYN, RFC 7323 §2.2)`,
    },
    {
      offset: at + 16,
      length: 2,
      name: 'Checksum',
      value: `0x${u16(b, at + 16)
        .toString(16)
        .padStart(4, '0')} over the pseudo-header (§3.1)`,
    },
    { offset: at + 18, length: 2, name: 'Urgent Pointer', value: `${u16(b, at + 18)}` },
  ];
  // Options (RFC 9293 §3.2), each with the RFC that defines it.
  let o = at + 20;
  const end = at + offset;
  while (o < end) {
    const kind = b[o] ?? 0;
    if (kind === 0) {
      fields.push({ offset: o, length: end - o, name: 'End of Option List', value: '(§3.2)' });
      break;
    }
    if (kind === 1) {
      fields.push({ offset: o, length: 1, name: 'NOP', value: 'padding (§3.2)' });
      o++;
      continue;
    }
    const len = Math.max(2, b[o + 1] ?? 2);
    fields.push({ offset: o, length: len, name: `Option ${kind}`, value: tcpOption(kind, b, o, len) });
    o += len;
  }
  layers.push({
    layer: 'tcp',
    title: `Transmission Control Protocol, ${u16(b, at)} → ${u16(b, at + 2)}, ${flags.join(',')}`,
    rfc: 'RFC 9293 §3.1',
    fields,
  });
  const dataAt = at + offset;
  if (dataAt < b.length) tls(b, dataAt, layers);
}

function tcpOption(kind: number, b: Uint8Array, o: number, len: number): string {
  switch (kind) {
    case 2:
      return `MSS ${u16(b, o + 2)}: the largest segment this side receives (RFC 9293 §3.7.1)`;
    case 3:
      return `Window Scale ${b[o + 2]}: windows are shifted left by it (RFC 7323 §2.2)`;
    case 4:
      return 'SACK permitted (RFC 2018 §2)';
    case 5: {
      const blocks: string[] = [];
      for (let i = o + 2; i + 8 <= o + len; i += 8) blocks.push(`${u32(b, i)}-${u32(b, i + 4)}`);
      return `SACK ${blocks.join(', ')}: data received beyond the hole (RFC 2018 §3)`;
    }
    case 8:
      return `Timestamps TSval=${u32(b, o + 2)} TSecr=${u32(b, o + 6)} (RFC 7323 §3.2)`;
    case 34:
      return len === 2
        ? 'Fast Open cookie request (RFC 7413 §4.1.1)'
        : `Fast Open cookie, ${len - 2} bytes (RFC 7413 §4.1.1)`;
    default:
      return `kind ${kind}, ${len} bytes`;
  }
}

function udp(b: Uint8Array, at: number, layers: TreeLayer[]): void {
  layers.push({
    layer: 'udp',
    title: `User Datagram Protocol, ${u16(b, at)} → ${u16(b, at + 2)}`,
    rfc: 'RFC 768',
    fields: [
      { offset: at, length: 2, name: 'Source Port', value: `${u16(b, at)}` },
      { offset: at + 2, length: 2, name: 'Destination Port', value: `${u16(b, at + 2)}` },
      { offset: at + 4, length: 2, name: 'Length', value: `${u16(b, at + 4)} bytes, header and data` },
      {
        offset: at + 6,
        length: 2,
        name: 'Checksum',
        value: `0x${u16(b, at + 6)
          .toString(16)
          .padStart(4, '0')} over the pseudo-header`,
      },
    ],
  });
  if (at + 8 < b.length) layers.push(data(at + 8, b.length - at - 8, 'datagram'));
}

const ICMP4: Record<number, string> = {
  0: 'echo reply',
  3: 'destination unreachable',
  8: 'echo request',
  11: 'time exceeded',
};
const ICMP6: Record<number, string> = {
  1: 'destination unreachable',
  2: 'packet too big',
  3: 'time exceeded',
  128: 'echo request',
  129: 'echo reply',
};

function icmp(version: 4 | 6, b: Uint8Array, at: number, layers: TreeLayer[]): void {
  const type = b[at] ?? 0;
  const name = (version === 4 ? ICMP4 : ICMP6)[type] ?? 'other';
  const echo = version === 4 ? type === 0 || type === 8 : type === 128 || type === 129;
  const fields: TreeField[] = [
    { offset: at, length: 1, name: 'Type', value: `${type} (${name})` },
    { offset: at + 1, length: 1, name: 'Code', value: `${b[at + 1]}` },
    {
      offset: at + 2,
      length: 2,
      name: 'Checksum',
      value: `0x${u16(b, at + 2)
        .toString(16)
        .padStart(4, '0')}`,
    },
  ];
  if (echo) {
    fields.push({
      offset: at + 4,
      length: 2,
      name: 'Identifier',
      value: `${u16(b, at + 4)}: matches replies to requests`,
    });
    fields.push({ offset: at + 6, length: 2, name: 'Sequence Number', value: `${u16(b, at + 6)}` });
  } else if ((version === 4 && type === 3 && b[at + 1] === 4) || (version === 6 && type === 2)) {
    const mtu = version === 4 ? u16(b, at + 6) : u32(b, at + 4);
    fields.push({
      offset: at + 4,
      length: 4,
      name: 'MTU',
      value: `${mtu}: the next hop's limit (RFC 1191 §4, RFC 8201)`,
    });
  }
  layers.push({
    layer: 'icmp',
    title: `${version === 4 ? 'ICMP' : 'ICMPv6'} ${name}`,
    rfc: version === 4 ? 'RFC 792' : 'RFC 4443 §2.1',
    fields,
  });
}

const CONTENT_TYPES: Record<number, string> = {
  20: 'change_cipher_spec (compatibility, RFC 8446 §D.4)',
  21: 'alert',
  22: 'handshake',
  23: 'application_data (encrypted: the real type is inside, §5.2)',
};
const HANDSHAKE_TYPES: Record<number, string> = {
  1: 'client_hello (§4.1.2)',
  2: 'server_hello (§4.1.3)',
  4: 'new_session_ticket (§4.6.1)',
  8: 'encrypted_extensions (§4.3.1)',
  11: 'certificate (§4.4.2)',
  13: 'certificate_request (§4.3.2)',
  15: 'certificate_verify (§4.4.3)',
  20: 'finished (§4.4.4)',
};

/** TCP data: TLS records when it looks like them (RFC 8446 §5.1), else plain bytes. */
function tls(b: Uint8Array, at: number, layers: TreeLayer[]): void {
  const looksTls = (i: number) =>
    (b[i] ?? 0) >= 20 && (b[i] ?? 0) <= 23 && b[i + 1] === 3 && (b[i + 2] ?? 9) <= 4;
  if (!looksTls(at) || at + 5 > b.length) {
    if (!http(b, at, layers)) layers.push(data(at, b.length - at, 'TCP data'));
    return;
  }
  let i = at;
  while (i + 5 <= b.length && looksTls(i)) {
    const type = b[i] ?? 0;
    const len = u16(b, i + 3);
    const fields: TreeField[] = [
      { offset: i, length: 1, name: 'ContentType', value: `${type} (${CONTENT_TYPES[type] ?? 'other'})` },
      {
        offset: i + 1,
        length: 2,
        name: 'legacy_record_version',
        value: `0x0${b[i + 1]}0${b[i + 2]} (fixed, §5.1)`,
      },
      { offset: i + 3, length: 2, name: 'length', value: `${len} bytes of fragment` },
    ];
    if (type === 22 && i + 9 <= b.length) {
      fields.push({
        offset: i + 5,
        length: 1,
        name: 'HandshakeType',
        value: `${b[i + 5]} ${HANDSHAKE_TYPES[b[i + 5] ?? 0] ?? ''}`,
      });
      fields.push({
        offset: i + 6,
        length: 3,
        name: 'length',
        value: `${((b[i + 6] ?? 0) << 16) | u16(b, i + 7)} bytes`,
      });
    }
    layers.push({
      layer: 'tls',
      title: `TLS record, ${CONTENT_TYPES[type]?.split(' ')[0] ?? type}`,
      rfc: 'RFC 8446 §5.1',
      fields,
    });
    i += 5 + len;
  }
  if (i < b.length) layers.push(data(i, b.length - i, 'TCP data (continues a record)'));
}

const HTTP_START =
  /^(?:(?:GET|HEAD|POST|PUT|DELETE|OPTIONS|CONNECT|PATCH|TRACE) \S+ HTTP\/1\.[01]|HTTP\/1\.[01] \d{3})/;

/**
 * TCP data that starts an HTTP/1.x message: its start line and field lines, each with its
 * bytes (RFC 9112 §2.1). Only what this segment holds; a message split across segments shows
 * its first part. Returns false when the bytes do not look like HTTP/1.x.
 */
function http(b: Uint8Array, at: number, layers: TreeLayer[]): boolean {
  const text = new TextDecoder('latin1').decode(b.subarray(at, Math.min(b.length, at + 8192)));
  if (!HTTP_START.test(text)) return false;
  const fields: TreeField[] = [];
  let i = 0;
  for (const line of text.split('\r\n')) {
    if (i + line.length + 2 > text.length) break;
    if (line === '') {
      fields.push({
        offset: at + i,
        length: 2,
        name: 'end of field section',
        value: 'an empty line (RFC 9112 §2.1)',
      });
      i += 2;
      break;
    }
    const start = fields.length === 0;
    const colon = line.indexOf(':');
    fields.push({
      offset: at + i,
      length: line.length + 2,
      name: start
        ? line.startsWith('HTTP/')
          ? 'status-line'
          : 'request-line'
        : line.slice(0, Math.max(0, colon)),
      value: start
        ? `${line} (RFC 9112 ${line.startsWith('HTTP/') ? '§4' : '§3'})`
        : `${line.slice(colon + 1).trim()} (field line, RFC 9112 §5)`,
    });
    i += line.length + 2;
  }
  layers.push({
    layer: 'http',
    title: `HTTP/1.1 ${text.slice(0, text.indexOf('\r\n'))}`,
    rfc: 'RFC 9112',
    fields,
  });
  if (at + i < b.length) layers.push(data(at + i, b.length - at - i, 'HTTP message body'));
  return true;
}

/** Payload bytes: the first few in the hex column, the count in words. */
function data(offset: number, length: number, what: string): TreeLayer {
  return {
    layer: 'data',
    title: `${what}, ${length} bytes`,
    rfc: '',
    fields: [{ offset, length, name: 'data', value: `${length} bytes` }],
  };
}

/** The tree as text: a line per layer, an indented line per field with its offset and bytes. */
export function formatTree(packet: Uint8Array, layers: TreeLayer[]): string[] {
  const out: string[] = [];
  for (const l of layers) {
    out.push(`  ${l.title}${l.rfc ? `  [${l.rfc}]` : ''}`);
    for (const f of l.fields) {
      const bytes = Array.from(packet.subarray(f.offset, f.offset + Math.min(f.length, 8)), (x) =>
        x.toString(16).padStart(2, '0'),
      ).join(' ');
      const more = f.length > 8 ? ' …' : '';
      out.push(`    ${String(f.offset).padStart(4)}  ${(bytes + more).padEnd(25)}  ${f.name}: ${f.value}`);
    }
  }
  return out;
}
