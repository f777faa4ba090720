/**
 * What the client's ClientHello offers (RFC 8446 §4.1.2), decided from its options and the
 * clock alone: the groups it sends key shares for (§4.2.8), the PSK — a ticket's or an
 * external one (§4.2.11) — and whether 0-RTT data may go with it (§4.2.10).
 */
import { NamedGroup } from '../codec/common.ts';
import type { QuicModeOptions, SessionTicket } from '../connection.ts';
import type { HashName } from '../crypto/provider.ts';
import { KEX_GROUPS, type KexGroupName, X25519MLKEM768 } from '../kex.ts';
import { CIPHER_SUITES, cipherSuite } from '../keyschedule.ts';
import type { OfferedPsk } from './client-states.ts';

/** The groups we implement by code point (kex.ts). */
export const GROUP_NAMES: Record<number, KexGroupName> = KEX_GROUPS;

export const DEFAULT_CIPHER_SUITES = [0x1301, 0x1302, 0x1303];
/**
 * The hybrid post-quantum group first, as current browsers and OpenSSL 3.5 offer it
 * (draft-ietf-tls-ecdhe-mlkem), then X25519, P-256 and P-384.
 */
export const DEFAULT_GROUPS = [X25519MLKEM768, NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1];

/** The client options these decisions read (a subset of TlsClientOptions). */
export interface OfferOptions {
  serverName?: string;
  cipherSuites?: readonly number[];
  groups?: readonly number[];
  keyShareGroups?: readonly number[];
  alpnProtocols?: readonly string[];
  session?: SessionTicket;
  earlyData?: Uint8Array;
  externalPsk?: { identity: Uint8Array; key: Uint8Array; hash?: HashName };
}

/**
 * Which groups the first ClientHello carries shares for (RFC 8446 §4.2.8): `keyShareGroups`,
 * else the first group, plus X25519 beside the hybrid X25519MLKEM768 as browsers send.
 */
export function initialShareGroups(o: OfferOptions): number[] {
  const groups = (o.groups ?? DEFAULT_GROUPS).filter((g) => GROUP_NAMES[g]);
  if (o.keyShareGroups) {
    const chosen = o.keyShareGroups.filter((g) => groups.includes(g));
    if (chosen.length === 0) throw new Error('keyShareGroups names no configured group');
    return chosen;
  }
  const first = groups[0];
  if (first === undefined) throw new Error('no supported group configured');
  // A hybrid share alone would cost a HelloRetryRequest with every server that lacks it.
  if (first === X25519MLKEM768 && groups.includes(NamedGroup.x25519)) return [first, NamedGroup.x25519];
  return [first];
}

/** A ticket we may offer: not expired (RFC 8446 §4.6.1) and for a suite we still offer. */
export function usableSession(o: OfferOptions, now: number): SessionTicket | undefined {
  const s = o.session;
  if (!s) return undefined;
  if (now - s.receivedAt > s.lifetimeSeconds * 1000) return undefined;
  // RFC 8446 §4.6.1: resume only toward the server name the ticket was issued for.
  if (s.serverName !== o.serverName) return undefined;
  if (!(o.cipherSuites ?? DEFAULT_CIPHER_SUITES).includes(s.cipherSuite)) return undefined;
  if (!CIPHER_SUITES.has(s.cipherSuite)) return undefined;
  return s;
}

/** RFC 8446 §4.2.10: 0-RTT needs a ticket that allows it, for this much data and the same ALPN. */
export function canSendEarlyData(o: OfferOptions, now: number, quic: QuicModeOptions | undefined): boolean {
  const s = usableSession(o, now);
  if (quic) {
    // RFC 9001 §4.6.1: a QUIC ticket allows 0-RTT with max_early_data_size 0xffffffff; the
    // amount is then bounded by the remembered transport parameters instead.
    if (!quic.earlyData || !s || s.maxEarlyDataSize !== 0xffffffff) return false;
    return s.alpn === undefined || o.alpnProtocols?.[0] === s.alpn;
  }
  const data = o.earlyData;
  if (!data || !s || s.maxEarlyDataSize < data.length) return false;
  if (s.alpn !== undefined && o.alpnProtocols?.[0] !== s.alpn) return false;
  return true;
}

/** The PSK to offer: a usable ticket's, else the external one (RFC 8446 §4.2.11). */
export function offeredPsk(o: OfferOptions, now: number): OfferedPsk | undefined {
  const s = usableSession(o, now);
  if (s) {
    // RFC 8446 §4.2.11.1: obfuscated_ticket_age = age in ms + ticket_age_add, mod 2^32.
    const age = Math.max(0, Math.floor(now - s.receivedAt));
    return {
      kind: 'resumption',
      identity: s.ticket,
      key: s.psk,
      hash: cipherSuite(s.cipherSuite).hash,
      obfuscatedTicketAge: (age + s.ageAdd) >>> 0,
    };
  }
  const e = o.externalPsk;
  // RFC 8446 §4.2.11: external identities use an obfuscated_ticket_age of 0.
  if (e)
    return {
      kind: 'external',
      identity: e.identity,
      key: e.key,
      hash: e.hash ?? 'sha256',
      obfuscatedTicketAge: 0,
    };
  return undefined;
}
