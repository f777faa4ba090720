/**
 * Sessions as bytes (node:tls's 'session' Buffer and `session` option) and the server's ticket
 * key from node:tls's 48-byte ticket keys. A resumed connection reports the `authorized`
 * verdict of the connection that got its ticket (RFC 8446 §2.2), so the verdict travels with it.
 */
import { createHash } from 'node:crypto';
import type { SessionTicket } from '../connection.ts';
import { CertificateError } from '../pki/index.ts';
import { decodeStoredSession, encodeStoredSession } from '../session-ticket.ts';

/** For each ticket our clients received: whether the connection that got it was authorized. */
export const ticketOrigin = new WeakMap<
  SessionTicket,
  { authorized: boolean; authorizationError?: CertificateError }
>();

/**
 * A session from the 'session' event as bytes to keep (a file, a cache), with whether its
 * connection was authorized, so a resumption from it reports `authorized` again. The bytes
 * hold the resumption secret: keep them as private as a key.
 */
export function encodeSession(ticket: SessionTicket): Buffer {
  const origin = ticketOrigin.get(ticket);
  return Buffer.from(encodeStoredSession({ ticket, authorized: origin?.authorized === true }));
}

/** A session back from encodeSession's bytes, for `session` in connect(). Throws ParseError on other bytes. */
export function decodeSession(bytes: Uint8Array): SessionTicket {
  const { ticket, authorized } = decodeStoredSession(bytes);
  ticketOrigin.set(
    ticket,
    authorized
      ? { authorized }
      : {
          authorized,
          authorizationError: new CertificateError(
            'no_certificate',
            'the connection that got this session did not verify the server',
          ),
        },
  );
  return ticket;
}

/** Is `x` a stream rather than an options object? (the low-level connect(transport, options) form) */

/** Our 32-byte ticket sealing key from node:tls's 48 bytes of ticket keys. */
export function ticketKeyFrom(keys: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update('stepwire ticket key').update(keys).digest());
}
