/**
 * QPACK's streams (RFC 9204 §4.2): our encoder and decoder instructions written out after
 * each event, and request streams blocked on dynamic table inserts (§2.2.1) held, within a
 * limit, until the peer's encoder stream unblocks them.
 */
import type { FieldSectionResult } from '../qpack/decoder.ts';
import { streamError } from './close.ts';
import type { H3Core, RequestStream } from './core.ts';
import { H3StreamError } from './errors.ts';
import type { H3StreamItem } from './frames.ts';
import { onRequestItem, onSection } from './request-receive.ts';

export function flushQpack(c: H3Core): void {
  if (c.closed || c.own.encoder === undefined || c.own.decoder === undefined) return;
  const enc = c.encoder.takeEncoderStreamData();
  if (enc.length > 0) c.transport.write(c.own.encoder, enc);
  const dec = c.decoder.takeDecoderStreamData();
  if (dec.length > 0) c.transport.write(c.own.decoder, dec);
}

/**
 * RFC 9204 §2.2.1: nothing after a blocked section is read until it is decoded; what arrives
 * meanwhile waits, within maxBlockedStreamBuffer.
 */
export function holdBehindBlocked(
  c: H3Core,
  blocked: NonNullable<RequestStream['blocked']>,
  item: H3StreamItem | { kind: 'fin' },
): void {
  blocked.queue.push(item);
  blocked.bytes += queuedSize(item);
  if (blocked.bytes > c.limits.maxBlockedStreamBuffer) {
    c.counters.inc('h3.limit.blocked-buffer');
    throw new H3StreamError('H3_EXCESSIVE_LOAD', 'too much data behind a blocked field section');
  }
}

/** Sections the encoder stream unblocked: decode, then read what queued behind them. */
export function onUnblocked(c: H3Core, id: number, result: FieldSectionResult): void {
  const s = c.streams.get(id);
  if (!s?.blocked) return;
  const queue = s.blocked.queue;
  s.blocked = undefined;
  try {
    onSection(c, s, result);
    for (const [i, item] of queue.entries()) {
      if (!c.streams.has(id) || s.discard) return;
      // onRequestItem may have blocked the stream again (TypeScript narrowed it to undefined above).
      const again = s.blocked as RequestStream['blocked'];
      if (again) {
        // Blocked again (on trailers): what is left waits behind that section.
        again.queue.push(...queue.slice(i));
        return;
      }
      onRequestItem(c, s, item);
    }
  } catch (e) {
    if (e instanceof H3StreamError) streamError(c, s, e);
    else throw e;
  }
}

/** What an item held behind a blocked section costs (its bytes, or a small fixed size). */
function queuedSize(item: H3StreamItem | { kind: 'fin' }): number {
  if (item.kind === 'data') return item.data.length;
  if (item.kind !== 'frame') return 16;
  const f = item.frame;
  return 16 + (f.type === 'HEADERS' || f.type === 'PUSH_PROMISE' ? f.fieldSection.length : 0);
}
