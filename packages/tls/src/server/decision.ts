/**
 * What the server answers an agreed ClientHello with, beyond the suite, group and PSK
 * (RFC 8446 §4.1.3-§4.4): the key share it answers (§4.2.8), its certificate unless a PSK
 * authenticates (§4.4.2), ALPN (RFC 7301 §3.2), record_size_limit (RFC 8449 §4), whether it
 * takes 0-RTT (RFC 8446 §4.2.10); and the EncryptedExtensions that tell the client (§4.3.1).
 */
import { alert, type CertificateSigner } from '../auth.ts';
import { DEFAULT_GROUPS, GROUP_NAMES } from '../client.ts';
import { AlertDescription } from '../codec/alert.ts';
import { type Extension, findExtension, type KeyShareEntry } from '../codec/extensions.ts';
import type { ClientHello } from '../codec/handshake.ts';
import { MAX_PLAINTEXT } from '../codec/record.ts';
import { QUIC_TRANSPORT_PARAMETERS } from '../connection.ts';
import { acceptEarlyData, type Negotiation, type PskChoice, selectAlpn } from '../handshake/client-hello.ts';
import type { ServerAgreement } from '../handshake/server-states.ts';
import type { KexGroupName } from '../kex.ts';
import { chooseCertificate } from './certificate.ts';
import type { TlsServerOptions } from './options.ts';

/** What the answer depends on besides the ClientHello. */
export interface DecisionContext {
  options: TlsServerOptions;
  /** QUIC mode (RFC 9001): our transport parameters, when in it. */
  quicTransportParameters: Uint8Array | undefined;
  /** SNI from the ClientHello (RFC 6066 §3). */
  serverName: string | undefined;
  now: number;
}

export interface ServerDecision {
  agreement: ServerAgreement;
  /** The client's share we answer, with its group's name (RFC 8446 §4.2.8); none for psk_ke. */
  share?: { entry: KeyShareEntry; name: KexGroupName };
  /** Our certificate and CertificateVerify scheme, unless a PSK authenticates. */
  certificate?: { signer: CertificateSigner; scheme: number };
  /** The client sent record_size_limit, so ours goes in EncryptedExtensions (RFC 8449 §4). */
  recordSizeLimit: boolean;
  /** The client's record_size_limit: the largest plaintext we may send it (RFC 8449 §4). */
  sendLimit?: number;
  /** The largest inner plaintext we take once the client knows our limit (RFC 8449 §4). */
  receiveLimit: number;
  /** 0-RTT accepted: how many bytes (RFC 8446 §4.2.10). */
  earlyData?: number;
  /** A ticket's 0-RTT refused (wrong suite or ALPN, age, replay): counted and traced. */
  earlyDataRejected: boolean;
  /** 0-RTT offered and not accepted: its records are skipped, up to a limit (RFC 8446 §4.2.10). */
  skipEarlyData: boolean;
}

/** Everything the answer depends on besides the suite, group and PSK already agreed. */
export function decide(
  c: DecisionContext,
  ch: ClientHello,
  n: Negotiation,
  psk: PskChoice | undefined,
): ServerDecision {
  const o = c.options;
  const suite = n.suite;
  // RFC 8446 §4.2.9 psk_ke: the client's shares go unanswered.
  const share = psk?.withoutDhe ? undefined : n.share;
  // RFC 8446 §4.4.2: a certificate unless a PSK authenticates.
  const certificate = psk ? undefined : chooseCertificate(o.signer, ch, c.serverName);

  const alpn = selectAlpn(ch, o, c.serverName);
  // RFC 9001 §8.1: QUIC needs an application protocol agreed by ALPN.
  if (c.quicTransportParameters !== undefined && alpn === undefined)
    alert(AlertDescription.no_application_protocol, 'no ALPN protocol for QUIC');
  const rsl = findExtension(ch.extensions, 'record_size_limit');
  let receiveLimit = MAX_PLAINTEXT + 1;
  let sendLimit: number | undefined;
  if (rsl) {
    sendLimit = Math.min(MAX_PLAINTEXT, rsl.limit - 1);
    // RFC 8449 §4: our own limit binds the client once it reads it in EncryptedExtensions, so
    // it applies from its handshake-key records on (not to 0-RTT records, sent before it knew).
    receiveLimit = Math.min(MAX_PLAINTEXT + 1, o.recordSizeLimit ?? MAX_PLAINTEXT + 1);
  }

  // 0-RTT (RFC 8446 §4.2.10), or its records skipped up to a limit.
  const offeredEarly = findExtension(ch.extensions, 'early_data') !== undefined;
  const antiReplay = o.antiReplay;
  const earlyAllowed = offeredEarly
    ? acceptEarlyData(
        ch,
        psk,
        suite,
        alpn,
        c.now,
        antiReplay ? (key, expiresAt) => antiReplay.firstUse(key, expiresAt, c.now) : undefined,
      )
    : undefined;
  const earlyData = earlyAllowed !== undefined && earlyAllowed > 0 ? earlyAllowed : undefined;

  const groupName = share ? GROUP_NAMES[share.group] : undefined;
  return {
    agreement: {
      suite,
      ...(groupName !== undefined ? { group: groupName } : {}),
      ...(alpn !== undefined ? { alpn } : {}),
      ...(c.serverName !== undefined ? { serverName: c.serverName } : {}),
      ...(psk ? { psk: psk.kind } : {}),
      earlyData: offeredEarly ? (earlyData !== undefined ? 'accepted' : 'rejected') : 'none',
      ...(n.quicTransportParameters ? { quicTransportParameters: n.quicTransportParameters } : {}),
      postHandshakeAuth: ch.extensions.some((e) => e.type === 'post_handshake_auth'),
    },
    ...(share && groupName ? { share: { entry: share, name: groupName } } : {}),
    ...(certificate ? { certificate } : {}),
    recordSizeLimit: rsl !== undefined,
    ...(sendLimit !== undefined ? { sendLimit } : {}),
    receiveLimit,
    ...(earlyData !== undefined ? { earlyData } : {}),
    earlyDataRejected: earlyAllowed === 0,
    skipEarlyData: offeredEarly && earlyData === undefined,
  };
}

/** EncryptedExtensions (RFC 8446 §4.3.1): what the ServerHello could not say in the clear. */
export function encryptedExtensions(c: DecisionContext, d: ServerDecision): Extension[] {
  const o = c.options;
  const ee: Extension[] = [];
  // RFC 8446 §4.2.7: our groups, so the client can send the right share next time.
  if (o.advertiseGroups !== false)
    ee.push({ type: 'supported_groups', groups: [...(o.groups ?? DEFAULT_GROUPS)] });
  if (d.agreement.alpn !== undefined) ee.push({ type: 'alpn', protocols: [d.agreement.alpn] });
  if (d.recordSizeLimit)
    ee.push({ type: 'record_size_limit', limit: o.recordSizeLimit ?? MAX_PLAINTEXT + 1 });
  // RFC 6066 §3: an empty server_name says we used the client's.
  if (c.serverName !== undefined) ee.push({ type: 'server_name' });
  if (d.earlyData !== undefined) ee.push({ type: 'early_data' });
  // RFC 9001 §8.2: our transport parameters.
  if (c.quicTransportParameters !== undefined)
    ee.push({ type: 'raw', code: QUIC_TRANSPORT_PARAMETERS, data: c.quicTransportParameters });
  return ee;
}
