import type { H3ErrorName } from './errors.ts';

/**
 * The frame sequence a request stream may carry (RFC 9114 §4.1): on each direction, an
 * HTTP message is HEADERS (after zero or more interim 1xx HEADERS on responses), DATA*,
 * an optional trailing HEADERS, then the end of the stream. Frames of unknown types may
 * appear anywhere (§9) and are not inputs here.
 *
 * Every legal (state, input) pair and every illegal one with its error lives in this one
 * table; the connection looks each frame up here and does nothing else to decide.
 */
export type MessageState = 'HEADERS' | 'DATA' | 'TRAILERS' | 'DONE';

/** 'informational' is a 1xx response section, 'headers' any other HEADERS frame. */
export type MessageInput = 'informational' | 'headers' | 'data' | 'fin';

export type MessageOutcome =
  | { next: MessageState; rfc: string }
  /** A connection error when scope is 'connection', else a stream error (§8). */
  | { error: H3ErrorName; scope: 'connection' | 'stream'; rfc: string };

export const MESSAGE_TRANSITIONS: Readonly<
  Record<MessageState, Readonly<Record<MessageInput, MessageOutcome>>>
> = {
  HEADERS: {
    informational: { next: 'HEADERS', rfc: 'RFC 9114 §4.1: interim responses precede the final one' },
    headers: { next: 'DATA', rfc: 'RFC 9114 §4.1: the header section opens the message' },
    data: {
      error: 'H3_FRAME_UNEXPECTED',
      scope: 'connection',
      rfc: 'RFC 9114 §4.1: DATA before HEADERS',
    },
    fin: {
      error: 'H3_REQUEST_INCOMPLETE',
      scope: 'stream',
      rfc: 'RFC 9114 §4.1.2: the stream ended without a complete message',
    },
  },
  DATA: {
    informational: {
      error: 'H3_MESSAGE_ERROR',
      scope: 'stream',
      rfc: 'RFC 9114 §4.1: interim responses only before the final header section',
    },
    headers: { next: 'TRAILERS', rfc: 'RFC 9114 §4.1: the trailing field section' },
    data: { next: 'DATA', rfc: 'RFC 9114 §4.1: content as DATA frames' },
    fin: { next: 'DONE', rfc: 'RFC 9114 §4.1: the end of the stream ends the message' },
  },
  TRAILERS: {
    informational: {
      error: 'H3_FRAME_UNEXPECTED',
      scope: 'connection',
      rfc: 'RFC 9114 §4.1: no frame but unknown ones after the trailers',
    },
    headers: {
      error: 'H3_FRAME_UNEXPECTED',
      scope: 'connection',
      rfc: 'RFC 9114 §4.1: no frame but unknown ones after the trailers',
    },
    data: {
      error: 'H3_FRAME_UNEXPECTED',
      scope: 'connection',
      rfc: 'RFC 9114 §4.1: DATA after the trailers',
    },
    fin: { next: 'DONE', rfc: 'RFC 9114 §4.1' },
  },
  DONE: {
    informational: { error: 'H3_FRAME_UNEXPECTED', scope: 'connection', rfc: 'RFC 9114 §4.1' },
    headers: { error: 'H3_FRAME_UNEXPECTED', scope: 'connection', rfc: 'RFC 9114 §4.1' },
    data: { error: 'H3_FRAME_UNEXPECTED', scope: 'connection', rfc: 'RFC 9114 §4.1' },
    fin: { error: 'H3_FRAME_UNEXPECTED', scope: 'connection', rfc: 'RFC 9114 §4.1' },
  },
};

/**
 * Which frame types each kind of stream accepts (RFC 9114 §7.2, Table 1 in §11.2.1 as
 * "allowed on"): anything else is a connection error of the given type.
 */
export type StreamKind = 'control' | 'request' | 'push';

export const FRAME_ON_STREAM: Readonly<
  Record<string, Readonly<Record<StreamKind, { allowed: true } | { error: H3ErrorName; rfc: string }>>>
> = {
  DATA: {
    control: { error: 'H3_FRAME_UNEXPECTED', rfc: 'RFC 9114 §7.2.1' },
    request: { allowed: true },
    push: { allowed: true },
  },
  HEADERS: {
    control: { error: 'H3_FRAME_UNEXPECTED', rfc: 'RFC 9114 §7.2.2' },
    request: { allowed: true },
    push: { allowed: true },
  },
  CANCEL_PUSH: {
    control: { allowed: true },
    request: { error: 'H3_FRAME_UNEXPECTED', rfc: 'RFC 9114 §7.2.3' },
    push: { error: 'H3_FRAME_UNEXPECTED', rfc: 'RFC 9114 §7.2.3' },
  },
  SETTINGS: {
    control: { allowed: true },
    request: { error: 'H3_FRAME_UNEXPECTED', rfc: 'RFC 9114 §7.2.4' },
    push: { error: 'H3_FRAME_UNEXPECTED', rfc: 'RFC 9114 §7.2.4' },
  },
  PUSH_PROMISE: {
    control: { error: 'H3_FRAME_UNEXPECTED', rfc: 'RFC 9114 §7.2.5' },
    request: { allowed: true },
    push: { error: 'H3_FRAME_UNEXPECTED', rfc: 'RFC 9114 §7.2.5' },
  },
  GOAWAY: {
    control: { allowed: true },
    request: { error: 'H3_FRAME_UNEXPECTED', rfc: 'RFC 9114 §7.2.6' },
    push: { error: 'H3_FRAME_UNEXPECTED', rfc: 'RFC 9114 §7.2.6' },
  },
  MAX_PUSH_ID: {
    control: { allowed: true },
    request: { error: 'H3_FRAME_UNEXPECTED', rfc: 'RFC 9114 §7.2.7' },
    push: { error: 'H3_FRAME_UNEXPECTED', rfc: 'RFC 9114 §7.2.7' },
  },
};
