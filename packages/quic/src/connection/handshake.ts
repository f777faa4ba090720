/**
 * The TLS bridge (RFC 9001 §4): CRYPTO bytes to and from the tls machine, secrets to keys,
 * handshake completion and confirmation; transport parameters both ways (RFC 9000 §7.3, §7.4, §18).
 */

import { bytesEqual } from '@stepwire/wire';
import { cryptoError } from '../errors.ts';
import { FrameType } from '../frames/frame.ts';
import type { QuicTlsEvent } from '../tls/types.ts';
import {
  checkTransportParametersFrom,
  decodeTransportParameters,
  effectiveTransportParameters,
  type TransportParameters,
} from '../transport-parameters.ts';
import { closeWithError } from './close.ts';
import type { ConnectionCore } from './core.ts';
import { TransportError, transportError } from './frames.ts';
import { discardSpace, installInitialKeys, onSecret } from './keys.ts';
import { preferredAddressParameter, startPreferredMigration } from './preferred.ts';
import type { QuicConnectionOptions } from './types.ts';
import { checkRememberedLimits, endEarlyData, startEarlyData } from './zero-rtt.ts';

const SPACE_OF_LEVEL = {
  initial: 'Initial',
  handshake: 'Handshake',
  application: 'ApplicationData',
} as const;

export function onTls(c: ConnectionCore, events: QuicTlsEvent[], now: number): void {
  for (const ev of events) {
    if (!c.isLive) return;
    switch (ev.type) {
      case 'crypto':
        c.spaces[SPACE_OF_LEVEL[ev.level]].cryptoSend.write(ev.data, false);
        break;
      case 'secret':
        onSecret(c, ev.level, ev.direction, ev.secret, ev.cipherSuite, now);
        break;
      case 'handshake-complete':
        onHandshakeComplete(c, ev.alpn, ev.peerTransportParameters, ev.earlyData, now);
        break;
      case 'session-ticket':
        c.events.push({
          type: 'session-ticket',
          ticket: ev.ticket,
          ...(c.peerParams ? { transportParameters: c.peerParams } : {}),
        });
        break;
      case 'error':
        // RFC 9001 §4.8: a TLS alert becomes CRYPTO_ERROR 0x100 + alert.
        closeWithError(c, now, new TransportError(cryptoError(ev.alert), ev.reason, FrameType.CRYPTO));
        break;
    }
  }
}

export function onHandshakeComplete(
  c: ConnectionCore,
  alpn: string | undefined,
  raw: Uint8Array,
  earlyData: 'accepted' | 'rejected' | undefined,
  now: number,
): void {
  let params: TransportParameters;
  try {
    params = decodeTransportParameters(raw);
  } catch (e) {
    closeWithError(
      c,
      now,
      transportError('TRANSPORT_PARAMETER_ERROR', `peer transport parameters: ${(e as Error).message}`),
    );
    return;
  }
  const problem =
    checkTransportParametersFrom(params, c.role === 'client' ? 'server' : 'client') ?? checkCids(c, params);
  if (problem) {
    closeWithError(c, now, transportError('TRANSPORT_PARAMETER_ERROR', problem));
    return;
  }
  const reduced = checkRememberedLimits(c, params, earlyData);
  if (reduced) {
    closeWithError(c, now, transportError('PROTOCOL_VIOLATION', reduced));
    return;
  }
  applyPeerParams(c, params, now);
  c.hs.alpn = alpn;
  c.hs.complete = true;
  endEarlyData(c, earlyData);
  c.transition('handshake-complete', now);
  c.events.push(earlyData ? { type: 'connected', alpn, earlyData } : { type: 'connected', alpn });
  if (c.role === 'server') {
    // RFC 9001 §4.1.2: the server's handshake is confirmed when it completes; it sends HANDSHAKE_DONE.
    c.hs.donePending = true;
    // RFC 9000 §8.1.3: a token for the client's next connection.
    c.tokens.pending = c.tokens.make?.();
    confirmHandshake(c, now);
    if (c.tls.sendSessionTicket) onTls(c, c.tls.sendSessionTicket(now + c.tlsEpoch), now);
  }
  c.cids.issue(c.peerCidLimit);
}

/** RFC 9000 §7.3: the connection IDs both sides used must match what the parameters say. */
export function checkCids(c: ConnectionCore, p: TransportParameters): string | undefined {
  const eq = (a: Uint8Array | undefined, b: Uint8Array | undefined) =>
    a !== undefined && b !== undefined && bytesEqual(a, b);
  if (c.role === 'client') {
    if (!eq(p.initial_source_connection_id, c.cids.firstPeer))
      return 'initial_source_connection_id does not match the server SCID (RFC 9000 §7.3)';
    if (!eq(p.original_destination_connection_id, c.originalDcid))
      return 'original_destination_connection_id mismatch (RFC 9000 §7.3)';
    if (
      c.retrySourceCid
        ? !eq(p.retry_source_connection_id, c.retrySourceCid)
        : p.retry_source_connection_id !== undefined
    )
      return 'retry_source_connection_id mismatch (RFC 9000 §7.3)';
  } else if (!eq(p.initial_source_connection_id, c.clientScidSeen)) {
    return 'initial_source_connection_id does not match the client SCID (RFC 9000 §7.3)';
  }
  return undefined;
}

export function applyPeerParams(c: ConnectionCore, params: TransportParameters, now: number): void {
  c.peerParams = params;
  const p = effectiveTransportParameters(params);
  c.streamSet.applyPeerParams(params);
  c.recovery.maxAckDelay = p.max_ack_delay;
  c.peerAckDelayExponent = p.ack_delay_exponent;
  if (p.stateless_reset_token) c.cids.setFirstPeerResetToken(p.stateless_reset_token);
  // RFC 9000 §5.1.1: the preferred_address connection ID is the server's sequence number 1.
  if (c.role === 'client' && params.preferred_address)
    c.cids.addPreferredPeer(
      params.preferred_address.connectionId,
      params.preferred_address.statelessResetToken,
    );
  // RFC 9000 §10.1: the effective idle timeout is the minimum of both non-zero values.
  const theirs = p.max_idle_timeout;
  const ours = c.config.maxIdleTimeout;
  c.idle.timeout = ours === 0 ? theirs : theirs === 0 ? ours : Math.min(ours, theirs);
  c.restartIdle(now);
}

export function confirmHandshake(c: ConnectionCore, now: number): void {
  c.hs.confirmed = true;
  c.recovery.handshakeConfirmed = true;
  // RFC 9001 §4.9.2: Handshake keys are discarded once the handshake is confirmed.
  discardSpace(c, 'Initial', now);
  discardSpace(c, 'Handshake', now);
  c.trace1(now, 'local', 'handshake confirmed', 'RFC 9001 §4.1.2');
  startPreferredMigration(c, now);
}

/** Our transport parameters (RFC 9000 §18.2), from the transport config. */
export function localTransportParameters(c: ConnectionCore): TransportParameters {
  const ours: TransportParameters = {
    max_idle_timeout: c.config.maxIdleTimeout,
    initial_max_data: c.config.initialMaxData,
    initial_max_stream_data_bidi_local: c.config.initialMaxStreamDataBidiLocal,
    initial_max_stream_data_bidi_remote: c.config.initialMaxStreamDataBidiRemote,
    initial_max_stream_data_uni: c.config.initialMaxStreamDataUni,
    initial_max_streams_bidi: c.config.initialMaxStreamsBidi,
    initial_max_streams_uni: c.config.initialMaxStreamsUni,
    active_connection_id_limit: c.config.activeConnectionIdLimit,
    initial_source_connection_id: c.initialLocalCid,
  };
  if (c.config.maxAckDelay !== 25) ours.max_ack_delay = c.config.maxAckDelay;
  if (c.config.ackDelayExponent !== 3) ours.ack_delay_exponent = c.config.ackDelayExponent;
  // RFC 9221 §3: advertising a non-zero max_datagram_frame_size says we accept DATAGRAM frames.
  if ((c.config.maxDatagramFrameSize ?? 0) > 0) ours.max_datagram_frame_size = c.config.maxDatagramFrameSize;
  // RFC 9000 §18.2: the largest UDP payload we are willing to receive.
  if (c.config.maxUdpPayloadSize !== undefined) ours.max_udp_payload_size = c.config.maxUdpPayloadSize;
  if (c.role === 'server') {
    // RFC 9000 §18.2: server-only parameters; the reset token of our first CID (§10.3).
    ours.original_destination_connection_id = c.originalDcid;
    if (c.retrySourceCid) ours.retry_source_connection_id = c.retrySourceCid;
    ours.stateless_reset_token = c.cids.resetTokenOfLocal(0);
    if (c.config.disableActiveMigration) ours.disable_active_migration = true;
    const pa = c.preferredLocal;
    if (pa && c.serverPreferredAddress)
      ours.preferred_address = preferredAddressParameter(c.serverPreferredAddress, pa.cid, pa.resetToken);
  }
  return ours;
}

/**
 * Installs the Initial keys (RFC 9001 §5.2) and, on a client, starts TLS: its ClientHello
 * goes in the first CRYPTO frame, and with 0-RTT keys the remembered parameters apply.
 */
export function startHandshake(c: ConnectionCore, opts: QuicConnectionOptions): void {
  if (c.role === 'client') {
    installInitialKeys(c, c.cids.remote);
    onTls(c, c.tls.start(opts.now + c.tlsEpoch), opts.now);
    startEarlyData(c, opts.earlyTransportParameters);
  } else if (opts.server) installInitialKeys(c, opts.server.initialDcid);
}
