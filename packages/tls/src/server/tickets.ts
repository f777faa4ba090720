/**
 * The server's session tickets (RFC 8446 §4.6.1): each NewSessionTicket carries, sealed,
 * the state a later handshake needs to resume (handshake/tickets.ts, or the application's
 * ticketCodec), and a ticket offered back is opened and checked for age before its PSK is
 * tried (§4.2.11).
 */
import { ByteWriter } from '@stepwire/wire';
import type { HandshakeMessage } from '../codec/handshake.ts';
import type { CryptoProvider } from '../crypto/provider.ts';
import type { ServerAgreement } from '../handshake/server-states.ts';
import { sealTicket, type TicketState, unsealTicket } from '../handshake/tickets.ts';
import { resumptionPsk } from '../keyschedule.ts';
import type { TlsServerOptions } from './options.ts';

/** RFC 8446 §4.6.1: servers MUST NOT use any value greater than 604800 seconds (7 days). */
const MAX_TICKET_LIFETIME = 604800;

export class ServerTickets {
  private readonly key: Uint8Array;
  /** Makes each ticket_nonce unique within the connection (RFC 8446 §4.6.1). */
  private counter = 0;

  constructor(
    private readonly crypto: CryptoProvider,
    private readonly options: TlsServerOptions,
  ) {
    this.key = options.ticketKey ?? crypto.randomBytes(32);
    if (this.key.length !== 32) throw new RangeError('ticketKey must be 32 bytes');
  }

  /** NewSessionTicket whose ticket is the sealed state we need to resume from `rms`. */
  issue(agreement: ServerAgreement, rms: Uint8Array, now: number, quic: boolean): HandshakeMessage {
    const o = this.options;
    const s = agreement.suite;
    const nonce = new ByteWriter(8)
      .u32(0)
      .u32(this.counter++)
      .finish()
      .slice();
    const lifetime = Math.min(o.ticketLifetimeSeconds ?? 7200, MAX_TICKET_LIFETIME);
    const psk = resumptionPsk(this.crypto, s.hash, rms, nonce);
    const ageAdd = new DataView(this.crypto.randomBytes(4).buffer).getUint32(0);
    const allowed = o.antiReplay ? (o.maxEarlyData ?? 0) : 0;
    // RFC 9001 §4.6.1: a QUIC ticket that allows 0-RTT says 0xffffffff; QUIC's flow control limits the amount.
    const maxEarlyData = quic && allowed > 0 ? 0xffffffff : allowed;
    return {
      msgType: 'new_session_ticket',
      ticketLifetime: lifetime,
      ticketAgeAdd: ageAdd,
      ticketNonce: nonce,
      ticket: this.seal({
        cipherSuite: s.id,
        issuedAt: now,
        lifetimeSeconds: lifetime,
        ageAdd,
        maxEarlyData,
        alpn: agreement.alpn ?? '',
        psk,
      }),
      extensions: maxEarlyData > 0 ? [{ type: 'early_data', maxEarlyDataSize: maxEarlyData }] : [],
    };
  }

  /**
   * The state in a ticket we issued and that is still valid; 'unreadable' for one we cannot
   * open (RFC 8446 §4.2.11), 'expired' past its lifetime (§4.6.1). Either way its PSK is just
   * not used.
   */
  open(ticket: Uint8Array, now: number): TicketState | 'unreadable' | 'expired' {
    const state = this.options.ticketCodec
      ? this.options.ticketCodec.open(ticket)
      : unsealTicket(this.crypto, this.key, ticket);
    if (!state) return 'unreadable';
    if (now - state.issuedAt > state.lifetimeSeconds * 1000 || now < state.issuedAt) return 'expired';
    return state;
  }

  private seal(t: TicketState): Uint8Array {
    return this.options.ticketCodec ? this.options.ticketCodec.seal(t) : sealTicket(this.crypto, this.key, t);
  }
}
