import { readFileSync, writeFileSync } from 'node:fs';
import { decodePcap, decodePcapng, pcapngPackets } from '@stepwire/link';
import { dissect, formatTree, type LadderLine, ladderHeader, packetTree } from '@stepwire/sim';
import { ParseError } from '@stepwire/wire';
import { UsageError } from '../errors.ts';
import { type FactsOptions, packetFacts } from '../views/facts.ts';
import { renderHtml, type ViewPacket } from '../views/html.ts';
import { type Decrypted, decryptTls, parseKeyLog } from '../views/tls-decrypt.ts';
import { Stepper, terminalKeys } from './step.ts';

/**
 * `stepwire trace FILE.pcap`: our parsers as a tool. Any capture (tcpdump on a TUN, an
 * Ethernet or a Linux "any" interface, Wireshark, our own) is decoded with our codecs into
 * the ladder, and with --html into the same page the demo makes. A packet our decoders refuse
 * is shown with the ParseError's offset and reason, and the rest of the file still decodes.
 */
export interface TraceOptions {
  html?: string;
  /** commander's --no-verify-checksums sets this false. */
  verifyChecksums?: boolean;
  /** Show each packet's layer tree under its ladder line. */
  verbose?: boolean;
  /** An NSS key log (SSLKEYLOGFILE format) to decrypt TLS 1.3 with; also $SSLKEYLOGFILE and the pcapng's secrets. */
  keylog?: string;
  /** Pause at each packet with its layer tree, as `demo --step` does. */
  step?: boolean;
}

// Link-layer header types (tcpdump.org/linktypes.html) and how to reach the IP packet.
const LINKTYPE_ETHERNET = 1;
const LINKTYPE_RAW = 101;
const LINKTYPE_LINUX_SLL = 113;
const LINKTYPE_IPV4 = 228;
const LINKTYPE_IPV6 = 229;
const LINKTYPE_LINUX_SLL2 = 276;

/** The IP packet inside a link-layer frame, or why there is none. */
export function ipPayload(linkType: number, frame: Uint8Array): Uint8Array | string {
  const ethertype = (at: number) => (frame[at]! << 8) | frame[at + 1]!;
  const ipOf = (type: number, at: number) =>
    type === 0x0800 || type === 0x86dd
      ? frame.subarray(at)
      : `ethertype 0x${type.toString(16).padStart(4, '0')} (not IP)`;
  switch (linkType) {
    case LINKTYPE_RAW:
    case LINKTYPE_IPV4:
    case LINKTYPE_IPV6:
      return frame;
    case LINKTYPE_ETHERNET: {
      if (frame.length < 14) return 'Ethernet frame shorter than its header';
      let at = 12;
      // 802.1Q / 802.1ad tags before the real ethertype.
      while ((ethertype(at) === 0x8100 || ethertype(at) === 0x88a8) && frame.length >= at + 6) at += 4;
      return ipOf(ethertype(at), at + 2);
    }
    case LINKTYPE_LINUX_SLL:
      return frame.length < 16 ? 'SLL header truncated' : ipOf(ethertype(14), 16);
    case LINKTYPE_LINUX_SLL2:
      return frame.length < 20 ? 'SLL2 header truncated' : ipOf(ethertype(0), 20);
    default:
      return `link type ${linkType} is not supported`;
  }
}

export interface TracedPacket {
  t: number;
  summary: string;
  ip?: Uint8Array;
  /** What TLS carried in this packet, decrypted with the key log (or why it could not be). */
  decrypted?: Decrypted[];
}

export interface TraceCaptureOptions extends FactsOptions {
  /** Key log lines to decrypt TLS 1.3 with, besides the pcapng's own secrets. */
  keylog?: string[];
}

/** A pcapng starts with a Section Header Block, type 0x0A0D0D0A (a palindrome: either byte order). */
const isPcapng = (b: Uint8Array) => b[0] === 0x0a && b[1] === 0x0d && b[2] === 0x0d && b[3] === 0x0a;

/**
 * Decode a capture file's bytes (pcap or pcapng) into ladder lines (times in ms from its
 * first packet); TLS 1.3 connections whose secrets are in the key log (given, or in the
 * pcapng's Decryption Secrets Blocks) are decrypted.
 */
export function traceCapture(
  bytes: Uint8Array,
  options: TraceCaptureOptions = {},
): {
  file: { format: 'pcap' | 'pcapng'; linkType: number };
  packets: TracedPacket[];
  /** Key log lines found in the capture itself. */
  secrets: string[];
} {
  let frames: { timeMs: number; linkType: number; data: Uint8Array }[];
  let file: { format: 'pcap' | 'pcapng'; linkType: number };
  let secrets: string[] = [];
  if (isPcapng(bytes)) {
    const ng = pcapngPackets(decodePcapng(bytes));
    frames = ng.packets;
    secrets = ng.keylog;
    file = { format: 'pcapng', linkType: ng.packets[0]?.linkType ?? -1 };
  } else {
    const pcap = decodePcap(bytes);
    const scale = pcap.precision === 'nsec' ? 1e-6 : 1e-3;
    frames = pcap.records.map((r) => ({
      timeMs: r.tsSec * 1000 + r.tsFrac * scale,
      linkType: pcap.linkType,
      data: r.data,
    }));
    file = { format: 'pcap', linkType: pcap.linkType };
  }
  const t0 = frames[0]?.timeMs ?? 0;
  const packets: TracedPacket[] = frames.map((f) => {
    const t = f.timeMs - t0;
    const ip = ipPayload(f.linkType, f.data);
    if (typeof ip === 'string') return { t, summary: `not decoded: ${ip}` };
    return { t, summary: summarize(ip, options), ip };
  });
  const keylog = parseKeyLog([...secrets, ...(options.keylog ?? [])]);
  if (keylog.size > 0) {
    const decrypted = decryptTls(
      packets.flatMap((p, index) => (p.ip ? [{ index, ip: p.ip }] : [])),
      keylog,
    );
    for (const [index, d] of decrypted) {
      const p = packets[index];
      if (p) p.decrypted = d;
    }
  }
  return { file, packets, secrets };
}

/** Key log lines from --keylog FILE and from $SSLKEYLOGFILE (as curl and Node read it). */
function keylogLines(o: TraceOptions): string[] {
  const lines: string[] = [];
  const read = (path: string, what: string) => {
    try {
      lines.push(...readFileSync(path, 'utf8').split(/\r?\n/));
    } catch (e) {
      throw new UsageError(`cannot read ${what} ${path}: ${(e as Error).message}`);
    }
  };
  if (o.keylog) read(o.keylog, '--keylog');
  const env = process.env.SSLKEYLOGFILE;
  if (env && env !== o.keylog) read(env, '$SSLKEYLOGFILE');
  return lines;
}

/** dissect() with the refusing layer's offset and reason spelled out. */
function summarize(ip: Uint8Array, options: FactsOptions): string {
  const { refusal } = packetFacts(ip, options);
  // dissect() checks checksums itself; without them, the layer tree's titles make the line.
  const line =
    options.verifyChecksums === false
      ? `${packetTree(ip)
          .map((l) => l.title)
          .join(' · ')} [${ip.length} B]`
      : dissect(ip);
  if (!refusal) return line;
  return `${line} — ${refusal.layer} refused at byte ${refusal.offset}${refusal.field ? ` (${refusal.field})` : ''}: ${refusal.reason}`;
}

export function runTrace(path: string, o: TraceOptions, print: (s: string) => void): void {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new UsageError(`cannot read ${path}: ${(e as Error).message}`);
  }
  let traced: ReturnType<typeof traceCapture>;
  try {
    traced = traceCapture(bytes, { verifyChecksums: o.verifyChecksums !== false, keylog: keylogLines(o) });
  } catch (e) {
    if (e instanceof ParseError)
      throw new UsageError(`${path} is not a pcap or pcapng file we can read: ${e.message}`);
    throw e;
  }
  if (o.step) {
    stepThrough(traced.packets, o, print);
    return;
  }
  print(`${'time (ms)'.padStart(12)}  summary`);
  for (const p of traced.packets) {
    print(`${p.t.toFixed(3).padStart(12)}  ${p.summary}`);
    for (const d of p.decrypted ?? []) print(`${' '.repeat(14)}↳ ${d.text}`);
    if (o.verbose && p.ip) for (const line of formatTree(p.ip, packetTree(p.ip))) print(line);
  }
  const refused = traced.packets.filter((p) => / refused at byte |^not decoded/.test(p.summary)).length;
  print(`${traced.packets.length} packets, ${refused} refused by our decoders`);
  const records = traced.packets.flatMap((p) => p.decrypted ?? []);
  if (records.length > 0 || traced.secrets.length > 0) {
    const failed = records.filter((d) => / not decrypted/.test(d.text)).length;
    print(
      `TLS: ${records.length - failed} decrypted, ${failed} not decrypted${traced.secrets.length ? ` (${traced.secrets.length} secrets from the capture's Decryption Secrets Blocks)` : ''}`,
    );
  }
  const checksumOnly = traced.packets.filter((p) =>
    / refused at byte \d+ \(checksum\)/.test(p.summary),
  ).length;
  if (checksumOnly > 0 && checksumOnly === refused && o.verifyChecksums !== false) {
    print(
      'every refusal is a checksum: a capture taken on a host with checksum offload looks like this (try --no-verify-checksums)',
    );
  }
  if (o.html) {
    const packets: ViewPacket[] = traced.packets.flatMap((p) =>
      p.ip ? [{ t: p.t, bytes: p.ip, ...(p.decrypted ? { decrypted: p.decrypted } : {}) }] : [],
    );
    const checksums = { verifyChecksums: o.verifyChecksums !== false };
    writeFileSync(o.html, renderHtml({ title: `stepwire trace ${path}`, packets, checksums }));
    print(`html: ${o.html}`);
  }
}

/**
 * The capture through demo --step's stepper: each packet a ladder line (sender → receiver by
 * address), its layer tree at each stop, and the same keys (n, k, t/l/i/u, c, q).
 */
function stepThrough(packets: TracedPacket[], o: TraceOptions, print: (s: string) => void): void {
  const keys = terminalKeys();
  const stepper = new Stepper(print, keys, () => {
    keys.close();
    process.exit(0);
  });
  print(ladderHeader());
  try {
    for (const p of packets) {
      const facts = p.ip ? packetFacts(p.ip, { verifyChecksums: o.verifyChecksums !== false }) : {};
      const line: LadderLine = {
        kind: 'packet',
        t: p.t,
        from: facts.src ?? '?',
        to: facts.dst ?? '?',
        summary: p.summary,
        ...(p.ip ? { packet: p.ip } : {}),
      };
      stepper.onLine(line);
      for (const d of p.decrypted ?? []) print(`${' '.repeat(14)}↳ ${d.text}`);
    }
  } finally {
    keys.close();
  }
}
