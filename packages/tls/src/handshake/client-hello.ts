/**
 * The server's ClientHello, step by step (RFC 8446 §4.1.2): negotiation of version, suite
 * and group; the PSK (resumption or external, §4.2.11); the HelloRetryRequest and its
 * stateless cookie (§4.1.4, §4.2.2); and whether 0-RTT is taken (§4.2.10). Each step is a
 * function of the message and the server's options that returns its decision or throws the
 * alert the RFC names; the machine in server.ts strings them together.
 */
import { ByteReader, ByteWriter, concatBytes, toHex, utf8 } from '@stepwire/wire';
import { alert, macEqual } from '../auth.ts';
import { AlertDescription } from '../codec/alert.ts';
import { PskKeyExchangeMode, TLS_1_2, TLS_1_3 } from '../codec/common.ts';
import { findExtension, type KeyShareEntry } from '../codec/extensions.ts';
import {
  type ClientHello,
  encodeHandshake,
  type HandshakeMessage,
  truncatedClientHello,
} from '../codec/handshake.ts';
import { QUIC_TRANSPORT_PARAMETERS } from '../connection.ts';
import type { CryptoProvider, HashName } from '../crypto/provider.ts';
import { type CipherSuiteParams, cipherSuite, finishedVerifyData, KeySchedule } from '../keyschedule.ts';
import type { RetryState } from './server-states.ts';
import type { TicketState } from './tickets.ts';

/** What negotiation needs from the server's options. */
export interface NegotiationOptions {
  cipherSuites: readonly number[];
  groups: readonly number[];
  /** Group codes we implement. */
  implemented: (group: number) => boolean;
  groupSelection?: 'shares' | 'preference';
  allowPskKe?: boolean;
  quic: boolean;
}

/** The outcome of negotiation (RFC 8446 §4.1.1). */
export interface Negotiation {
  suite: CipherSuiteParams;
  /** The client's share we answer, if any (RFC 8446 §4.2.8). */
  share?: KeyShareEntry;
  /** Our groups the client supports, ours first: the HelloRetryRequest asks for the first. */
  common: number[];
  /** psk_ke could serve (RFC 8446 §4.2.9): allowed, offered, with a PSK. */
  pskOnlyPossible: boolean;
  /** QUIC mode: the client's quic_transport_parameters (RFC 9001 §8.2). */
  quicTransportParameters?: Uint8Array;
}

/**
 * Version, suite and group (RFC 8446 §4.1.1), and after a HelloRetryRequest the checks that
 * the second ClientHello answers it (§4.1.2). Throws the RFC's alert for what cannot be agreed.
 */
export function negotiate(
  ch: ClientHello,
  o: NegotiationOptions,
  retry: RetryState | undefined,
): Negotiation {
  // RFC 8446 §D.5: a ClientHello.legacy_version of 0x0300 (SSL 3.0) or less MUST be answered
  // with protocol_version, whatever supported_versions says.
  if (ch.legacyVersion <= 0x0300) alert(AlertDescription.protocol_version, 'legacy_version SSL 3.0 or older');
  const sv = findExtension(ch.extensions, 'supported_versions');
  // RFC 8446 §4.2.1: without TLS 1.3 in supported_versions we would have to speak TLS 1.2, which we do not.
  if (!sv || !('versions' in sv) || !sv.versions.includes(TLS_1_3))
    alert(AlertDescription.protocol_version, 'client does not offer TLS 1.3');
  // RFC 8446 §4.1.2: exactly one compression method, null.
  if (ch.legacyCompressionMethods.length !== 1 || ch.legacyCompressionMethods[0] !== 0) {
    alert(AlertDescription.illegal_parameter, 'legacy_compression_methods is not [null]');
  }
  // RFC 8446 §4.1.1: the server picks the suite, in its own preference order.
  const suiteId = o.cipherSuites.find((s) => ch.cipherSuites.includes(s));
  if (suiteId === undefined) alert(AlertDescription.handshake_failure, 'no cipher suite in common');
  const suite = cipherSuite(suiteId);
  let quicTransportParameters: Uint8Array | undefined;
  if (o.quic) {
    // RFC 9001 §8.2: a QUIC ClientHello must carry transport parameters (missing_extension).
    const tp = ch.extensions.find((e) => e.type === 'raw' && e.code === QUIC_TRANSPORT_PARAMETERS);
    if (tp?.type !== 'raw')
      alert(AlertDescription.missing_extension, 'ClientHello without quic_transport_parameters');
    quicTransportParameters = tp.data;
    // RFC 9001 §8.4: QUIC clients do not use middlebox compatibility mode.
    if (ch.legacySessionId.length > 0)
      alert(AlertDescription.illegal_parameter, 'QUIC ClientHello with a legacy_session_id');
  }

  const groupsExt = findExtension(ch.extensions, 'supported_groups');
  const keyShareExt = findExtension(ch.extensions, 'key_share');
  const lastExt = ch.extensions[ch.extensions.length - 1];
  const modesExt = findExtension(ch.extensions, 'psk_key_exchange_modes');
  // RFC 8446 §4.2.9: psk_ke (a PSK without (EC)DHE, so without forward secrecy) only where
  // we were configured to allow it and the client offers it with a PSK.
  const pskOnlyPossible =
    o.allowPskKe === true &&
    lastExt?.type === 'pre_shared_key' &&
    modesExt?.modes.includes(PskKeyExchangeMode.psk_ke) === true;
  // RFC 8446 §9.2: supported_groups and key_share come together; both are required unless
  // the handshake can be psk_ke.
  if (!(pskOnlyPossible && !groupsExt && !keyShareExt)) {
    if (!groupsExt || !keyShareExt || !('clientShares' in keyShareExt))
      alert(AlertDescription.missing_extension, 'key_share and supported_groups are required');
  }
  const clientShares = keyShareExt && 'clientShares' in keyShareExt ? keyShareExt.clientShares : [];
  const offeredGroups = groupsExt?.groups ?? [];
  for (const s of clientShares) {
    // RFC 8446 §4.2.8: shares only for offered groups.
    if (!offeredGroups.includes(s.group))
      alert(AlertDescription.illegal_parameter, `key share for unoffered group ${s.group}`);
  }

  if (retry) {
    // RFC 8446 §4.1.2: the second ClientHello keeps the first's suites and answers our group with one share.
    if (clientShares.length !== 1 || clientShares[0]?.group !== retry.group) {
      alert(AlertDescription.illegal_parameter, 'second ClientHello does not carry the requested key share');
    }
    if (ch.cipherSuites.join() !== retry.firstHello.cipherSuites.join() || retry.suite.id !== suiteId) {
      alert(AlertDescription.illegal_parameter, 'second ClientHello changed its cipher suites');
    }
    // RFC 8446 §4.2.2: a cookie we sent comes back unchanged.
    const cookie = findExtension(ch.extensions, 'cookie');
    if (retry.cookie && (!cookie || toHex(cookie.cookie) !== toHex(retry.cookie))) {
      alert(AlertDescription.illegal_parameter, 'second ClientHello does not echo our cookie');
    }
  }

  const common = o.groups.filter((g) => o.implemented(g) && offeredGroups.includes(g));
  // RFC 8446 §4.2.8: 'shares' takes any share we can use (no round trip); 'preference'
  // insists on our first common group.
  const share =
    o.groupSelection === 'preference'
      ? clientShares.find((s) => s.group === common[0])
      : common.map((g) => clientShares.find((s) => s.group === g)).find((s) => s !== undefined);
  return {
    suite,
    common,
    pskOnlyPossible,
    ...(share ? { share } : {}),
    ...(quicTransportParameters ? { quicTransportParameters } : {}),
  };
}

/** A PSK the server found for one of the client's identities (RFC 8446 §4.2.11). */
export interface PskChoice {
  selectedIdentity: number;
  key: Uint8Array;
  kind: 'resumption' | 'external';
  /** The ticket's state, for a resumption PSK. */
  ticket?: TicketState;
  /** psk_ke: no (EC)DHE; the client's shares go unanswered (RFC 8446 §4.2.9). */
  withoutDhe: boolean;
}

export interface PskLookup {
  crypto: CryptoProvider;
  /** The transcript before this ClientHello (message_hash and HRR after a retry). */
  transcriptBytes: Uint8Array;
  externalPsk?: (identity: Uint8Array) => { key: Uint8Array; hash?: HashName } | undefined;
  openTicket: (identity: Uint8Array) => TicketState | undefined;
}

/**
 * Resumption (RFC 8446 §4.2.11): the first identity whose ticket opens (or external key is
 * known), matches the suite's hash and whose binder verifies; a binder that does not
 * verify aborts the handshake (§4.2.11.2). Undefined when no PSK is used.
 */
export function selectPsk(
  env: PskLookup,
  ch: ClientHello,
  raw: Uint8Array,
  negotiation: Negotiation,
): PskChoice | undefined {
  const { suite, share, pskOnlyPossible } = negotiation;
  const pskExt = ch.extensions[ch.extensions.length - 1];
  if (pskExt?.type !== 'pre_shared_key' || !('identities' in pskExt)) return undefined;
  const modes = findExtension(ch.extensions, 'psk_key_exchange_modes');
  // RFC 8446 §4.2.9: pre_shared_key without psk_key_exchange_modes is an error.
  if (!modes) alert(AlertDescription.missing_extension, 'pre_shared_key without psk_key_exchange_modes');
  // psk_dhe_ke when we have a share to answer (forward secrecy first), else psk_ke if allowed.
  const mode =
    share && modes.modes.includes(PskKeyExchangeMode.psk_dhe_ke) ? 'dhe' : pskOnlyPossible ? 'ke' : undefined;
  if (mode === undefined) return undefined;
  const prefix = truncatedClientHello(raw, ch);
  for (const [i, { identity }] of pskExt.identities.entries()) {
    const external = env.externalPsk?.(identity);
    const ticket = external ? undefined : env.openTicket(identity);
    const key = external?.key ?? ticket?.psk;
    const hash = external
      ? (external.hash ?? 'sha256')
      : ticket
        ? cipherSuite(ticket.cipherSuite).hash
        : undefined;
    if (!key || hash !== suite.hash) continue;
    const kind = external ? 'external' : 'resumption';
    const ks = new KeySchedule(env.crypto, suite.hash);
    ks.deriveEarlySecret(key);
    const th = env.crypto.hash(suite.hash, concatBytes(env.transcriptBytes, prefix));
    const expected = finishedVerifyData(env.crypto, suite.hash, ks.binderKey(kind), th);
    const binder = pskExt.binders[i];
    // RFC 8446 §4.2.11.2: a binder that does not verify aborts the handshake.
    if (!binder || !macEqual(expected, binder))
      alert(AlertDescription.decrypt_error, 'PSK binder does not verify');
    return { selectedIdentity: i, key, kind, withoutDhe: mode === 'ke', ...(ticket ? { ticket } : {}) };
  }
  return undefined;
}

/** RFC 8446 §8.3: how far the client's view of the ticket age may stray from ours. */
export const TICKET_AGE_TOLERANCE_MS = 10_000;

/**
 * 0-RTT (RFC 8446 §4.2.10): taken only for the first PSK, a ticket that allows it, with the
 * ticket's suite and ALPN, a plausible ticket age (§8.3) and a binder never seen before
 * (§8.2, `firstUse`). Returns the bytes allowed; 0 when a ticket was offered for 0-RTT but
 * is refused; undefined when no ticket PSK makes 0-RTT possible at all.
 */
export function acceptEarlyData(
  ch: ClientHello,
  psk: PskChoice | undefined,
  suite: CipherSuiteParams,
  alpn: string | undefined,
  now: number,
  firstUse: ((key: string, expiresAt: number) => boolean) | undefined,
): number | undefined {
  const ticket = psk?.ticket;
  const pskExt = ch.extensions[ch.extensions.length - 1];
  if (!ticket || psk.selectedIdentity !== 0 || pskExt?.type !== 'pre_shared_key' || !('identities' in pskExt))
    return undefined;
  const identity = pskExt.identities[0];
  const binder = pskExt.binders[0];
  if (!identity || !binder) return undefined;
  const clientAge = (identity.obfuscatedTicketAge - ticket.ageAdd) >>> 0;
  const ourAge = now - ticket.issuedAt;
  const ok =
    ticket.maxEarlyData > 0 &&
    ticket.cipherSuite === suite.id &&
    ticket.alpn === (alpn ?? '') &&
    Math.abs(clientAge - ourAge) <= TICKET_AGE_TOLERANCE_MS &&
    firstUse?.(toHex(binder), ticket.issuedAt + ticket.lifetimeSeconds * 1000) === true;
  return ok ? ticket.maxEarlyData : 0;
}

/** ALPN (RFC 7301 §3.2): the callback's choice or our first protocol the client offers. */
export function selectAlpn(
  ch: ClientHello,
  o: {
    alpnProtocols?: readonly string[];
    alpnSelect?: (offer: { protocols: readonly string[]; serverName?: string }) => string | undefined;
  },
  serverName: string | undefined,
): string | undefined {
  const alpnExt = findExtension(ch.extensions, 'alpn');
  if (!alpnExt) return undefined;
  if (o.alpnSelect) {
    const chosen = o.alpnSelect({
      protocols: alpnExt.protocols,
      ...(serverName !== undefined ? { serverName } : {}),
    });
    // RFC 7301 §3.1: the server's choice is one the client offered.
    if (chosen === undefined || !alpnExt.protocols.includes(chosen))
      alert(AlertDescription.no_application_protocol, 'the ALPN callback chose no offered protocol');
    return chosen;
  }
  if (!o.alpnProtocols?.length) return undefined;
  const alpn = o.alpnProtocols.find((p) => alpnExt.protocols.includes(p));
  // RFC 7301 §3.2: no protocol in common is a no_application_protocol alert.
  if (alpn === undefined) alert(AlertDescription.no_application_protocol, 'no ALPN protocol in common');
  return alpn;
}

/** Our HelloRetryRequest (RFC 8446 §4.1.4); the same bytes whether sent now or rebuilt from a cookie. */
export function helloRetryRequest(
  ch: ClientHello,
  suiteId: number,
  group: number,
  cookie: Uint8Array | undefined,
): HandshakeMessage {
  return {
    msgType: 'hello_retry_request',
    legacyVersion: TLS_1_2,
    legacySessionIdEcho: ch.legacySessionId,
    cipherSuite: suiteId,
    legacyCompressionMethod: 0,
    // Order as in the RFC 8448 traces: key_share, cookie, supported_versions.
    extensions: [
      { type: 'key_share', selectedGroup: group },
      ...(cookie ? [{ type: 'cookie' as const, cookie }] : []),
      { type: 'supported_versions', selectedVersion: TLS_1_3 },
    ],
  };
}

const COOKIE_AAD = utf8('stepwire tls13 hrr cookie v1');

/** RFC 8446 §4.2.2: what a stateless server needs from ClientHello1, sealed in the cookie. */
export function sealCookie(
  crypto: CryptoProvider,
  key: Uint8Array,
  now: number,
  suiteId: number,
  group: number,
  ch1Hash: Uint8Array,
): Uint8Array {
  const w = new ByteWriter(16 + ch1Hash.length);
  w.u16(suiteId)
    .u16(group)
    .u64(BigInt(Math.floor(now)))
    .u8(ch1Hash.length)
    .bytes(ch1Hash);
  const iv = crypto.randomBytes(12);
  const sealed = crypto.aead('AES_256_GCM', key).seal(iv, COOKIE_AAD, w.finish());
  return concatBytes(iv, sealed);
}

/**
 * A second ClientHello whose cookie we sealed (possibly in another instance): the state of
 * the HelloRetryRequest — the transcript message_hash(ClientHello1) || HRR (§4.4.1), the
 * suite and the group asked for — as if this instance had sent it. Undefined without a cookie.
 */
export function openCookie(
  crypto: CryptoProvider,
  stateless: { key: Uint8Array; maxAgeMs?: number },
  now: number,
  ch: ClientHello,
): { retry: RetryState; transcript: Uint8Array[] } | undefined {
  const cookie = findExtension(ch.extensions, 'cookie');
  if (!cookie) return undefined;
  const c = cookie.cookie;
  const plain =
    c.length > 12 + 16
      ? crypto.aead('AES_256_GCM', stateless.key).open(c.subarray(0, 12), COOKIE_AAD, c.subarray(12))
      : null;
  // RFC 8446 §4.2.2: a cookie must be one we sent; anything else is an illegal_parameter.
  if (!plain) alert(AlertDescription.illegal_parameter, 'cookie we did not issue');
  const r = new ByteReader(plain, 'tls.cookie');
  const suiteId = r.u16('suite');
  const group = r.u16('group');
  const issuedAt = Number(r.u64('issued'));
  const ch1Hash = r.copy(r.u8('hash length'), 'hash');
  const age = now - issuedAt;
  if (age < 0 || age > (stateless.maxAgeMs ?? 30_000))
    alert(AlertDescription.illegal_parameter, 'stale HelloRetryRequest cookie');
  const m = new Uint8Array(4 + ch1Hash.length);
  m[0] = 254; // message_hash (RFC 8446 §4.4.1)
  m[3] = ch1Hash.length;
  m.set(ch1Hash, 4);
  return {
    retry: { firstHello: ch, suite: cipherSuite(suiteId), group, cookie: c },
    transcript: [m, encodeHandshake(helloRetryRequest(ch, suiteId, group, c))],
  };
}
