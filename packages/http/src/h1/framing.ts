import {
  type HttpErrorKind,
  HttpParseError,
  hasListToken,
  listTokens,
  type RequestHead,
  type ResponseHead,
  sameName,
} from './codec.ts';
import { DEFAULT_LIMITS, type Http1Limits } from './limits.ts';

/**
 * How a message's body is delimited and whether the connection persists after it (RFC 9112
 * §6 and §9.3), as functions of its head: the rules both roles apply to what they receive,
 * and — with `local` — to what they send. The request-smuggling defenses (§6.1, §11.2) are
 * here.
 */

/** How a message body is delimited (RFC 9112 §6.3). */
export type Framing =
  | { kind: 'length'; length: number }
  | { kind: 'chunked' }
  /** Read until the connection closes (responses only, RFC 9112 §6.3 rule 8). */
  | { kind: 'close' };

export const NO_BODY: Framing = { kind: 'length', length: 0 };

export interface RequestInfo {
  framing: Framing;
  /** Connection stays open after this exchange, as far as the request goes (RFC 9112 §9.3). */
  keepAlive: boolean;
  /** Expect: 100-continue (RFC 9110 §10.1.1). */
  expectContinue: boolean;
  /** The protocols of an Upgrade request (RFC 9110 §7.8), lower-cased; undefined when none. */
  upgrade: string[] | undefined;
}

/** A local misuse (sending what the state or framing forbids): a bug in the caller. */
export class LocalProtocolError extends Error {
  override readonly name = 'LocalProtocolError';
}

/** RFC 9112 §6.3 for a request, with the smuggling defenses of §6.1 and §11.2. */
export function requestInfo(
  head: RequestHead,
  limits: Http1Limits = DEFAULT_LIMITS,
  local = false,
): RequestInfo {
  const fields = head.fields;
  const v11 = head.version.major === 1 && head.version.minor >= 1;
  // One pass to see which of the fields below are present at all: most requests carry
  // none but Host, and the lists are then built only for the fields that are there.
  let hosts = 0;
  let hasConnection = false;
  let hasExpect = false;
  let hasUpgrade = false;
  for (const [n] of fields) {
    switch (n.length) {
      case 4:
        if (sameName(n, 'host')) hosts++;
        break;
      case 6:
        if (sameName(n, 'expect')) hasExpect = true;
        break;
      case 7:
        if (sameName(n, 'upgrade')) hasUpgrade = true;
        break;
      case 10:
        if (sameName(n, 'connection')) hasConnection = true;
        break;
    }
  }
  // RFC 9112 §3.2: a client MUST send Host in HTTP/1.1; a server MUST answer 400 to a
  // request without one or with more than one.
  if (v11 && hosts === 0) framingError(local, 'missing-host', 'host', 'HTTP/1.1 request without Host');
  if (hosts > 1) framingError(local, 'duplicate-host', 'host', 'more than one Host field');
  const framing = frameOf(head, true, local, v11, limits);
  // RFC 9112 §9.3: "close" ends the connection after this cycle; HTTP/1.0 persists only
  // with "keep-alive" (§C.2.2)
  const keepAlive =
    hasConnection && hasListToken(fields, 'connection', 'close')
      ? false
      : v11 || (hasConnection && hasListToken(fields, 'connection', 'keep-alive'));
  const expectContinue = v11 && hasExpect && hasListToken(fields, 'expect', '100-continue');
  const upgrade =
    hasUpgrade && head.method !== 'CONNECT' && hasListToken(fields, 'connection', 'upgrade')
      ? listTokens(fields, 'upgrade')
      : undefined;
  return { framing, keepAlive, expectContinue, upgrade };
}

/** RFC 9112 §6.3 for a message of either kind (`local`: one we send). */
export function frameOf(
  head: RequestHead | ResponseHead,
  isRequest: boolean,
  local: boolean,
  v11 = head.version.minor >= 1,
  limits: Http1Limits = DEFAULT_LIMITS,
): Framing {
  const fields = head.fields;
  // one pass for both framing fields (this runs for every message, both ways)
  let te: string[] | undefined;
  let cl: string[] | undefined;
  for (const [n, v] of fields) {
    if (n.length === 14) {
      if (sameName(n, 'content-length')) (cl ??= []).push(v);
    } else if (n.length === 17 && sameName(n, 'transfer-encoding')) (te ??= []).push(v);
  }
  if (te !== undefined) {
    // RFC 9112 §6.1: TE with CL is how requests are smuggled; "a server MAY reject" it and
    // must close after — we reject.
    if (cl !== undefined)
      framingError(local, 'te-and-cl', 'transfer-encoding', 'Transfer-Encoding with Content-Length');
    // RFC 9112 §6.1: a server that receives TE in an HTTP/1.0 request MUST treat it as faulty.
    if (isRequest && !v11)
      framingError(local, 'te-in-http10', 'transfer-encoding', 'Transfer-Encoding in HTTP/1.0');
    const codings = listTokens(fields, 'transfer-encoding');
    const last = codings[codings.length - 1];
    if (last !== 'chunked') {
      // RFC 9112 §6.3 rule 4: on a request, TE without a final chunked is a 400 and close;
      // on a response, the body runs to the close.
      if (isRequest)
        framingError(
          local,
          'te-not-chunked',
          'transfer-encoding',
          `final transfer coding is ${JSON.stringify(last ?? '')}`,
        );
      return { kind: 'close' };
    }
    // chunked applied more than once is invalid (RFC 9112 §7).
    if (codings.indexOf('chunked') !== codings.length - 1)
      framingError(local, 'te-not-chunked', 'transfer-encoding', 'chunked twice');
    // Other codings would have to be undone: a server that knows none answers 501 (RFC 9112 §6.1).
    if (isRequest && codings.length > 1)
      framingError(local, 'te-unsupported', 'transfer-encoding', `unsupported coding ${codings[0]}`);
    return { kind: 'chunked' };
  }
  if (cl !== undefined) {
    // RFC 9110 §8.6: 1*DIGIT; a list of identical values may be taken as one; differing ones are an error.
    const only = cl.length === 1 ? cl[0] : undefined;
    if (only !== undefined && isShortDigits(only)) {
      // the common case, one plain number: the same rule as the loop below, without its splits
      const n = Number(only);
      if (n > limits.maxBodySize)
        framingError(
          local,
          'body-too-large',
          'content-length',
          `body of ${n} bytes over ${limits.maxBodySize}`,
        );
      return { kind: 'length', length: n };
    }
    let length: number | undefined;
    for (const v of cl)
      for (const part of v.split(',')) {
        const s = part.trim();
        if (!/^\d{1,15}$/.test(s))
          framingError(
            local,
            'bad-content-length',
            'content-length',
            `bad Content-Length ${JSON.stringify(s.slice(0, 20))}`,
          );
        const n = Number(s);
        if (length !== undefined && n !== length)
          framingError(local, 'duplicate-content-length', 'content-length', 'Content-Length values differ');
        length = n;
      }
    const n = length ?? 0;
    if (n > limits.maxBodySize)
      framingError(
        local,
        'body-too-large',
        'content-length',
        `body of ${n} bytes over ${limits.maxBodySize}`,
      );
    return { kind: 'length', length: n };
  }
  // RFC 9112 §6.3 rule 6/8: a request without either has no body; a response runs to the close.
  return isRequest ? NO_BODY : { kind: 'close' };
}

/** 1*DIGIT of at most 15 digits (below 2^53), as /^\d{1,15}$/ without the regular expression. */
function isShortDigits(v: string): boolean {
  if (v.length === 0 || v.length > 15) return false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/** RFC 9112 §6.3 for a response to `method`. */
export function responseFraming(
  method: string,
  head: ResponseHead,
  limits: Http1Limits = DEFAULT_LIMITS,
  local = false,
): Framing {
  // Rule 1: HEAD, 1xx, 204, 304 never have content; rule 2: 2xx to CONNECT is a tunnel.
  if (method === 'HEAD' || head.status < 200 || head.status === 204 || head.status === 304) return NO_BODY;
  return frameOf(head, false, local, true, limits);
}

/** A framing error: the peer's (HttpParseError) or, for what we send, ours (LocalProtocolError). */
function framingError(local: boolean, kind: HttpErrorKind, field: string, reason: string): never {
  if (local) throw new LocalProtocolError(reason);
  throw new HttpParseError(kind, field, 0, reason);
}

/** RFC 9112 §9.3: does the connection persist after this response? */
export function responseKeepAlive(head: ResponseHead, framing: Framing): boolean {
  if (hasListToken(head.fields, 'connection', 'close')) return false;
  if (framing.kind === 'close') return false;
  if (head.version.minor === 0) return hasListToken(head.fields, 'connection', 'keep-alive');
  return true;
}
