/**
 * Packet number spaces and their keys (RFC 9001 §4.9, §5), and 1-RTT key update (§6).
 */
import { KeyPhaseState } from '../crypto/key-update.ts';
import { AEAD_LIMITS, derivePacketKeys, initialKeys, QUIC_SUITE_BY_CODE } from '../crypto/keys.ts';
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

export function checkKeyPhase(c: ConnectionCore, now: number): void {
  const n = c.keys.oneRtt?.updates ?? 0;
  if (n !== c.keys.lastUpdates) noteKeyUpdate(c, now);
}

export function noteKeyUpdate(c: ConnectionCore, now: number): void {
  c.keys.packetsInPhase = 0;
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
