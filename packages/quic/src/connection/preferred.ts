/**
 * The server's preferred address (RFC 9000 §9.6, §18.2). A server may name, in its transport
 * parameters, another address (IPv4 and/or IPv6) and a connection ID (sequence number 1,
 * §5.1.1) to move to after the handshake. Once the handshake is confirmed the client probes
 * that address with PATH_CHALLENGE using that connection ID (§9.6.1); when the answer comes
 * it sends everything there from then on, as a migration to a new path (§9.4: congestion
 * control and RTT start over, and ECN and the path MTU are found again). If validation
 * fails it stays where it is.
 */
import { bytesEqual } from '@stepwire/wire';
import { AEAD_TAG_LENGTH } from '../crypto/protect.ts';
import type { Frame } from '../frames/frame.ts';
import type { PreferredAddress } from '../transport-parameters.ts';
import { type ConnectionCore, MIN_INITIAL_DATAGRAM } from './core.ts';
import { addPadding, frameLength } from './frames.ts';
import { resetCongestionForNewPath } from './path.ts';
import { headerFor, headerLength, seal } from './send.ts';
import type { RemoteAddress } from './types.ts';

/** Client: the move to the server's preferred address while it is being validated. */
export interface PreferredMigration {
  remote: RemoteAddress;
  /** Sequence number of the preferred_address connection ID (always 1, RFC 9000 §5.1.1). */
  seq: number;
  cid: Uint8Array;
  /** Every PATH_CHALLENGE sent so far (a response to any of them validates, §8.2.3). */
  challenges: Uint8Array[];
  /** A challenge is due (first, or again after `deadline`). */
  due: boolean;
  deadline: number;
}

/** PATH_CHALLENGEs sent to the preferred address before the client gives up (RFC 9000 §8.2.4). */
export const PREFERRED_ADDRESS_TRIES = 3;

/** Server configuration: where it would rather be reached. */
export interface PreferredAddressConfig {
  ipv4?: RemoteAddress;
  ipv6?: RemoteAddress;
}

// ---- addresses as text and bytes (RFC 791, RFC 4291 §2.2, RFC 5952 for the text) ----

export function ipv4Bytes(text: string): Uint8Array {
  const parts = text.split('.').map((p) => Number(p));
  if (parts.length !== 4 || parts.some((n) => !Number.isInteger(n) || n < 0 || n > 255))
    throw new RangeError(`not an IPv4 address: ${text}`);
  return Uint8Array.from(parts);
}

export function ipv6Bytes(text: string): Uint8Array {
  const [head = '', tail, extra] = text.split('::');
  if (extra !== undefined) throw new RangeError(`not an IPv6 address: ${text}`);
  const groups = (s: string) => (s === '' ? [] : s.split(':').map((g) => Number.parseInt(g, 16)));
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const fill = tail === undefined ? 0 : 8 - h.length - t.length;
  const all = [...h, ...new Array<number>(fill).fill(0), ...t];
  if (all.length !== 8 || all.some((g) => !Number.isInteger(g) || g < 0 || g > 0xffff))
    throw new RangeError(`not an IPv6 address: ${text}`);
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

export function formatIpv4(b: Uint8Array): string {
  return [...b.subarray(0, 4)].join('.');
}

/** RFC 5952 §4: lowercase, no leading zeros, the longest run of two or more zero groups as "::". */
export function formatIpv6(b: Uint8Array): string {
  const g = Array.from({ length: 8 }, (_, i) => ((b[2 * i] ?? 0) << 8) | (b[2 * i + 1] ?? 0));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/** Server: the preferred_address transport parameter for our configuration and the connection ID of sequence 1. */
export function preferredAddressParameter(
  config: PreferredAddressConfig,
  cid: Uint8Array,
  resetToken: Uint8Array,
): PreferredAddress {
  return {
    ipv4Address: config.ipv4 ? ipv4Bytes(config.ipv4.address) : new Uint8Array(4),
    ipv4Port: config.ipv4?.port ?? 0,
    ipv6Address: config.ipv6 ? ipv6Bytes(config.ipv6.address) : new Uint8Array(16),
    ipv6Port: config.ipv6?.port ?? 0,
    connectionId: cid,
    statelessResetToken: resetToken,
  };
}

/** The preferred address of the family we already use, if the server gave one. */
function preferredRemote(c: ConnectionCore, pa: PreferredAddress): RemoteAddress | undefined {
  const v6 = c.path.remote?.address.includes(':') ?? false;
  if (v6) {
    if (pa.ipv6Port === 0 && pa.ipv6Address.every((x) => x === 0)) return undefined;
    return { address: formatIpv6(pa.ipv6Address), port: pa.ipv6Port };
  }
  if (pa.ipv4Port === 0 && pa.ipv4Address.every((x) => x === 0)) return undefined;
  return { address: formatIpv4(pa.ipv4Address), port: pa.ipv4Port };
}

/**
 * Client, handshake confirmed (RFC 9000 §9.6.1: "once the handshake is confirmed"): start
 * validating the preferred address, unless the transport config says not to.
 */
export function startPreferredMigration(c: ConnectionCore, now: number): void {
  const pa = c.peerParams?.preferred_address;
  if (c.role !== 'client' || !pa || c.config.usePreferredAddress === false || !c.path.remote) return;
  const remote = preferredRemote(c, pa);
  if (!remote) return;
  c.preferred = { remote, seq: 1, cid: pa.connectionId, challenges: [], due: true, deadline: now };
  c.counters.inc('quic.path.preferred-probing');
  c.trace1(
    now,
    'local',
    `validating the server's preferred address ${remote.address}:${remote.port}`,
    'RFC 9000 §9.6.1',
  );
}

/**
 * The PATH_CHALLENGE to the preferred address, alone in a 1-RTT packet with the preferred
 * connection ID, padded to 1200 bytes (RFC 9000 §8.2.1); `transmitRemote` sends it there.
 */
export function preferredProbeDatagram(c: ConnectionCore, now: number): Uint8Array | undefined {
  const p = c.preferred;
  if (!p || !c.keys.oneRtt) return undefined;
  if (!p.due && now < p.deadline) return undefined;
  if (p.challenges.length >= PREFERRED_ADDRESS_TRIES) {
    // RFC 9000 §9.6.1, §8.2.4: validation failed; the client stays on the original address.
    c.preferred = undefined;
    c.counters.inc('quic.path.preferred-failed');
    c.trace1(now, 'local', "the server's preferred address did not answer: staying", 'RFC 9000 §9.6.1');
    return undefined;
  }
  const data = c.random(8);
  p.challenges.push(data);
  p.due = false;
  p.deadline = now + 3 * c.ptoDuration();
  const space = c.spaces.ApplicationData;
  const header = { ...headerFor(c, space), dcid: p.cid };
  const overhead = headerLength(header) + AEAD_TAG_LENGTH;
  const frames: Frame[] = [{ type: 'PATH_CHALLENGE', data }];
  const size = Math.max(MIN_INITIAL_DATAGRAM, overhead + frameLength(frames[0] as Frame));
  addPadding(frames, size - overhead - frameLength(frames[0] as Frame));
  c.transmitRemote = p.remote;
  return seal(c, { space, header, frames, items: [], size, ackEliciting: true, padded: true }, now);
}

/** When the next challenge to the preferred address is due (for pollTimeout). */
export function preferredDeadline(c: ConnectionCore): number | undefined {
  return c.preferred?.deadline;
}

/**
 * A PATH_RESPONSE: if it answers one of our challenges to the preferred address, the client
 * moves there (RFC 9000 §9.6.1: "send all future packets to the new server address using
 * the new connection ID"). Returns whether it was one.
 */
export function onPreferredResponse(c: ConnectionCore, data: Uint8Array, now: number): boolean {
  const p = c.preferred;
  if (!p?.challenges.some((d) => bytesEqual(d, data))) return false;
  c.preferred = undefined;
  if (!c.cids.switchTo(p.seq)) return true;
  c.path.previous = undefined;
  c.path.remote = { ...p.remote };
  c.path.validated = true;
  c.path.challenge = undefined;
  resetCongestionForNewPath(c, now);
  c.counters.inc('quic.path.preferred-address');
  c.trace1(
    now,
    'local',
    `moved to the server's preferred address ${p.remote.address}:${p.remote.port}`,
    'RFC 9000 §9.6.1',
  );
  return true;
}
