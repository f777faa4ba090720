/**
 * A session ticket (RFC 8446 §4.6.1) as bytes, so a client can keep it across processes
 * (node:tls's 'session' Buffer plays the same part). Our own format, not a wire format of
 * any RFC; version 1:
 *
 *   uint8  version = 1
 *   uint8  flags (bit 0: server_name present, bit 1: alpn present, bit 2: authorized)
 *   uint16 cipher_suite
 *   uint64 received_at (ms since the epoch, on the client's clock)
 *   uint32 lifetime_seconds, uint32 ticket_age_add, uint32 max_early_data_size
 *   opaque ticket<1..2^16-1>, opaque psk<1..255>
 *   opaque server_name<0..255> (if flagged), opaque alpn<1..255> (if flagged)
 *
 * It holds the resumption PSK: whoever has these bytes can resume as this client. Store
 * them as you would a private key.
 */
import { ByteReader, ByteWriter } from '@stepwire/wire';
import { fromLatin1, latin1, readOpaque, writeOpaque } from './codec/common.ts';
import type { SessionTicket } from './connection.ts';

export const STORED_SESSION_VERSION = 1;
const LAYER = 'tls-session';

export interface StoredSession {
  ticket: SessionTicket;
  /** Whether the connection that received the ticket verified the server's certificate. */
  authorized: boolean;
}

export function encodeStoredSession(s: StoredSession): Uint8Array {
  const t = s.ticket;
  const w = new ByteWriter(64 + t.ticket.length);
  w.u8(STORED_SESSION_VERSION);
  w.u8((t.serverName !== undefined ? 1 : 0) | (t.alpn !== undefined ? 2 : 0) | (s.authorized ? 4 : 0));
  w.u16(t.cipherSuite);
  w.u64(BigInt(Math.max(0, Math.round(t.receivedAt))));
  w.u32(t.lifetimeSeconds);
  w.u32(t.ageAdd);
  w.u32(t.maxEarlyDataSize);
  writeOpaque(w, 2, t.ticket, 'ticket');
  writeOpaque(w, 1, t.psk, 'psk');
  if (t.serverName !== undefined) writeOpaque(w, 1, fromLatin1(t.serverName, 'server_name'), 'server_name');
  if (t.alpn !== undefined) writeOpaque(w, 1, fromLatin1(t.alpn, 'alpn'), 'alpn');
  return w.finish();
}

/** Throws ParseError for anything but bytes from encodeStoredSession. */
export function decodeStoredSession(bytes: Uint8Array): StoredSession {
  const r = new ByteReader(bytes, LAYER);
  const version = r.u8('version');
  if (version !== STORED_SESSION_VERSION) r.fail('version', `unknown version ${version}`, 0);
  const flags = r.u8('flags');
  if (flags & ~7) r.fail('flags', `unknown flags 0x${flags.toString(16)}`, 1);
  const cipherSuite = r.u16('cipher_suite');
  const receivedAt = r.u64('received_at');
  if (receivedAt > BigInt(Number.MAX_SAFE_INTEGER)) r.fail('received_at', 'beyond 2^53 ms', 4);
  const lifetimeSeconds = r.u32('lifetime_seconds');
  const ageAdd = r.u32('ticket_age_add');
  const maxEarlyDataSize = r.u32('max_early_data_size');
  const ticket = readOpaque(r, 2, 'ticket', 1);
  const psk = readOpaque(r, 1, 'psk', 1);
  const serverName = flags & 1 ? latin1(readOpaque(r, 1, 'server_name')) : undefined;
  const alpn = flags & 2 ? latin1(readOpaque(r, 1, 'alpn', 1)) : undefined;
  r.end('stored session');
  return {
    ticket: {
      ticket,
      psk,
      cipherSuite,
      receivedAt: Number(receivedAt),
      lifetimeSeconds,
      ageAdd,
      maxEarlyDataSize,
      ...(serverName !== undefined ? { serverName } : {}),
      ...(alpn !== undefined ? { alpn } : {}),
    },
    authorized: (flags & 4) !== 0,
  };
}
