/**
 * Paths (RFC 9000 §8.2, §9): path validation, the peer's NAT rebinding or migration, and
 * the client's own migration.
 */

import { bytesEqual } from '@stepwire/wire';
import { RttEstimator } from '../recovery/rtt.ts';
import { AMPLIFICATION_FACTOR, type ConnectionCore, MAX_PATH_RESPONSES, sameAddress } from './core.ts';
import { onPreferredResponse } from './preferred.ts';
import type { RemoteAddress } from './types.ts';

/**
 * RFC 9000 §9.3: the peer moved (a NAT rebinding, or a migration): send there from now on,
 * validate the new address with PATH_CHALLENGE (§8.2), and until it answers send no more
 * than three times what arrived from it. The congestion state is kept: right for a NAT
 * rebinding (§9.4); a move to another network would reset it, which is left out.
 */
export function onPeerMoved(
  c: ConnectionCore,
  remote: RemoteAddress,
  firstDatagram: number,
  now: number,
  local?: RemoteAddress,
): void {
  c.path.previous = c.path.validated ? c.path.remote : c.path.previous;
  c.path.remote = { ...remote };
  // Our side of the path moves too when the peer now reaches another of our addresses (§9.6.2).
  if (local) c.path.local = { ...local };
  c.path.validated = false;
  c.path.bytesReceived = firstDatagram;
  c.path.bytesSent = 0;
  c.path.challenge = { data: c.random(8), sent: false, deadline: now + 3 * c.ptoDuration() };
  // RFC 9000 §13.4.2, §14.3: ECN and the path MTU are found again on each new path.
  c.ecn.onNewPath();
  c.pmtu.onNewPath();
  c.counters.inc('quic.path.migrated');
  c.trace1(now, 'local', `peer moved to ${remote.address}:${remote.port}: validating`, 'RFC 9000 §9.3');
}

/**
 * RFC 9002 §9.4: a new path resets the congestion controller and the RTT estimate; RFC 9000
 * §13.4.2 and §14.3: ECN and the path MTU are found again. The controller and estimator
 * objects stay (Recovery holds them); their state starts over, except the bytes still in
 * flight, which acknowledgements and losses will still remove.
 */
export function resetCongestionForNewPath(c: ConnectionCore, now: number): void {
  const cc = c.recovery.cc;
  const inFlight = cc.bytesInFlight;
  const Fresh = cc.constructor as new (mds: number) => typeof cc;
  Object.assign(cc, new Fresh(c.config.maxDatagramSize));
  cc.bytesInFlight = inFlight;
  Object.assign(c.recovery.rtt, new RttEstimator());
  c.recovery.setLossDetectionTimer(now);
  c.ecn.onNewPath();
  c.pmtu.onNewPath();
}

/**
 * Client: we are moving to a new local address (RFC 9000 §9.2) — the driver sends from a
 * new socket from now on. We switch to a connection ID not used before (§9.5) and probe
 * the new path with PATH_CHALLENGE (§8.2.1); the server validates our address in turn
 * (§9.3). A new path starts with fresh congestion control and RTT (§9.4, RFC 9002 §9.4)
 * unless only the port changed, when the path is likely the same. Throws before the
 * handshake is confirmed (§9: migration MUST NOT be initiated earlier), when the server
 * sent disable_active_migration (§18.2), or when it has issued no unused connection ID.
 */
export function migrate(c: ConnectionCore, now: number, opts: { portOnly?: boolean } = {}): void {
  c.assertLive();
  if (c.role !== 'client') throw new Error('only a client initiates migration (RFC 9000 §9)');
  if (!c.hs.confirmed) throw new Error('migration before the handshake is confirmed (RFC 9000 §9)');
  if (c.peerParams?.disable_active_migration)
    throw new Error('the server sent disable_active_migration (RFC 9000 §18.2)');
  // §9.5: an endpoint MUST NOT reuse a connection ID on a new path; with a zero-length one
  // there is nothing to switch to and the server routes by address alone.
  if (c.cids.remote.length > 0 && !c.cids.switchToUnused())
    throw new Error('no unused connection ID from the peer to migrate with (RFC 9000 §9.5)');
  c.path.challenge = { data: c.random(8), sent: false, deadline: now + 3 * c.ptoDuration() };
  if (!opts.portOnly) resetCongestionForNewPath(c, now);
  c.counters.inc('quic.path.client-migrated');
  c.trace1(
    now,
    'local',
    `migrating to a new local address${opts.portOnly ? ' (port only)' : ''}: new connection ID, PATH_CHALLENGE`,
    'RFC 9000 §9.2',
  );
}

/**
 * After a datagram from an address other than the one we send to (RFC 9000 §9.3): the
 * newest non-probing packet from there moves the path (a server follows a client that
 * moved once the handshake is confirmed).
 */
export function afterDatagramFromElsewhere(
  c: ConnectionCore,
  remote: RemoteAddress,
  size: number,
  now: number,
  local?: RemoteAddress,
): void {
  if (!c.path.newestNonProbing || c.role !== 'server' || !c.hs.confirmed) return;
  onPeerMoved(c, remote, size, now, local);
  // Challenges from there are now answered on the current path, with the rest.
  for (let i = c.path.probeResponses.length - 1; i >= 0; i--) {
    const r = c.path.probeResponses[i];
    if (r && sameAddress(r.remote, remote) && sameLocal(r.local, local)) {
      c.path.probeResponses.splice(i, 1);
      if (c.path.responses.length < MAX_PATH_RESPONSES) c.path.responses.push(r.data);
    }
  }
}

/** RFC 9000 §8.2.2: echo the data in a PATH_RESPONSE, on the path the challenge came on. */
export function onPathChallenge(c: ConnectionCore, data: Uint8Array): void {
  const elsewhere = c.path.arrivalElsewhere;
  if (elsewhere) {
    if (c.path.probeResponses.length < MAX_PATH_RESPONSES)
      c.path.probeResponses.push({
        data,
        remote: elsewhere.remote,
        local: elsewhere.local,
        // §8.1, §9.3.1: an unvalidated path gets at most three times what arrived on it.
        budget: AMPLIFICATION_FACTOR * elsewhere.size,
      });
  } else if (c.path.responses.length < MAX_PATH_RESPONSES) c.path.responses.push(data);
}

/** RFC 9000 §8.2.3: a response echoing our challenge validates the new path. */
export function onPathResponse(c: ConnectionCore, data: Uint8Array, now: number): void {
  if (onPreferredResponse(c, data, now)) return;
  if (c.path.challenge && bytesEqual(data, c.path.challenge.data)) {
    c.path.challenge = undefined;
    c.path.validated = true;
    c.path.previous = undefined;
    c.trace1(now, 'local', 'path validated', 'RFC 9000 §8.2.3');
  }
}

/** RFC 9000 §9.3.2, §8.2.4: validation failed; go back to the last validated path. */
export function onPathValidationTimeout(c: ConnectionCore, now: number): void {
  c.path.challenge = undefined;
  c.path.validated = true;
  if (c.path.previous) c.path.remote = c.path.previous;
  c.path.previous = undefined;
  c.counters.inc('quic.path.validation-failed');
  c.trace1(now, 'local', 'path validation failed: back to the previous address', 'RFC 9000 §9.3.2');
}

/** Two local addresses name the same one, an unknown one matching any. */
export function sameLocal(a: RemoteAddress | undefined, b: RemoteAddress | undefined): boolean {
  return a === undefined || b === undefined || sameAddress(a, b);
}
