/**
 * Packet number spaces and their keys (RFC 9001 §4.9, §5), and 1-RTT key update (§6).
 */
import { ParseError } from '@stepwire/wire';
import { KeyPhaseState } from '../crypto/key-update.ts';
import { AEAD_LIMITS, derivePacketKeys, initialKeys, QUIC_SUITE_BY_CODE } from '../crypto/keys.ts';
import { decryptPayload, removeHeaderProtection, type UnmaskedHeader } from '../crypto/protect.ts';
import { SHORT_KEY_PHASE_BIT } from '../packet/header.ts';
import { decodePacketNumber } from '../packet/number.ts';
import type { QuicLevel } from '../tls/types.ts';
import { closeWithError } from './close.ts';
import type { ConnectionCore } from './core.ts';
import { transportError } from './frames.ts';

export function onSecret(
  c: ConnectionCore,
  level: QuicLevel,
  direction: 'read' | 'write',
  secret: Uint8Array,
  cipherSuite: number,
  now: number,
): void {
  const suite = QUIC_SUITE_BY_CODE.get(cipherSuite);
  if (!suite) {
    closeWithError(
      c,
      now,
      transportError('INTERNAL_ERROR', `cipher suite 0x${cipherSuite.toString(16)} not supported`),
    );
    return;
  }
  const keys = derivePacketKeys(c.qc, suite, secret);
  if (level === 'early') {
    // RFC 9001 §4.6.1: the client writes 0-RTT, the server reads it.
    if (c.role === 'client' && direction === 'write') c.early.tx = keys;
    if (c.role === 'server' && direction === 'read') c.early.rx = keys;
    return;
  }
  if (level === 'handshake') {
    if (direction === 'read') c.spaces.Handshake.rx = keys;
    else {
      c.spaces.Handshake.tx = keys;
      c.recovery.hasHandshakeKeys = true;
    }
    return;
  }
  if (direction === 'read') c.keys.pendingRx = keys;
  else c.keys.pendingTx = keys;
  if (c.keys.pendingRx && c.keys.pendingTx) {
    c.keys.oneRtt = new KeyPhaseState(c.qc, c.keys.pendingTx, c.keys.pendingRx);
    c.keys.pendingRx = undefined;
    c.keys.pendingTx = undefined;
  }
}

export function installInitialKeys(c: ConnectionCore, dcid: Uint8Array): void {
  const k = initialKeys(c.qc, dcid);
  c.spaces.Initial.tx = c.role === 'client' ? k.client : k.server;
  c.spaces.Initial.rx = c.role === 'client' ? k.server : k.client;
}

export function discardSpace(c: ConnectionCore, name: 'Initial' | 'Handshake', now: number): void {
  const s = c.spaces[name];
  if (s.discarded) return;
  s.discarded = true;
  s.tx = undefined;
  s.rx = undefined;
  s.probes = 0;
  c.recovery.onPacketNumberSpaceDiscarded(name, now);
  c.trace1(now, 'local', `${name} keys discarded`, 'RFC 9001 §4.9');
}

/**
 * RFC 9001 §6.6: packets that fail authentication count against the integrity limit of
 * the AEAD across all keys; reaching it ends the connection with AEAD_LIMIT_REACHED.
 */
export function onAuthenticationFailure(c: ConnectionCore, now: number): void {
  c.keys.authFailures++;
  const suite = c.keys.oneRtt?.rx.suite ?? 'TLS_AES_128_GCM_SHA256';
  if (c.keys.authFailures >= AEAD_LIMITS[suite].integrity)
    closeWithError(c, now, transportError('AEAD_LIMIT_REACHED', 'integrity limit reached (RFC 9001 §6.6)'));
}

/** After a 1-RTT packet was processed: the peer may have moved to the next phase, which we followed (RFC 9001 §6.2). */
export function checkKeyPhase(c: ConnectionCore, pn: number, keyPhase: boolean, now: number): void {
  const oneRtt = c.keys.oneRtt;
  if (!oneRtt) return;
  if (oneRtt.updates !== c.keys.lastUpdates) noteKeyUpdate(c, now);
  if (keyPhase === oneRtt.keyPhase && (c.keys.firstRecvInPhase === undefined || pn < c.keys.firstRecvInPhase))
    c.keys.firstRecvInPhase = pn;
}

/**
 * RFC 9001 §6.2: "If an endpoint detects a second update before it has sent any packets with
 * updated keys containing an acknowledgment for the packet that initiated the key update, it
 * indicates that its peer has updated keys twice without awaiting confirmation. An endpoint
 * MAY treat such consecutive key updates as a connection error of type KEY_UPDATE_ERROR."
 * The peer's first update needs no such acknowledgement (§6.1 only asks for a confirmed
 * handshake). Called once a 1-RTT packet authenticated, before its frames; false when closed.
 */
export function peerKeyUpdateAllowed(c: ConnectionCore, now: number): boolean {
  const oneRtt = c.keys.oneRtt;
  if (!oneRtt || oneRtt.updates === c.keys.lastUpdates) return true;
  if (c.keys.lastUpdates === 0 || c.keys.ackSentInPhase) return true;
  c.counters.inc('quic.key-update.consecutive');
  closeWithError(
    c,
    now,
    transportError(
      'KEY_UPDATE_ERROR',
      'peer updated keys twice without awaiting our acknowledgement (RFC 9001 §6.2)',
    ),
  );
  return false;
}

/** An ACK frame went out in a 1-RTT packet under the current keys. */
export function onOneRttAckSent(c: ConnectionCore, largestAcknowledged: number): void {
  const first = c.keys.firstRecvInPhase;
  if (first !== undefined && largestAcknowledged >= first) c.keys.ackSentInPhase = true;
}

/**
 * RFC 9001 §6.4: "Packets with higher packet numbers MUST be protected with either the same
 * or newer packet protection keys than packets with lower packet numbers. An endpoint that
 * successfully removes protection with old keys when newer keys were used for packets with
 * lower packet numbers MUST treat this as a connection error of type KEY_UPDATE_ERROR."
 * A packet of the other phase numbered above the first of the current one is tried with
 * the next phase's keys (RFC 9001 §6.3); when that failed, the previous keys tell whether
 * the peer went back to them. The header protection key does not change with updates (§6.1).
 */
export function checkOldKeysAfterUpdate(c: ConnectionCore, packet: Uint8Array, now: number): void {
  const oneRtt = c.keys.oneRtt;
  const first = c.keys.firstRecvInPhase;
  const previous = oneRtt?.previousRx;
  if (!oneRtt || !previous || first === undefined) return;
  let unmasked: UnmaskedHeader;
  try {
    unmasked = removeHeaderProtection(oneRtt.rx.hpMask, packet, 1 + c.localCidLength);
  } catch (e) {
    if (e instanceof ParseError) return;
    throw e;
  }
  if (((unmasked.firstByte & SHORT_KEY_PHASE_BIT) !== 0) === oneRtt.keyPhase) return;
  const pn = decodePacketNumber(
    c.spaces.ApplicationData.largestRecvPn,
    unmasked.truncatedPacketNumber,
    8 * unmasked.packetNumberLength,
  );
  if (pn <= first || !decryptPayload(previous, unmasked, pn, packet)) return;
  c.counters.inc('quic.key-update.old-keys');
  closeWithError(
    c,
    now,
    transportError(
      'KEY_UPDATE_ERROR',
      `pn=${pn} protected with old keys after pn=${first} used new ones (RFC 9001 §6.4)`,
    ),
  );
}

export function noteKeyUpdate(c: ConnectionCore, now: number): void {
  c.keys.packetsInPhase = 0;
  c.keys.firstRecvInPhase = undefined;
  c.keys.ackSentInPhase = false;
  c.keys.lastUpdates = c.keys.oneRtt?.updates ?? 0;
  c.keys.discardDeadline = now + 3 * c.ptoDuration();
  c.trace1(now, 'local', `key update → phase ${c.keys.oneRtt?.keyPhase ? 1 : 0}`, 'RFC 9001 §6');
}

/** RFC 9001 §6.5: the previous phase's keys go about three PTOs after the update. */
export function discardPreviousKeys(c: ConnectionCore): void {
  c.keys.oneRtt?.discardPrevious();
  c.keys.discardDeadline = undefined;
}

/** Starts a 1-RTT key update (RFC 9001 §6.1); false when not allowed yet. */
export function initiateKeyUpdate(c: ConnectionCore, now: number): boolean {
  if (!c.keys.oneRtt?.initiate(c.hs.confirmed)) return false;
  noteKeyUpdate(c, now);
  return true;
}

/**
 * A 1-RTT packet went out under the current keys. RFC 9001 §6.6: "Endpoints MUST initiate a
 * key update before exceeding" the confidentiality limit; a refused update (not yet
 * allowed, §6.1) is tried on the next packet.
 */
export function onOneRttPacketSent(c: ConnectionCore, pn: number, now: number): void {
  const oneRtt = c.keys.oneRtt;
  if (!oneRtt) return;
  oneRtt.onPacketSent(pn);
  c.keys.packetsInPhase++;
  const limit = c.config.keyUpdateInterval ?? AEAD_LIMITS[oneRtt.tx.suite].confidentiality * 0.9;
  if (c.keys.packetsInPhase >= limit && oneRtt.initiate(c.hs.confirmed)) {
    c.keys.packetsInPhase = 0;
    noteKeyUpdate(c, now);
  }
}
