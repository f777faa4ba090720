/**
 * Sending (RFC 9000 §12.2, §13, §14; RFC 9002 §7): packets built per space within the
 * congestion window and the pacer, coalesced into one datagram, padded where §14.1 and §8.2
 * say, with ACKs piggy-backed, and within the anti-amplification limit (§8.1).
 */
import { joinBytes } from '@stepwire/wire';
import { AEAD_TAG_LENGTH, protectPacket } from '../crypto/protect.ts';
import { encodeFrame, encodeFrames, type Frame } from '../frames/frame.ts';
import { encodePacketHeader, type PacketHeader, QUIC_VERSION_1 } from '../packet/header.ts';
import { encodePacketNumber } from '../packet/number.ts';
import { varintLength } from '../packet/varint.ts';
import type { SentPacket } from '../recovery/loss.ts';
import { closeDatagram } from './close.ts';
import { AMPLIFICATION_FACTOR, type ConnectionCore, MIN_INITIAL_DATAGRAM, type Space } from './core.ts';
import { addPadding, frameLength, type SentItem } from './frames.ts';
import { discardSpace, onOneRttAckSent, onOneRttPacketSent } from './keys.ts';
import { pmtuProbeDatagram, pmtuReady } from './pmtu.ts';
import { preferredProbeDatagram } from './preferred.ts';
import { sendsZeroRtt } from './zero-rtt.ts';

/** RFC 3168 §5: the ECT(0) codepoint. */
const ECT0 = 2;

export function pollTransmit(c: ConnectionCore, now: number): Uint8Array | undefined {
  c.now = now;
  c.transmitRemote = undefined;
  c.transmitLocal = undefined;
  c.transmitEcn = 0;
  c.markingEcn = false;
  if (c.state === 'closed' || c.state === 'draining') return undefined;
  if (c.state === 'closing') return closeDatagram(c, now);
  const probe = probeResponseDatagram(c, now) ?? preferredProbeDatagram(c, now);
  if (probe) return probe;
  // RFC 9002 §7.8: the window grows only while the sender uses it; with no stream data
  // waiting, acknowledgements of what little is in flight say nothing about capacity.
  c.recovery.cc.appOrFlowControlLimited = !c.streamSet.hasSendable && c.dgram.out.length === 0;
  const mtuProbe = pmtuProbe(c, now);
  if (mtuProbe) return mtuProbe;
  let budget = c.pmtu.current;
  const left = amplificationLeft(c, now);
  budget = Math.min(budget, left);
  if (budget < 64) return undefined;
  // RFC 9002 §7.7: while the pacer holds the next datagram back, 1-RTT data waits (ACKs,
  // probes and handshake packets still go); pollTimeout wakes us when it may leave.
  const cc = c.recovery.cc;
  const srtt = c.recovery.rtt.smoothedRtt;
  const paceAt = c.pacing.pacer?.nextSendTime(now, c.pmtu.current, cc.congestionWindow, srtt);
  c.pacing.paced = paceAt !== undefined && paceAt > now;
  c.pacing.deadline = c.pacing.paced && cc.sendAllowance > 0 ? paceAt : undefined;

  const parts: BuiltPacket[] = [];
  let used = 0;
  for (const name of ['Initial', 'Handshake', 'ApplicationData'] as const) {
    const built = buildPacket(c, c.spaces[name], budget - used, now);
    if (built) {
      parts.push(built);
      used += built.size;
    }
  }
  const last = parts[parts.length - 1];
  if (!last) return undefined;
  // RFC 9000 §14.1: a datagram with a client Initial (or a server's ack-eliciting Initial) is at least 1200 bytes.
  // RFC 9000 §8.2.1, §8.2.2: PATH_CHALLENGE and PATH_RESPONSE go in full-size datagrams (within the limit).
  const needsPadding = parts.some(
    (p) =>
      (p.space.name === 'Initial' && (c.role === 'client' || p.ackEliciting)) ||
      p.frames.some((f) => f.type === 'PATH_CHALLENGE' || f.type === 'PATH_RESPONSE'),
  );
  if (needsPadding && used < MIN_INITIAL_DATAGRAM) {
    const pad = Math.min(MIN_INITIAL_DATAGRAM, budget) - used;
    if (pad > 0) {
      addPadding(last.frames, pad);
      last.size += pad;
      last.padded = true;
    }
  }
  // RFC 9000 §13.4.2: ECT(0) on the packets that validate ECN, then on all once it is validated.
  c.markingEcn = c.ecn.shouldMark(now, c.ptoDuration());
  // One packet (the usual 1-RTT case) is the datagram itself: no copy into a new one.
  const datagram = parts.length === 1 ? seal(c, last, now) : joinBytes(parts.map((p) => seal(c, p, now)));
  if (c.markingEcn) {
    c.ecn.onDatagramMarked(now);
    c.transmitEcn = ECT0;
    c.markingEcn = false;
  }
  // RFC 9002 §7.7: every in-flight datagram spends the pacer's bytes, paced or not.
  if (parts.some((p) => p.ackEliciting || p.padded))
    c.pacing.pacer?.onPacketSent(now, datagram.length, cc.congestionWindow, srtt);
  c.bytesSent += datagram.length;
  c.path.bytesSent += datagram.length;
  amplificationLeft(c, now);
  // RFC 9001 §4.9.1: "a client MUST discard Initial keys when it first sends a Handshake packet".
  if (c.role === 'client' && parts.some((p) => p.space.name === 'Handshake')) discardSpace(c, 'Initial', now);
  return datagram;
}

/**
 * RFC 9000 §8.2.2, §9.3.3: a PATH_RESPONSE to a challenge that came from another address
 * goes back there, alone in a 1-RTT packet, padded to 1200 bytes when three times what
 * arrived allows it (§8.2.1, §9.3.1); `transmitRemote` tells the endpoint where. Like every
 * PATH_RESPONSE it is not sent again if lost (§8.2.2).
 */
export function probeResponseDatagram(c: ConnectionCore, now: number): Uint8Array | undefined {
  const r = c.path.probeResponses.shift();
  if (!r || !c.keys.oneRtt) return undefined;
  const space = c.spaces.ApplicationData;
  const header = headerFor(c, space);
  const overhead = headerLength(header) + AEAD_TAG_LENGTH;
  const frames: Frame[] = [{ type: 'PATH_RESPONSE', data: r.data }];
  let size = overhead + frameLength(frames[0] as Frame);
  const target = Math.min(MIN_INITIAL_DATAGRAM, r.budget, c.config.maxDatagramSize);
  if (size < target) {
    addPadding(frames, target - size);
    size = target;
  }
  c.transmitRemote = r.remote;
  c.transmitLocal = r.local;
  c.counters.inc('quic.path.probe-response');
  return seal(
    c,
    { space, header, frames, items: [], size, ackEliciting: true, padded: frames.length > 1 },
    now,
  );
}

/**
 * RFC 9000 §8.1 (and §9.3 for a new path): until the peer's address is validated we send
 * at most three times what we received from it. Recovery must know when that blocks us
 * (RFC 9002 §6.2.2.1: no PTO while nothing can be sent) and when it stops blocking, so its
 * timer is set again at once: a stale "blocked" would leave a lost packet unprobed.
 */
export function amplificationLeft(c: ConnectionCore, now: number): number {
  let left = Number.POSITIVE_INFINITY;
  if (!c.addressValidated) left = AMPLIFICATION_FACTOR * c.bytesReceived - c.bytesSent;
  else if (!c.path.validated) left = AMPLIFICATION_FACTOR * c.path.bytesReceived - c.path.bytesSent;
  const blocked = left < MIN_INITIAL_DATAGRAM;
  if (blocked !== c.recovery.atAntiAmplificationLimit) {
    c.recovery.atAntiAmplificationLimit = blocked;
    c.recovery.setLossDetectionTimer(now);
  }
  return left;
}

export function buildPacket(
  c: ConnectionCore,
  space: Space,
  room: number,
  now: number,
): BuiltPacket | undefined {
  if (space.discarded) return undefined;
  const is1Rtt = space.name === 'ApplicationData';
  // Before 1-RTT keys, a client with 0-RTT keys sends application data in 0-RTT packets (RFC 9001 §4.6.1).
  const zeroRtt = is1Rtt && sendsZeroRtt(c);
  if (is1Rtt ? !c.keys.oneRtt && !zeroRtt : !space.tx) return undefined;
  const header = headerFor(c, space, zeroRtt);
  const overhead = headerLength(header) + AEAD_TAG_LENGTH;
  let left = room - overhead;
  if (left < 32) return undefined;
  const frames: Frame[] = [];
  const items: SentItem[] = [];
  // ACK first, when there is something new to acknowledge (RFC 9000 §13.2).
  // RFC 9000 §12.4: no ACK in a 0-RTT packet. A probe repeats the ACK even with nothing new
  // (RFC 9002 §6.2.4): if the last ACK was lost, the peer learns of its losses from this one
  // instead of waiting out its own, backed-off, PTO.
  const probingNow = space.probes > 0;
  const ack = (space.ack.hasNews || probingNow) && !zeroRtt ? space.ack.buildAck(now) : undefined;
  let ackSize = 0;
  if (ack) {
    ackSize = encodeFrame(ack).length;
    if (ackSize > left) return undefined;
    left -= ackSize;
  }
  // RFC 9002 §7: ack-eliciting packets only within the congestion window (probes excepted, §7.5).
  const probing = space.probes > 0;
  // Initial and Handshake packets are not held back by the window: before the handshake is
  // confirmed no PTO covers 1-RTT packets (RFC 9002 §6.2.1), so unacknowledged 1-RTT bytes
  // filling the window could otherwise keep a lost Finished from ever being sent again.
  const windowed = space.name === 'ApplicationData';
  // RFC 9000 §9.4: a new path starts with a fresh window while packets of the old one may
  // still count as in flight; the PATH_CHALLENGE that validates it must not wait for them
  // (it is a probe, like a PTO's, RFC 9002 §7.5).
  const challenging = windowed && !zeroRtt && c.path.challenge !== undefined && !c.path.challenge.sent;
  const cwndLeft =
    probing || challenging || !windowed
      ? left
      : c.pacing.paced || c.holdForProbe
        ? 0
        : Math.min(left, Math.floor(c.recovery.cc.sendAllowance));
  let eliciting = cwndLeft > 0 ? collectFrames(c, space, cwndLeft, frames, items, zeroRtt) : 0;
  if (probing && eliciting === 0) {
    frames.push({ type: 'PING' });
    items.push({ k: 'ping' });
    eliciting = 1;
  }
  if (ack && (eliciting > 0 || space.ack.ackDue(now))) {
    frames.unshift(ack);
    items.push({ k: 'ack', largest: ack.largestAcknowledged });
    space.ack.onAckSent();
    if (is1Rtt && !zeroRtt) onOneRttAckSent(c, ack.largestAcknowledged);
  }
  if (frames.length === 0) return undefined;
  if (eliciting > 0 && space.probes > 0) space.probes--;
  let size = overhead + frames.reduce((n, f) => n + frameLength(f), 0);
  // RFC 9001 §5.4.2: room for the header protection sample (4 bytes after the packet number start).
  const pnLength = header.packetNumberLength;
  const payloadLength = size - overhead;
  if (pnLength + payloadLength < 4) {
    const pad = 4 - pnLength - payloadLength;
    addPadding(frames, pad);
    size += pad;
  }
  return { space, header, frames, items, size, ackEliciting: eliciting > 0, padded: false, zeroRtt };
}

/** Adds ack-eliciting frames within `room` bytes; returns how many were added. */
export function collectFrames(
  c: ConnectionCore,
  space: Space,
  room: number,
  frames: Frame[],
  items: SentItem[],
  zeroRtt = false,
): number {
  let left = room;
  let count = 0;
  const add = (f: Frame, item: SentItem | undefined): boolean => {
    const n = frameLength(f);
    if (n > left) return false;
    frames.push(f);
    if (item) items.push(item);
    left -= n;
    count++;
    return true;
  };
  if (space.name === 'ApplicationData') {
    if (
      c.tokens.pending &&
      add({ type: 'NEW_TOKEN', token: c.tokens.pending }, { k: 'new-token', token: c.tokens.pending })
    )
      c.tokens.pending = undefined;
    if (c.hs.donePending && c.role === 'server') {
      if (add({ type: 'HANDSHAKE_DONE' }, { k: 'handshake-done' })) c.hs.donePending = false;
    }
    if (c.path.challenge && !c.path.challenge.sent) {
      if (add({ type: 'PATH_CHALLENGE', data: c.path.challenge.data }, { k: 'path-challenge' }))
        c.path.challenge.sent = true;
    }
    while (c.path.responses.length > 0 && !zeroRtt) {
      const data = c.path.responses[0];
      if (!data || !add({ type: 'PATH_RESPONSE', data }, undefined)) break;
      c.path.responses.shift();
    }
    c.streamSet.collectControl(add);
    c.cids.collect(add);
  }
  // CRYPTO data (RFC 9000 §7.5, §19.6).
  for (;;) {
    const max = left - (1 + varintLength(space.cryptoSend.sendOffset + 1) + 2);
    if (max <= 0) break;
    const c = space.cryptoSend.nextChunk(Math.min(max, 1100), Number.POSITIVE_INFINITY);
    if (!c) break;
    add(
      { type: 'CRYPTO', offset: c.offset, data: c.data },
      { k: 'crypto', space: space.name, offset: c.offset, length: c.data.length },
    );
  }
  // RFC 9221 §5: DATAGRAM frames go in 1-RTT packets (and 0-RTT ones under remembered
  // parameters, §3), each once; no record is kept, so a lost one is not sent again (§5.2).
  // They come before stream data: they are the ones that go stale.
  if (space.name === 'ApplicationData' && (c.hs.complete || zeroRtt)) {
    const fits = c.maxDatagramPayload;
    for (;;) {
      const data = c.dgram.out[0];
      // One that can no longer fit any packet (the peer's new connection ID is longer) would
      // hold up every one behind it: it is dropped, as an unreliable datagram may be.
      if (data && data.length > fits) {
        c.dgram.out.shift();
        c.counters.inc('quic.tx.datagram.dropped');
        continue;
      }
      if (!data || !add({ type: 'DATAGRAM', hasLength: true, data }, undefined)) break;
      c.dgram.out.shift();
      c.counters.inc('quic.tx.datagram');
    }
  }
  if (space.name === 'ApplicationData' && (c.hs.complete || zeroRtt)) {
    const r = c.streamSet.collectStreamFrames(left, frames, items);
    count += r.count;
    left -= r.used;
  }
  return count;
}

export function headerFor(c: ConnectionCore, space: Space, zeroRtt = false): PacketHeader {
  const pn = space.nextPn;
  const largestAcked = c.recovery.largestAcked(space.name);
  const { truncated, length } = encodePacketNumber(pn, largestAcked);
  if (space.name === 'ApplicationData' && !zeroRtt) {
    return {
      type: '1-RTT',
      dcid: c.cids.remote,
      spinBit: false,
      reservedBits: 0,
      keyPhase: c.keys.oneRtt?.keyPhase ?? false,
      packetNumberLength: length,
      truncatedPacketNumber: truncated,
    };
  }
  const common = {
    version: QUIC_VERSION_1,
    dcid: c.cids.remote,
    scid: c.initialLocalCid,
    reservedBits: 0,
    packetNumberLength: length,
    truncatedPacketNumber: truncated,
  };
  if (zeroRtt) return { type: '0-RTT', ...common };
  return space.name === 'Initial'
    ? { type: 'Initial', ...common, token: c.role === 'client' ? c.tokens.retry : new Uint8Array(0) }
    : { type: 'Handshake', ...common };
}

export function headerLength(h: PacketHeader): number {
  if (h.type === '1-RTT') return 1 + h.dcid.length + h.packetNumberLength;
  let n = 1 + 4 + 1 + h.dcid.length + 1 + h.scid.length + 2 + h.packetNumberLength;
  if (h.type === 'Initial') n += varintLength(h.token.length) + h.token.length;
  return n;
}

export function seal(c: ConnectionCore, p: BuiltPacket, now: number): Uint8Array {
  const payload = encodeFrames(p.frames);
  const keys = p.zeroRtt ? c.early.tx : p.space.name === 'ApplicationData' ? c.keys.oneRtt?.tx : p.space.tx;
  if (!keys) throw new Error(`no keys to seal a ${p.space.name} packet`);
  // Long headers use a 2-byte Length so the size computed before padding holds.
  const head = encodePacketHeader(
    p.header,
    payload.length + AEAD_TAG_LENGTH,
    p.header.type === '1-RTT' ? undefined : 2,
  );
  const bytes = protectPacket(keys, head, p.space.nextPn, payload);
  const pn = p.space.nextPn++;
  if (p.zeroRtt) c.early.sent.add(pn);
  else if (p.space.name === 'ApplicationData') onOneRttPacketSent(c, pn, now);
  const inFlight = p.ackEliciting || p.padded || p.frames.some((f) => f.type === 'PADDING');
  const sent: SentPacket<SentItem[]> = {
    packetNumber: pn,
    ackEliciting: p.ackEliciting,
    inFlight,
    sentBytes: bytes.length,
    timeSent: now,
    frames: p.items,
  };
  if (c.markingEcn) {
    sent.ecnMarked = true;
    c.ecn.onPacketMarked(p.space.name);
  }
  if (p.pmtuProbe) sent.pmtuProbe = true;
  c.recovery.onPacketSent(p.space.name, sent, now);
  c.counters.inc('quic.tx.packets');
  if (p.ackEliciting) {
    // RFC 9000 §10.1: the first ack-eliciting packet since the last receive restarts the idle timer.
    if (!c.idle.ackElicitingSinceReceive) c.restartIdle(now);
    c.idle.ackElicitingSinceReceive = true;
  }
  if (c.trace.enabled) {
    const scid = p.header.type === '1-RTT' ? new Uint8Array(0) : p.header.scid;
    c.tracePacket(
      now,
      'out',
      p.header.type,
      pn,
      p.header.dcid,
      scid,
      p.frames,
      p.header.type === '1-RTT' && p.header.keyPhase,
    );
  }
  return bytes;
}

/** A packet being built: its frames, what recovery records of them, and its size so far. */
export interface BuiltPacket {
  space: Space;
  header: PacketHeader;
  frames: Frame[];
  items: SentItem[];
  size: number;
  ackEliciting: boolean;
  padded: boolean;
  /** Carried in a 0-RTT packet (the client's early data). */
  zeroRtt?: boolean;
  /** A path MTU probe (RFC 9000 §14.4): its loss is no congestion signal. */
  pmtuProbe?: boolean;
}

/**
 * A path MTU probe when one is due (pmtu.ts), within the congestion window and the pacer,
 * in a datagram of its own; counted like any other datagram sent.
 */
function pmtuProbe(c: ConnectionCore, now: number): Uint8Array | undefined {
  c.holdForProbe = false;
  if (c.pmtu.state === 'disabled' || c.pacing.deadline !== undefined || !pmtuReady(c)) return undefined;
  const cc = c.recovery.cc;
  const size = c.pmtu.probeSize();
  if (size === undefined) return undefined;
  if (cc.sendAllowance < size) {
    // Due, but the window has no room for it yet: new data waits so the window frees enough,
    // or data would always take the room first.
    c.holdForProbe = true;
    return undefined;
  }
  const d = pmtuProbeDatagram(c, size, now);
  if (!d) return undefined;
  c.pacing.pacer?.onPacketSent(now, d.length, cc.congestionWindow, c.recovery.rtt.smoothedRtt);
  c.bytesSent += d.length;
  c.path.bytesSent += d.length;
  return d;
}
