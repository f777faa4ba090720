import { bytesEqual } from '@stepwire/wire';
import { FrameType } from '../frames/frame.ts';
import { type AddFrame, type SentItem, transportError } from './frames.ts';

/**
 * Connection IDs (RFC 9000 §5.1): the ones we issue (sequence 0 is our handshake SCID; more
 * go in NEW_CONNECTION_ID frames up to the peer's active_connection_id_limit, §5.1.1) and
 * the ones the peer issued to us, of which one is the DCID we send with. Retiring goes
 * both ways (RETIRE_CONNECTION_ID, Retire Prior To, §5.1.2). Each peer ID may carry a
 * stateless reset token (§10.3).
 */

interface PeerCid {
  seq: number;
  cid: Uint8Array;
  resetToken: Uint8Array | undefined;
}

interface LocalCid {
  seq: number;
  cid: Uint8Array;
  resetToken: Uint8Array;
}

/** Events for the endpoint: connection IDs to route to this connection, or to forget. */
export type EndpointEvent =
  | { type: 'cid-issued'; cid: Uint8Array }
  | { type: 'cid-retired'; cid: Uint8Array };

/** We issue at most this many IDs at once, whatever the peer's limit. */
const MAX_ISSUED_CIDS = 4;

export class ConnectionIds {
  private readonly local = new Map<number, LocalCid>();
  private nextLocalSeq = 0;
  private readonly peer: PeerCid[] = [];
  private current: PeerCid;
  /** Every peer sequence number below this is retired (Retire Prior To only grows, §5.1.2). */
  private retiredBelow = 0;
  private readonly retirePending = new Set<number>();
  private readonly newPending = new Set<number>();
  readonly endpointEvents: EndpointEvent[] = [];

  constructor(
    private readonly cidLength: number,
    private readonly random: (n: number) => Uint8Array,
    private readonly resetTokenFor: (cid: Uint8Array) => Uint8Array,
    /** Our handshake SCID (sequence 0). */
    readonly initialLocal: Uint8Array,
    /** The peer's first ID as we know it (the client's chosen DCID, or the client's SCID). */
    initialPeer: Uint8Array,
    /** Our active_connection_id_limit (§18.2). */
    private readonly activeLimit: number,
  ) {
    this.local.set(0, { seq: 0, cid: initialLocal, resetToken: resetTokenFor(initialLocal) });
    this.nextLocalSeq = 1;
    this.current = { seq: 0, cid: initialPeer, resetToken: undefined };
    this.peer.push(this.current);
  }

  /** The DCID we send with. */
  get remote(): Uint8Array {
    return this.current.cid;
  }
  /** The peer's sequence-0 ID (checked against initial_source_connection_id, §7.3). */
  get firstPeer(): Uint8Array | undefined {
    return this.peer.find((c) => c.seq === 0)?.cid;
  }
  get activeLocal(): Uint8Array[] {
    return [...this.local.values()].map((c) => c.cid);
  }
  resetTokenOfLocal(seq: number): Uint8Array | undefined {
    return this.local.get(seq)?.resetToken;
  }
  /** Stateless reset tokens the peer gave us (§10.3.1). */
  get peerResetTokens(): Uint8Array[] {
    return this.peer.flatMap((c) => (c.resetToken ? [c.resetToken] : []));
  }

  /** §7.2: the client replaces its chosen DCID with the server's SCID (or a Retry's). */
  replaceFirstPeer(cid: Uint8Array): void {
    this.current.cid = cid;
  }
  /** The server's stateless_reset_token parameter belongs to its handshake ID (§18.2). */
  setFirstPeerResetToken(token: Uint8Array): void {
    const first = this.peer.find((c) => c.seq === 0);
    if (first) first.resetToken = token;
  }

  /** §5.1.1: issue IDs up to the peer's limit (capped), announced in NEW_CONNECTION_ID. */
  issue(peerLimit: number): void {
    const limit = Math.min(peerLimit, MAX_ISSUED_CIDS);
    while (this.local.size < limit) {
      const cid = this.random(this.cidLength);
      const seq = this.nextLocalSeq++;
      this.local.set(seq, { seq, cid, resetToken: this.resetTokenFor(cid) });
      this.newPending.add(seq);
      this.endpointEvents.push({ type: 'cid-issued', cid });
    }
  }

  onNewConnectionId(seq: number, retirePriorTo: number, cid: Uint8Array, token: Uint8Array): void {
    // §19.15: an endpoint using zero-length connection IDs cannot be sent this.
    if (this.current.cid.length === 0)
      throw transportError(
        'PROTOCOL_VIOLATION',
        'NEW_CONNECTION_ID while a zero-length ID is in use (RFC 9000 §19.15)',
        FrameType.NEW_CONNECTION_ID,
      );
    const known = this.peer.find((c) => c.seq === seq);
    if (known) {
      if (!bytesEqual(known.cid, cid))
        throw transportError(
          'PROTOCOL_VIOLATION',
          'sequence number reused for another connection ID (RFC 9000 §19.15)',
          FrameType.NEW_CONNECTION_ID,
        );
      return;
    }
    if (seq >= this.retiredBelow) {
      if (seq < retirePriorTo) this.retire(seq);
      else this.peer.push({ seq, cid, resetToken: token });
    }
    // §5.1.2: Retire Prior To retires every ID below it; we move to a live one.
    for (const c of [...this.peer]) if (c.seq < retirePriorTo) this.retire(c.seq);
    this.retiredBelow = Math.max(this.retiredBelow, retirePriorTo);
    // §5.1.2: more IDs waiting to be retired than twice our limit may be treated as an error
    // (a peer could otherwise make us hold RETIRE_CONNECTION_ID frames without bound).
    if (this.retirePending.size > 2 * this.activeLimit)
      throw transportError(
        'CONNECTION_ID_LIMIT_ERROR',
        'too many connection IDs waiting to be retired (RFC 9000 §5.1.2)',
        FrameType.NEW_CONNECTION_ID,
      );
    // §5.1.1: more active IDs than our active_connection_id_limit.
    if (this.peer.length > this.activeLimit)
      throw transportError(
        'CONNECTION_ID_LIMIT_ERROR',
        'more connection IDs than active_connection_id_limit (RFC 9000 §5.1.1)',
        FrameType.NEW_CONNECTION_ID,
      );
  }

  /**
   * Server: the connection ID of our preferred_address (RFC 9000 §18.2), sequence number 1
   * (§5.1.1): routed to us like the others, but announced in the transport parameter
   * rather than in NEW_CONNECTION_ID.
   */
  issuePreferred(): { cid: Uint8Array; resetToken: Uint8Array } {
    const cid = this.random(this.cidLength);
    const seq = this.nextLocalSeq++;
    const c = { seq, cid, resetToken: this.resetTokenFor(cid) };
    this.local.set(seq, c);
    this.endpointEvents.push({ type: 'cid-issued', cid });
    return c;
  }

  /** Client: the server's preferred_address connection ID, sequence number 1 (RFC 9000 §5.1.1). */
  addPreferredPeer(cid: Uint8Array, resetToken: Uint8Array): void {
    if (this.peer.some((c) => c.seq === 1) || this.retiredBelow > 1) return;
    this.peer.push({ seq: 1, cid, resetToken });
  }

  /** Sends with the peer's ID of sequence `seq` from now on, retiring the one in use (§5.1.2). */
  switchTo(seq: number): boolean {
    const next = this.peer.find((c) => c.seq === seq);
    if (!next) return false;
    if (next === this.current) return true;
    const old = this.current;
    this.current = next;
    this.retirePending.add(old.seq);
    this.peer.splice(this.peer.indexOf(old), 1);
    return true;
  }

  /** Whether the peer has issued an ID we have not used yet (RFC 9000 §9.5). */
  get hasUnusedPeer(): boolean {
    return this.peer.some((c) => c !== this.current);
  }

  /**
   * RFC 9000 §9.5: a migrating endpoint sends with a connection ID not used on another
   * path, so the paths cannot be linked; the old ID is retired (§5.1.2), which lets the peer
   * issue another. Returns false when the peer has issued no other ID.
   */
  switchToUnused(): boolean {
    const next = this.peer.find((c) => c !== this.current);
    if (!next) return false;
    const old = this.current;
    this.current = next;
    this.retirePending.add(old.seq);
    this.peer.splice(this.peer.indexOf(old), 1);
    return true;
  }

  private retire(seq: number): void {
    this.retirePending.add(seq);
    const i = this.peer.findIndex((c) => c.seq === seq);
    if (i < 0) return;
    const [c] = this.peer.splice(i, 1);
    if (c === this.current) {
      const next = this.peer[0];
      if (!next)
        throw transportError(
          'PROTOCOL_VIOLATION',
          'every connection ID retired',
          FrameType.NEW_CONNECTION_ID,
        );
      this.current = next;
    }
  }

  /** RETIRE_CONNECTION_ID (§19.16): forget one of ours and issue a replacement. */
  onRetireConnectionId(seq: number, peerLimit: number): void {
    if (seq >= this.nextLocalSeq)
      throw transportError(
        'PROTOCOL_VIOLATION',
        'RETIRE_CONNECTION_ID for an unsent sequence number (RFC 9000 §19.16)',
        FrameType.RETIRE_CONNECTION_ID,
      );
    const c = this.local.get(seq);
    if (!c) return;
    this.local.delete(seq);
    this.newPending.delete(seq);
    this.endpointEvents.push({ type: 'cid-retired', cid: c.cid });
    this.issue(peerLimit);
  }

  collect(add: AddFrame): void {
    for (const seq of [...this.newPending]) {
      const c = this.local.get(seq);
      if (!c) {
        this.newPending.delete(seq);
        continue;
      }
      const f = {
        type: 'NEW_CONNECTION_ID',
        sequenceNumber: seq,
        retirePriorTo: 0,
        connectionId: c.cid,
        statelessResetToken: c.resetToken,
      } as const;
      if (!add(f, { k: 'new-cid', seq })) break;
      this.newPending.delete(seq);
    }
    for (const seq of [...this.retirePending]) {
      if (!add({ type: 'RETIRE_CONNECTION_ID', sequenceNumber: seq }, { k: 'retire-cid', seq })) break;
      this.retirePending.delete(seq);
    }
  }

  onLost(it: SentItem): void {
    if (it.k === 'new-cid' && this.local.has(it.seq)) this.newPending.add(it.seq);
    if (it.k === 'retire-cid') this.retirePending.add(it.seq);
  }
}
