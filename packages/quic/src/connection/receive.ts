/**
 * Receiving (RFC 9000 §12, RFC 9001 §5): a datagram split into its coalesced packets, each
 * opened with the keys of its space (or held until they arrive, §5.7), checked for
 * duplicates, and its frames handed to dispatch.ts; Retry and Version Negotiation on the client.
 */
import { bytesEqual } from '@stepwire/wire';
import { type DatagramEvent, type OpenedPacketInfo, openDatagram } from '../crypto/datagram.ts';
import { verifyRetry } from '../crypto/retry.ts';
import { isAckEliciting, isProbingPacket } from '../frames/legality.ts';
import { QUIC_VERSION_1, type RetryPacket, splitCoalescedPackets } from '../packet/header.ts';
import type { EcnCodepoint } from '../recovery/ack-tracker.ts';
import { Recovery } from '../recovery/loss.ts';
import { packetSummary } from '../summary.ts';
import { onLost } from './acks.ts';
import { closeWithError, isPeerStatelessReset } from './close.ts';
import { type ConnectionCore, MAX_UNDECRYPTABLE, sameAddress } from './core.ts';
import { onFrame } from './dispatch.ts';
import { TransportError, transportError } from './frames.ts';
import {
  checkKeyPhase,
  checkOldKeysAfterUpdate,
  discardSpace,
  installInitialKeys,
  onAuthenticationFailure,
  peerKeyUpdateAllowed,
} from './keys.ts';
import { afterDatagramFromElsewhere, sameLocal } from './path.ts';
import { amplificationLeft } from './send.ts';
import type { RemoteAddress } from './types.ts';
import { zeroRttAcceptable } from './zero-rtt.ts';

/** RFC 3168 §5: the two ECN bits of the IP header. */
const ECN_CODEPOINTS: readonly EcnCodepoint[] = ['not-ect', 'ect1', 'ect0', 'ce'];

/**
 * One UDP datagram from the peer; `ecn` is the IP ECN field it arrived with when the
 * driver can read it (RFC 9000 §13.4.1: counted per packet number space for ACK frames).
 */
export function handle(
  c: ConnectionCore,
  datagram: Uint8Array,
  now: number,
  remote?: RemoteAddress,
  ecn?: number,
  local?: RemoteAddress,
): void {
  c.now = now;
  c.rxEcn = ECN_CODEPOINTS[(ecn ?? 0) & 3] ?? 'not-ect';
  if (c.state === 'closed' || c.state === 'draining') {
    c.counters.inc('quic.rx.after-close');
    return;
  }
  c.bytesReceived += datagram.length;
  if (c.state === 'closing') {
    // §10.2.1: answer incoming packets with the CONNECTION_CLOSE again, less and less often.
    c.closing.packetsSince++;
    if ((c.closing.packetsSince & (c.closing.packetsSince - 1)) === 0) c.closing.sendPending = true;
    return;
  }
  if (remote && !c.path.remote) c.path.remote = { ...remote };
  if (local && !c.path.local) c.path.local = { ...local };
  // Another path: another peer address, or (a server with more than one) another of ours.
  const fromElsewhere =
    (remote !== undefined && c.path.remote !== undefined && !sameAddress(remote, c.path.remote)) ||
    !sameLocal(local, c.path.local);
  if (!fromElsewhere) c.path.bytesReceived += datagram.length;
  c.path.newestNonProbing = false;
  amplificationLeft(c, now);
  const { packets, error } = splitCoalescedPackets(datagram, c.localCidLength);
  let anyProcessed = false;
  c.path.arrivalElsewhere = fromElsewhere && remote ? { remote, local, size: datagram.length } : undefined;
  try {
    for (const bytes of packets) {
      if (receivePacketBytes(c, bytes, now, true)) anyProcessed = true;
      if (!c.isLive) return;
    }
  } finally {
    c.path.arrivalElsewhere = undefined;
  }
  if (error) c.drop(now, 'quic.rx.malformed', error.message);
  if (fromElsewhere && remote) afterDatagramFromElsewhere(c, remote, datagram.length, now, local);
  // §10.3.1: a datagram nothing in which could be processed may be a Stateless Reset.
  if (!anyProcessed && isPeerStatelessReset(c, datagram, now)) return;
  retryUndecryptable(c, now);
}

/** Tries packets held for lack of keys again once new keys arrived. */
export function retryUndecryptable(c: ConnectionCore, now: number): void {
  for (let round = 0; round < 4 && c.undecryptable.length > 0; round++) {
    const held = c.undecryptable.splice(0);
    let progress = false;
    for (const h of held) {
      c.rxEcn = h.ecn;
      if (receivePacketBytes(c, h.bytes, now, false)) progress = true;
      if (!c.isLive) return;
    }
    if (!progress) break;
  }
}

/** One coalesced packet: open, check, process. Returns whether it was processed. */
export function receivePacketBytes(
  c: ConnectionCore,
  bytes: Uint8Array,
  now: number,
  mayHold: boolean,
): boolean {
  const evs = openDatagram(bytes, {
    shortDcidLength: c.localCidLength,
    keys: {
      Initial: c.spaces.Initial.rx,
      Handshake: c.spaces.Handshake.rx,
      '0-RTT': c.early.rx,
      // RFC 9001 §5.7: "a server MUST NOT process incoming 1-RTT protected packets before
      // the TLS handshake is complete": until then they wait with the undecryptable ones.
      '1-RTT': c.role === 'server' && !c.hs.complete ? undefined : c.keys.oneRtt,
    },
    largestPn: (s) => c.spaces[s].largestRecvPn,
  });
  let processed = false;
  for (const ev of evs) {
    if (onDatagramEvent(c, ev, bytes, now, mayHold)) processed = true;
    if (!c.isLive) break;
  }
  return processed;
}

export function onDatagramEvent(
  c: ConnectionCore,
  ev: DatagramEvent,
  bytes: Uint8Array,
  now: number,
  mayHold: boolean,
): boolean {
  switch (ev.kind) {
    case 'packet':
      try {
        return onPacket(c, ev.packet, now);
      } catch (e) {
        if (e instanceof TransportError) {
          closeWithError(c, now, e);
          return true;
        }
        throw e;
      }
    case 'retry':
      onRetry(c, ev.retry, ev.bytes, now);
      return false;
    case 'version-negotiation':
      // RFC 9000 §6.2: only before any other packet from the server, and only if it does not list our version.
      if (
        c.role === 'client' &&
        !c.receivedFirstServerPacket &&
        !ev.packet.supportedVersions.includes(QUIC_VERSION_1)
      ) {
        c.trace1(
          now,
          'in',
          `VersionNegotiation versions=${ev.packet.supportedVersions.map((v) => v.toString(16)).join(',')}`,
          'RFC 9000 §6.2',
        );
        c.closeError = {
          source: 'version-negotiation',
          application: false,
          code: 0,
          reason: 'no common QUIC version',
        };
        c.transition('version-negotiation', now);
        c.events.push({ type: 'closed', error: c.closeError });
      } else
        c.drop(now, 'quic.rx.version-negotiation-ignored', 'Version Negotiation ignored (RFC 9000 §6.2)');
      return false;
    case 'no-keys':
      if (mayHold && c.undecryptable.length < MAX_UNDECRYPTABLE && !c.spaceOfType(ev.type).discarded) {
        c.undecryptable.push({ bytes: bytes.slice(), ecn: c.rxEcn });
        c.counters.inc('quic.rx.held-for-keys');
      } else c.drop(now, 'quic.rx.no-keys', `${ev.type} packet without keys (RFC 9001 §5.7)`);
      return false;
    case 'dropped':
      c.drop(now, 'quic.rx.dropped', ev.reason);
      if (ev.reason === 'authentication failed') {
        onAuthenticationFailure(c, now);
        if (ev.type === '1-RTT') checkOldKeysAfterUpdate(c, bytes.subarray(ev.offset), now);
      }
      return false;
    case 'violation':
      closeWithError(c, now, transportError(ev.error, ev.reason));
      return true;
  }
}

export function onPacket(c: ConnectionCore, p: OpenedPacketInfo, now: number): boolean {
  const space = c.spaceOfType(p.type);
  if (!zeroRttAcceptable(c, p.type, now)) return false;
  if (space.discarded) {
    c.drop(now, 'quic.rx.discarded-space', `${p.type} packet after its keys were discarded (RFC 9001 §4.9)`);
    return false;
  }
  if (space.ack.isDuplicate(p.packetNumber)) {
    c.drop(now, 'quic.rx.duplicate', `duplicate ${p.type} pn=${p.packetNumber} (RFC 9000 §12.3)`);
    return false;
  }
  if (c.trace.enabled) c.tracePacket(now, 'in', p.type, p.packetNumber, p.dcid, p.scid, p.frames, p.keyPhase);
  c.counters.inc('quic.rx.packets');
  if (p.type === '1-RTT' && !peerKeyUpdateAllowed(c, now)) return true;
  // RFC 9000 §7.2: the client takes the server's SCID from its first Initial as its DCID.
  if (c.role === 'client' && !c.receivedFirstServerPacket && p.type !== '1-RTT') {
    c.receivedFirstServerPacket = true;
    c.cids.replaceFirstPeer(p.scid);
  }
  if (c.role === 'server' && p.type === 'Handshake') {
    // RFC 9000 §8.1: a Handshake packet from the client proves its address.
    c.addressValidated = true;
    // RFC 9001 §4.9.1: "a server MUST discard Initial keys when it first successfully processes a Handshake packet".
    discardSpace(c, 'Initial', now);
  }
  if (p.type === '1-RTT' && p.packetNumber > space.largestRecvPn && !isProbingPacket(p.frames))
    c.path.newestNonProbing = true;
  space.largestRecvPn = Math.max(space.largestRecvPn, p.packetNumber);
  const eliciting = isAckEliciting(p.frames);
  for (const f of p.frames) {
    onFrame(c, f, space, now);
    if (!c.isLive) return true;
  }
  if (!space.discarded) space.ack.onPacketReceived(p.packetNumber, eliciting, now, c.rxEcn);
  if (p.type === '1-RTT') checkKeyPhase(c, p.packetNumber, p.keyPhase, now);
  // RFC 9000 §10.1: any packet processed restarts the idle timer.
  c.idle.ackElicitingSinceReceive = false;
  c.restartIdle(now);
  return true;
}

export function onRetry(c: ConnectionCore, retry: RetryPacket, bytes: Uint8Array, now: number): void {
  // RFC 9000 §17.2.5.2: one Retry, only before any other packet, with a verified tag and a new SCID.
  if (
    c.role !== 'client' ||
    c.receivedFirstServerPacket ||
    c.retrySourceCid !== undefined ||
    retry.retryToken.length === 0 ||
    bytesEqual(retry.scid, c.originalDcid) ||
    !verifyRetry(c.qc.crypto, c.originalDcid, bytes)
  ) {
    c.drop(now, 'quic.rx.retry-refused', 'Retry not acceptable (RFC 9000 §17.2.5.2, RFC 9001 §5.8)');
    return;
  }
  c.trace1(now, 'in', packetSummary(retry), 'RFC 9000 §17.2.5');
  c.retrySourceCid = retry.scid;
  c.tokens.retry = retry.retryToken;
  c.cids.replaceFirstPeer(retry.scid);
  installInitialKeys(c, retry.scid);
  // Everything sent in Initial packets is sent again in new Initials (RFC 9000 §17.2.5.3).
  // Packet numbers continue; recovery starts over: nothing sent so far will be acknowledged.
  const old = c.recovery.unacked('Initial');
  c.recovery = new Recovery({
    isServer: false,
    maxDatagramSize: c.config.maxDatagramSize,
    congestion: c.congestion,
  });
  for (const p of old) onLost(c, p.frames);
}
