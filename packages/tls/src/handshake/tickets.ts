/**
 * The server's default session tickets (RFC 8446 §4.6.1): the state resumption needs,
 * sealed with AES-256-GCM under the server's ticket key, so the server keeps nothing per
 * client ("self-encrypted" tickets, as RFC 5077 §4 suggests for TLS 1.2). A ticketCodec
 * option replaces this format (a stateful store, a key shared by several servers).
 */
import { ByteReader, ByteWriter, utf8 } from '@stepwire/wire';
import { fromLatin1, latin1, writeOpaque } from '../codec/common.ts';
import type { CryptoProvider } from '../crypto/provider.ts';

/** What a session ticket must bring back for resumption (RFC 8446 §4.6.1). */
export interface TicketState {
  cipherSuite: number;
  issuedAt: number;
  lifetimeSeconds: number;
  ageAdd: number;
  maxEarlyData: number;
  /** The ALPN protocol of the connection that issued it ('' for none); 0-RTT must reuse it (RFC 8446 §4.2.10). */
  alpn: string;
  psk: Uint8Array;
}

const TICKET_AAD = utf8('stepwire tls13 ticket v1');
const IV_LENGTH = 12;
const TAG_LENGTH = 16;

/** iv || AES-256-GCM(state): suite, issue time, lifetime, age_add, max early data, ALPN, PSK. */
export function sealTicket(crypto: CryptoProvider, key: Uint8Array, t: TicketState): Uint8Array {
  const w = new ByteWriter(64);
  w.u16(t.cipherSuite)
    .u64(BigInt(Math.floor(t.issuedAt)))
    .u32(t.lifetimeSeconds)
    .u32(t.ageAdd)
    .u32(t.maxEarlyData);
  writeOpaque(w, 1, fromLatin1(t.alpn, 'alpn'), 'alpn');
  w.u8(t.psk.length).bytes(t.psk);
  const iv = crypto.randomBytes(IV_LENGTH);
  const sealed = crypto.aead('AES_256_GCM', key).seal(iv, TICKET_AAD, w.finish());
  const out = new Uint8Array(IV_LENGTH + sealed.length);
  out.set(iv, 0);
  out.set(sealed, IV_LENGTH);
  return out;
}

/** The state sealed in `ticket`, or undefined for one we did not seal (or that was altered). */
export function unsealTicket(
  crypto: CryptoProvider,
  key: Uint8Array,
  ticket: Uint8Array,
): TicketState | undefined {
  if (ticket.length < IV_LENGTH + TAG_LENGTH) return undefined;
  const plain = crypto
    .aead('AES_256_GCM', key)
    .open(ticket.subarray(0, IV_LENGTH), TICKET_AAD, ticket.subarray(IV_LENGTH));
  if (!plain) return undefined;
  const r = new ByteReader(plain, 'tls.ticket');
  const cipherSuiteId = r.u16('suite');
  const issuedAt = Number(r.u64('issued'));
  const lifetimeSeconds = r.u32('lifetime');
  const ageAdd = r.u32('age add');
  const maxEarlyData = r.u32('max early data');
  const alpn = latin1(r.copy(r.u8('alpn length'), 'alpn'));
  const psk = r.copy(r.u8('psk length'), 'psk');
  return { cipherSuite: cipherSuiteId, issuedAt, lifetimeSeconds, ageAdd, maxEarlyData, alpn, psk };
}
