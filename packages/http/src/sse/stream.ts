/**
 * The `text/event-stream` format (WHATWG HTML, "Server-sent events": §9.2.5 parsing an
 * event stream, §9.2.6 interpreting it) as a writer and an incremental parser. Both are
 * plain functions of text: no I/O, so the same code serves our server, node:http, tests.
 */

/** One event as a server writes it. */
export interface ServerSentEvent {
  /** The event type; omitted means "message" at the receiver. No CR or LF. */
  event?: string;
  /** The payload; may span lines (each becomes its own `data:` line). */
  data: string;
  /** Sets the receiver's last event ID (sent back as Last-Event-ID on reconnect). No CR, LF or NUL. */
  id?: string;
  /** Asks the receiver to wait this many ms before reconnecting. */
  retry?: number;
}

/** One event as the receiver dispatches it (§9.2.6 "dispatch the event"). */
export interface ReceivedEvent {
  type: string;
  data: string;
  lastEventId: string;
}

const NEWLINE = /\r\n|\r|\n/;

function checkField(name: string, v: string, nul: boolean): void {
  if (/[\r\n]/.test(v) || (nul && v.includes('\0'))) {
    throw new RangeError(`SSE ${name} may not contain CR, LF${nul ? ' or NUL' : ''}: ${JSON.stringify(v)}`);
  }
}

/**
 * Serialize one event. Lines follow the stream grammar (§9.2.5): `field: value` with one
 * space after the colon (the parser strips exactly one), data split at every line break,
 * and a blank line to dispatch.
 */
export function encodeEvent(e: ServerSentEvent): string {
  let out = '';
  if (e.event !== undefined && e.event !== '') {
    checkField('event', e.event, false);
    out += `event: ${e.event}\n`;
  }
  if (e.id !== undefined) {
    // §9.2.6: an id containing NUL is ignored by the receiver, so we refuse to send one.
    checkField('id', e.id, true);
    out += `id: ${e.id}\n`;
  }
  if (e.retry !== undefined) {
    if (!Number.isInteger(e.retry) || e.retry < 0)
      throw new RangeError(`SSE retry must be a non-negative integer: ${e.retry}`);
    out += `retry: ${e.retry}\n`;
  }
  for (const line of e.data.split(NEWLINE)) out += `data: ${line}\n`;
  return `${out}\n`;
}

/** A comment line (§9.2.5: lines starting with a colon), the usual heartbeat that keeps proxies from timing out. */
export function encodeComment(text = ''): string {
  return text
    .split(NEWLINE)
    .map((l) => `:${l === '' ? '' : ` ${l}`}\n`)
    .join('');
}

export type StreamItem =
  | { type: 'event'; event: ReceivedEvent }
  | { type: 'retry'; ms: number }
  | { type: 'comment'; text: string };

export class EventStreamError extends Error {
  override readonly name = 'EventStreamError';
}

export interface EventStreamParserOptions {
  /** Longest line accepted (a peer could otherwise grow our buffer without end). Default 1 MiB. */
  maxLineLength?: number;
  /** Largest data buffer of one event. Default 16 MiB. */
  maxEventSize?: number;
}

/**
 * The §9.2.6 interpreter, fed bytes in any chunking. State survives between chunks:
 * a multi-byte character, a line, or a CR LF pair may be split anywhere.
 */
export class EventStreamParser {
  /** §9.2.6: decoded as UTF-8, a leading BOM dropped (TextDecoder does both), errors replaced. */
  private readonly decoder = new TextDecoder('utf-8');
  private line = '';
  /** The previous chunk ended in CR: a LF starting the next one belongs to it. */
  private afterCr = false;
  private data = '';
  private hasData = false;
  private eventType = '';
  /** §9.2.6 "last event ID buffer", persists between events. */
  private lastEventIdBuffer = '';
  /** The ID of the last dispatched event: what a reconnect sends as Last-Event-ID. */
  lastEventId = '';
  private readonly maxLine: number;
  private readonly maxEvent: number;

  constructor(o: EventStreamParserOptions = {}) {
    this.maxLine = o.maxLineLength ?? 1024 * 1024;
    this.maxEvent = o.maxEventSize ?? 16 * 1024 * 1024;
  }

  /** Feed bytes (or already decoded text); returns what they complete. Throws EventStreamError past a limit. */
  push(chunk: Uint8Array | string): StreamItem[] {
    const text = typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    const out: StreamItem[] = [];
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      if (c === 10 && i === start && this.afterCr) {
        // The LF of a CR LF pair split across chunks.
        this.afterCr = false;
        start = i + 1;
        continue;
      }
      this.afterCr = false;
      const line = this.line + text.slice(start, i);
      this.line = '';
      this.processLine(line, out);
      if (c === 13) {
        if (i + 1 < text.length) {
          if (text.charCodeAt(i + 1) === 10) i++;
        } else this.afterCr = true;
      }
      start = i + 1;
    }
    if (start < text.length) {
      this.afterCr = false;
      this.line += text.slice(start);
      if (this.line.length > this.maxLine)
        throw new EventStreamError(`line longer than ${this.maxLine} characters`);
    }
    return out;
  }

  /**
   * The stream ended: §9.2.6 says an event not yet dispatched (no blank line) is discarded,
   * and the partial line with it.
   */
  end(): void {
    this.line = '';
    this.afterCr = false;
    this.data = '';
    this.hasData = false;
    this.eventType = '';
  }

  private processLine(line: string, out: StreamItem[]): void {
    // §9.2.6: "If the line is empty (a blank line) — Dispatch the event".
    if (line === '') {
      this.dispatch(out);
      return;
    }
    // "If the line starts with a U+003A COLON character (:) — Ignore the line." (We report it.)
    if (line.charCodeAt(0) === 58) {
      out.push({ type: 'comment', text: line.slice(1).replace(/^ /, '') });
      return;
    }
    const colon = line.indexOf(':');
    let field = line;
    let value = '';
    if (colon >= 0) {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      // "If value starts with a U+0020 SPACE character, remove it from value."
      if (value.charCodeAt(0) === 32) value = value.slice(1);
    }
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.data += `${value}\n`;
        this.hasData = true;
        if (this.data.length > this.maxEvent)
          throw new EventStreamError(`event data past ${this.maxEvent} characters`);
        break;
      case 'id':
        // "If the field value does not contain U+0000 NULL, then set the last event ID buffer."
        if (!value.includes('\0')) this.lastEventIdBuffer = value;
        break;
      case 'retry':
        // "If the field value consists of only ASCII digits, then ... set the event stream's reconnection time."
        if (/^[0-9]+$/.test(value)) out.push({ type: 'retry', ms: Number(value) });
        break;
      default:
      // "Otherwise — The field is ignored."
    }
  }

  private dispatch(out: StreamItem[]): void {
    // §9.2.6 dispatch, step 1: the last event ID is set even when no event follows.
    this.lastEventId = this.lastEventIdBuffer;
    // Step 2: "If the data buffer is an empty string, set the data buffer and the event type buffer to the empty string and return."
    if (!this.hasData) {
      this.eventType = '';
      return;
    }
    // Step 3: "If the data buffer's last character is a U+000A LINE FEED (LF) character, then remove the last character."
    const data = this.data.endsWith('\n') ? this.data.slice(0, -1) : this.data;
    out.push({
      type: 'event',
      event: { type: this.eventType || 'message', data, lastEventId: this.lastEventId },
    });
    this.data = '';
    this.hasData = false;
    this.eventType = '';
  }
}
