/**
 * Acknowledgements and loss (RFC 9000 §13, RFC 9002 §6): ACK frames in, what an acknowledged
 * or lost packet carried, and what the loss detection timer asks for.
 */
import { ackFrameRanges, type Frame, FrameType } from '../frames/frame.ts';
import type { SentPacket, TimeoutAction } from '../recovery/loss.ts';
import type { ConnectionCore, Space } from './core.ts';
import { type SentItem, transportError } from './frames.ts';
import { confirmHandshake } from './handshake.ts';

export function onAck(
  c: ConnectionCore,
  f: Extract<Frame, { type: 'ACK' }>,
  space: Space,
  now: number,
): void {
  const exponent = space.name === 'ApplicationData' ? c.peerAckDelayExponent : 3;
  const outcome = c.recovery.onAckReceived(
    space.name,
    {
      ranges: ackFrameRanges(f),
      ackDelay: (f.ackDelay * 2 ** exponent) / 1000,
      ecnCounts: f.ecnCounts,
      // RFC 9000 §13.4.2.1: the counts are checked before they count as congestion (RFC 9002 §7.1).
      ecnCheck: (newlyAcked, newLargest) =>
        c.ecn.onAck(space.name, {
          newLargest,
          newlyAckedMarked: newlyAcked.reduce((n, p) => n + (p.ecnMarked ? 1 : 0), 0),
          counts: f.ecnCounts,
        }),
    },
    now,
  );
  // RFC 9000 §13.1: acknowledging a packet never sent is a PROTOCOL_VIOLATION.
  if (outcome.error)
    throw transportError('PROTOCOL_VIOLATION', 'ACK of a packet never sent (RFC 9000 §13.1)', FrameType.ACK);
  for (const p of outcome.newlyAcked) {
    if (space.name === 'ApplicationData') c.keys.oneRtt?.onPacketAcked(p.packetNumber);
    if (!p.pmtuProbe) c.pmtu.onAcked(p.sentBytes);
    onAcked(c, p.frames, space);
  }
  // RFC 9001 §4.1.2: a client "MAY consider the handshake to be confirmed when it receives an
  // acknowledgment for a 1-RTT packet" — it need not wait for a HANDSHAKE_DONE that was lost.
  if (
    c.role === 'client' &&
    !c.hs.confirmed &&
    space.name === 'ApplicationData' &&
    outcome.newlyAcked.some((p) => !c.early.sent.has(p.packetNumber))
  )
    confirmHandshake(c, now);
  onPacketsLost(c, outcome.lost);
}

/** Packets declared lost (RFC 9002 §6.1): what they carried goes again; ECN validation hears of the marked ones. */
export function onPacketsLost(c: ConnectionCore, lost: readonly SentPacket<SentItem[]>[]): void {
  if (lost.length === 0) return;
  c.counters.inc('quic.lost', lost.length);
  let marked = 0;
  for (const p of lost) {
    onLost(c, p.frames);
    if (p.ecnMarked) marked++;
  }
  c.ecn.onMarkedLost(marked);
  onPmtuLosses(c, lost, c.now);
}

/** RFC 8899 §4.3: full-size packets lost in a row may mean the path no longer carries them. */
function onPmtuLosses(c: ConnectionCore, lost: readonly SentPacket<SentItem[]>[], now: number): void {
  if (c.pmtu.state === 'disabled') return;
  for (const p of lost)
    if (!p.pmtuProbe && c.pmtu.onLost(p.sentBytes, now)) {
      c.counters.inc('quic.pmtu.black-hole');
      break;
    }
}

export function onAcked(c: ConnectionCore, items: SentItem[], space: Space): void {
  for (const it of items) {
    if (it.k === 'crypto') c.spaces[it.space].cryptoSend.onAcked(it.offset, it.length, false);
    // RFC 9000 §13.2.4: our ACK was received; older packets need not be acknowledged again.
    else if (it.k === 'ack') space.ack.onAckOfAck(it.largest);
    else if (it.k === 'pmtu-probe') onProbeAcked(c, it.id, it.size);
    else c.streamSet.onAcked(it);
  }
}

/** RFC 9000 §13.3: what a lost packet carried is sent again, in new packets. */
export function onLost(c: ConnectionCore, items: SentItem[]): void {
  for (const it of items) {
    switch (it.k) {
      case 'crypto': {
        const s = c.spaces[it.space];
        if (!s.discarded) s.cryptoSend.onLost(it.offset, it.length, false);
        break;
      }
      case 'handshake-done':
        c.hs.donePending = true;
        break;
      case 'path-challenge':
        if (c.path.challenge) c.path.challenge.sent = false;
        break;
      case 'new-token':
        c.tokens.pending = it.token;
        break;
      case 'pmtu-probe':
        // RFC 9000 §14.4: a lost probe is not sent again; the search goes on (pmtu.ts).
        c.pmtu.onProbeLost(it.id);
        break;
      case 'new-cid':
      case 'retire-cid':
        c.cids.onLost(it);
        break;
      default:
        c.streamSet.onLost(it);
    }
  }
}

export function onLossTimeout(c: ConnectionCore, action: TimeoutAction<SentItem[]>): void {
  switch (action.kind) {
    case 'lost':
      c.counters.inc('quic.lost', action.lost.length);
      for (const p of action.lost) onLost(c, p.frames);
      c.ecn.onMarkedLost(action.lost.reduce((n, p) => n + (p.ecnMarked ? 1 : 0), 0));
      onPmtuLosses(c, action.lost, c.now);
      return;
    case 'anti-deadlock':
      c.spaces[action.space].probes = 1;
      return;
    case 'pto': {
      c.counters.inc('quic.pto');
      const space = c.spaces[action.space];
      space.probes = action.packets;
      // RFC 9002 §6.2.4: probes carry data when they can: the oldest unacknowledged data goes again.
      const unacked = c.recovery.unacked(action.space).filter((p) => p.ackEliciting);
      const resend = action.space === 'ApplicationData' ? unacked.slice(0, 2) : unacked;
      for (const p of resend) onLost(c, p.frames);
      return;
    }
    case 'none':
      return;
  }
}

/** An acknowledged path MTU probe: the path carries `size` bytes (RFC 8899 §5.2). */
function onProbeAcked(c: ConnectionCore, id: number, size: number): void {
  const before = c.pmtu.current;
  c.pmtu.onProbeAcked(id);
  if (c.pmtu.current !== before)
    c.trace1(c.now, 'local', `PMTU raised to ${size} bytes`, 'RFC 9000 §14.3, RFC 8899 §5.2');
}
