import { nextKeyPhase, type PacketKeys, type QuicCrypto } from './keys.ts';

/**
 * 1-RTT key phases (RFC 9001 §6). Holds the current keys of both directions, the next
 * phase's keys computed ahead of time (§6.3: so that trying them costs no more than
 * trying the current keys, and their timing reveals nothing), and the previous phase's
 * receive keys for packets reordered across an update (§6.5).
 *
 * The Key Phase bit of each short header says which phase protected it; a packet whose
 * bit differs from ours is either a late packet of the previous phase (its packet number
 * is below the first one received in the current phase) or the peer's first packet of
 * the next phase (§6.2, §6.3).
 */
export type KeyChoice = 'current' | 'next' | 'previous';

export class KeyPhaseState {
  /** The Key Phase bit of the current phase (starts 0, §6). */
  keyPhase = false;
  tx: PacketKeys;
  rx: PacketKeys;
  private nextTx: PacketKeys;
  private nextRx: PacketKeys;
  /** Receive keys of the previous phase, until discardPrevious() (§6.5: about three PTOs later). */
  previousRx: PacketKeys | undefined = undefined;
  /** Lowest packet number received in the current phase (undefined until one arrives). */
  private firstReceivedInPhase: number | undefined = undefined;
  /** Lowest packet number we sent in the current phase, and whether one such packet was acknowledged (§6.1). */
  private firstSentInPhase: number | undefined = undefined;
  private ackedInPhase = false;
  /** Counted for traces and tests. */
  updates = 0;

  constructor(
    private readonly qc: QuicCrypto,
    tx: PacketKeys,
    rx: PacketKeys,
  ) {
    this.tx = tx;
    this.rx = rx;
    this.nextTx = nextKeyPhase(qc, tx);
    this.nextRx = nextKeyPhase(qc, rx);
  }

  /** Call for every 1-RTT packet we send: it carries `keyPhase` and is protected with `tx`. */
  onPacketSent(pn: number): void {
    if (this.firstSentInPhase === undefined) this.firstSentInPhase = pn;
  }

  /** Call when the peer acknowledges one of our 1-RTT packets. */
  onPacketAcked(pn: number): void {
    if (this.firstSentInPhase !== undefined && pn >= this.firstSentInPhase) this.ackedInPhase = true;
  }

  /**
   * §6.1: whether we may start an update now. "An endpoint MUST NOT initiate a key update
   * prior to having confirmed the handshake" and "MUST NOT initiate a subsequent key
   * update unless it has received an acknowledgment for a packet that was sent protected
   * with keys from the current key phase".
   */
  canInitiate(handshakeConfirmed: boolean): boolean {
    return handshakeConfirmed && (this.updates === 0 || this.ackedInPhase);
  }

  /** §6.1: start a key update: send (and expect) the next phase from now on. */
  initiate(handshakeConfirmed: boolean): boolean {
    if (!this.canInitiate(handshakeConfirmed)) return false;
    this.rotate();
    return true;
  }

  /** Keys to try on a received packet with this Key Phase bit and (decoded) packet number. */
  keysFor(keyPhaseBit: boolean, pn: number): { keys: PacketKeys; choice: KeyChoice } {
    if (keyPhaseBit === this.keyPhase) return { keys: this.rx, choice: 'current' };
    // Before any packet of the current phase arrived (we just initiated the update), the other
    // bit is the peer still in the previous phase: it cannot be a phase ahead of us before it
    // has followed us into this one (§6.1, §6.5).
    if (this.previousRx && (this.firstReceivedInPhase === undefined || pn < this.firstReceivedInPhase)) {
      return { keys: this.previousRx, choice: 'previous' };
    }
    return { keys: this.nextRx, choice: 'next' };
  }

  /**
   * Call once the packet authenticated with the keys `keysFor` chose. A packet of the next
   * phase means the peer updated: we follow, so our packets, acknowledgements included,
   * use the new phase from now on (§6.2).
   */
  onPacketAuthenticated(choice: KeyChoice, pn: number): void {
    if (choice === 'next') this.rotate();
    if (choice === 'previous') return;
    if (this.firstReceivedInPhase === undefined || pn < this.firstReceivedInPhase)
      this.firstReceivedInPhase = pn;
  }

  /** §6.5: after about three PTOs the previous phase's keys are dropped. */
  discardPrevious(): void {
    this.previousRx = undefined;
  }

  private rotate(): void {
    this.previousRx = this.rx;
    this.tx = this.nextTx;
    this.rx = this.nextRx;
    this.nextTx = nextKeyPhase(this.qc, this.tx);
    this.nextRx = nextKeyPhase(this.qc, this.rx);
    this.keyPhase = !this.keyPhase;
    this.firstReceivedInPhase = undefined;
    this.firstSentInPhase = undefined;
    this.ackedInPhase = false;
    this.updates++;
  }
}
