/** Stored sessions (session-ticket.ts): the bytes a client keeps to resume across processes. */
import { decodeStoredSession } from '../../packages/tls/src/session-ticket.ts';
import { only } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  only(() => decodeStoredSession(data));
}
