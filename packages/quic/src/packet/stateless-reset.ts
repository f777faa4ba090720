import { ParseError } from '@stepwire/wire';
import { FIXED_BIT, HEADER_FORM_BIT } from './header.ts';

/**
 * Stateless Reset (RFC 9000 §10.3): a datagram that looks like a short-header packet,
 * ending in a 16-byte token the peer announced for a connection ID.
 *
 *   Stateless Reset { Fixed Bits (2) = 1, Unpredictable Bits (38..), Stateless Reset Token (128) }
 */
export const STATELESS_RESET_TOKEN_LENGTH = 16;
/** §10.3: the smallest stateless reset: 5 unpredictable bytes (at least 38 bits after the two fixed ones) and the 16-byte token. */
export const MIN_STATELESS_RESET_LENGTH = 21;

/**
 * Builds a Stateless Reset of `length` bytes. `random` supplies the unpredictable bytes
 * (the caller's PRNG or crypto provider); §10.3 asks that it be smaller than the packet
 * that triggered it (§10.3.3), which the caller decides.
 */
export function encodeStatelessReset(
  token: Uint8Array,
  length: number,
  random: (n: number) => Uint8Array,
): Uint8Array {
  if (token.length !== STATELESS_RESET_TOKEN_LENGTH)
    throw new RangeError('a stateless reset token is 16 bytes');
  if (length < MIN_STATELESS_RESET_LENGTH)
    throw new RangeError(`a stateless reset is at least ${MIN_STATELESS_RESET_LENGTH} bytes`);
  const out = new Uint8Array(length);
  out.set(random(length - STATELESS_RESET_TOKEN_LENGTH), 0);
  // Header form 0, fixed bit 1: indistinguishable from a short-header packet (§10.3).
  out[0] = (out[0]! & ~HEADER_FORM_BIT) | FIXED_BIT;
  out.set(token, length - STATELESS_RESET_TOKEN_LENGTH);
  return out;
}

/** The last 16 bytes of a datagram that could be a Stateless Reset (§10.3.1), or a ParseError. */
export function statelessResetTokenOf(datagram: Uint8Array): Uint8Array {
  if (datagram.length < MIN_STATELESS_RESET_LENGTH) {
    throw new ParseError(
      'quic',
      'statelessReset',
      0,
      `${datagram.length} bytes is below the ${MIN_STATELESS_RESET_LENGTH} of a stateless reset`,
    );
  }
  if ((datagram[0]! & HEADER_FORM_BIT) !== 0)
    throw new ParseError('quic', 'headerForm', 0, 'a stateless reset has a short header');
  return datagram.subarray(datagram.length - STATELESS_RESET_TOKEN_LENGTH);
}

/**
 * §10.3.1: a datagram that did not decrypt is a Stateless Reset when its last 16 bytes
 * equal a token the peer issued. The comparison runs over every token without an early
 * exit (the RFC asks for comparisons that do not leak timing).
 */
export function isStatelessReset(datagram: Uint8Array, tokens: readonly Uint8Array[]): boolean {
  if (datagram.length < MIN_STATELESS_RESET_LENGTH || (datagram[0]! & HEADER_FORM_BIT) !== 0) return false;
  const tail = datagram.subarray(datagram.length - STATELESS_RESET_TOKEN_LENGTH);
  let found = false;
  for (const t of tokens) {
    let diff = t.length ^ STATELESS_RESET_TOKEN_LENGTH;
    for (let i = 0; i < STATELESS_RESET_TOKEN_LENGTH; i++) diff |= (t[i] ?? 0) ^ tail[i]!;
    found = found || diff === 0;
  }
  return found;
}
