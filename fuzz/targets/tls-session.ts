/** Stored sessions (session-ticket.ts): the bytes a client keeps to resume across processes; they re-encode exactly. */
import { decodeStoredSession, encodeStoredSession } from '../../packages/tls/src/session-ticket.ts';
import { reencodes } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  reencodes('stored session', data, decodeStoredSession, encodeStoredSession);
}
