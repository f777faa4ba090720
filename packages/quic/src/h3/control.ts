/**
 * The control streams (RFC 9114 §6.2.1): ours opened with SETTINGS first (and our QPACK
 * streams beside it), the peer's read for SETTINGS (§7.2.4), GOAWAY (§5.2, §7.2.6) and the
 * push frames we never allow; graceful shutdown with GOAWAY.
 */
import { QpackEncoder } from '../qpack/encoder.ts';
import { close, retire } from './close.ts';
import {
  type H3Core,
  isClientBidi,
  onUnknownFrame,
  traceFrame,
  writeFrame,
  writeStreamType,
} from './core.ts';
import { H3ConnectionError, H3ErrorCode } from './errors.ts';
import {
  type H3Setting,
  H3SettingId,
  type H3StreamItem,
  H3StreamType,
  HTTP2_ONLY_SETTING_IDS,
} from './frames.ts';
import { reject } from './request-receive.ts';
import { FRAME_ON_STREAM } from './state.ts';

/**
 * RFC 9114 §5.2: the first GOAWAY of a two-phase shutdown names an ID above any the client
 * could have used. The RFC suggests 2^62-4; IDs here are exact JavaScript numbers, and
 * 2^53-4 (a client bidirectional ID too) is beyond any stream a connection will open.
 */
export const H3_GOAWAY_MAX_ID = 2 ** 53 - 4;

/** Opens the control stream with our SETTINGS and the QPACK streams (RFC 9114 §6.2). */
export function start(c: H3Core): void {
  if (c.own.control !== undefined) return;
  c.own.control = c.transport.openStream('uni');
  const settings: H3Setting[] = [
    { id: H3SettingId.QPACK_MAX_TABLE_CAPACITY, value: c.settings.qpackMaxTableCapacity },
    { id: H3SettingId.QPACK_BLOCKED_STREAMS, value: c.settings.qpackBlockedStreams },
    { id: H3SettingId.MAX_FIELD_SECTION_SIZE, value: c.settings.maxFieldSectionSize },
  ];
  if (c.settings.enableConnectProtocol) settings.push({ id: H3SettingId.ENABLE_CONNECT_PROTOCOL, value: 1 });
  // §7.2.4.1: reserved settings exercise the requirement that unknown ones are ignored.
  if (c.grease) settings.push({ id: 0x1f * 7 + 0x21, value: 0x5157 });
  // §6.2.1: SETTINGS is the first frame of the control stream.
  writeStreamType(c, c.own.control, H3StreamType.CONTROL);
  writeFrame(c, c.own.control, { type: 'SETTINGS', settings });
  if (c.grease)
    writeFrame(c, c.own.control, {
      type: 'unknown',
      frameType: 0x1f * 3 + 0x21,
      payload: new Uint8Array([0x68, 0x33]),
    });
  c.own.encoder = c.transport.openStream('uni');
  writeStreamType(c, c.own.encoder, H3StreamType.QPACK_ENCODER);
  c.own.decoder = c.transport.openStream('uni');
  writeStreamType(c, c.own.decoder, H3StreamType.QPACK_DECODER);
  c.events.push({ type: 'ready' });
}

/**
 * Graceful shutdown (RFC 9114 §5.2): a server names the first request it will not
 * process, a client the first push (we allow none: 0). The connection closes with
 * H3_NO_ERROR once the requests in flight are done. `id` overrides the computed ID
 * (H3_GOAWAY_MAX_ID for the first step of a two-phase shutdown).
 */
export function shutdown(c: H3Core, id?: number): void {
  if (c.closed || c.own.control === undefined) return;
  const goaway = id ?? (c.role === 'server' ? c.largestAccepted + 4 : 0);
  // §5.2: an endpoint MUST NOT increase the ID in a later GOAWAY.
  if (c.goawaySent !== undefined && goaway > c.goawaySent) return;
  c.goawaySent = goaway;
  writeFrame(c, c.own.control, { type: 'GOAWAY', id: goaway });
  // §5.2: requests the server will not process are rejected.
  if (c.role === 'server')
    for (const s of [...c.streams.values()]) if (s.id >= goaway) reject(c, s.id, 'goaway');
  maybeFinishShutdown(c);
}

export function onControlItem(
  c: H3Core,
  id: number,
  u: { kind: 'control'; settingsSeen: boolean },
  item: H3StreamItem,
): void {
  const typeName =
    item.kind === 'data'
      ? 'DATA'
      : item.kind === 'skipped'
        ? `0x${item.frameType.toString(16)}`
        : item.frame.type;
  // §6.2.1: "If the first frame of the control stream is any other frame type, this MUST
  // be treated as a connection error of type H3_MISSING_SETTINGS."
  if (!u.settingsSeen && !(item.kind === 'frame' && item.frame.type === 'SETTINGS'))
    throw new H3ConnectionError('H3_MISSING_SETTINGS', `${typeName} before SETTINGS on the control stream`);
  if (item.kind === 'data')
    throw new H3ConnectionError('H3_FRAME_UNEXPECTED', 'DATA on the control stream (RFC 9114 §7.2.1)');
  if (item.kind === 'skipped') {
    onUnknownFrame(c, item.frameType);
    return;
  }
  const f = item.frame;
  if (c.trace.enabled) traceFrame(c, 'in', id, f);
  if (f.type === 'unknown') return;
  const rule = FRAME_ON_STREAM[f.type]?.control;
  if (rule && 'error' in rule)
    throw new H3ConnectionError(rule.error, `${f.type} on the control stream (${rule.rfc})`);
  switch (f.type) {
    case 'SETTINGS':
      // §7.2.4: a second SETTINGS is H3_FRAME_UNEXPECTED.
      if (u.settingsSeen) throw new H3ConnectionError('H3_FRAME_UNEXPECTED', 'a second SETTINGS frame');
      u.settingsSeen = true;
      onSettings(c, f.settings);
      return;
    case 'GOAWAY':
      onGoaway(c, f.id);
      return;
    case 'MAX_PUSH_ID':
      // §7.2.7: only a client sends MAX_PUSH_ID.
      if (c.role === 'client')
        throw new H3ConnectionError('H3_FRAME_UNEXPECTED', 'MAX_PUSH_ID from a server');
      return;
    case 'CANCEL_PUSH':
      // §7.2.3: we promised nothing (server) and allowed nothing (client): any push ID is unknown.
      throw new H3ConnectionError('H3_ID_ERROR', `CANCEL_PUSH for push ${f.pushId}, which does not exist`);
    default:
      return;
  }
}

export function onSettings(c: H3Core, settings: H3Setting[]): void {
  const seen = new Map<number, number>();
  for (const { id, value } of settings) {
    // §7.2.4: the same identifier twice is H3_SETTINGS_ERROR.
    if (seen.has(id))
      throw new H3ConnectionError('H3_SETTINGS_ERROR', `setting 0x${id.toString(16)} repeated`);
    // §7.2.4.1: HTTP/2's identifiers with no HTTP/3 meaning are H3_SETTINGS_ERROR.
    if (HTTP2_ONLY_SETTING_IDS.has(id))
      throw new H3ConnectionError('H3_SETTINGS_ERROR', `HTTP/2 setting 0x${id.toString(16)}`);
    // RFC 9220 §3: ENABLE_CONNECT_PROTOCOL is 0 or 1.
    if (id === H3SettingId.ENABLE_CONNECT_PROTOCOL && value > 1)
      throw new H3ConnectionError('H3_SETTINGS_ERROR', `SETTINGS_ENABLE_CONNECT_PROTOCOL ${value}`);
    seen.set(id, value);
  }
  c.peerSettings = seen;
  // RFC 9204 §3.2.3: the encoder may now use a table up to the peer's maximum.
  const peerMaxTableCapacity = seen.get(H3SettingId.QPACK_MAX_TABLE_CAPACITY) ?? 0;
  if (peerMaxTableCapacity > 0) {
    c.encoder = new QpackEncoder({
      peerMaxTableCapacity,
      peerMaxBlockedStreams: seen.get(H3SettingId.QPACK_BLOCKED_STREAMS) ?? 0,
      capacity: Math.min(c.encoderCapacity, peerMaxTableCapacity),
    });
  }
  c.events.push({ type: 'settings', settings });
}

export function onGoaway(c: H3Core, id: number): void {
  // §5.2 / §7.2.6: a server's GOAWAY names a client-initiated bidirectional stream.
  if (c.role === 'client' && !isClientBidi(id))
    throw new H3ConnectionError('H3_ID_ERROR', `GOAWAY with stream ${id}, not a client bidirectional stream`);
  // §5.2: an endpoint MUST NOT increase the ID it sent in a previous GOAWAY.
  if (c.goawayReceived !== undefined && id > c.goawayReceived)
    throw new H3ConnectionError('H3_ID_ERROR', `GOAWAY ${id} after GOAWAY ${c.goawayReceived}`);
  c.goawayReceived = id;
  c.events.push({ type: 'goaway', id });
  if (c.role === 'client') {
    // §5.2: requests at or above the ID were not and will not be processed: they may be retried.
    for (const s of [...c.streams.values()]) {
      if (s.id < id) continue;
      c.streams.delete(s.id);
      if (s.blocked) c.decoder.cancelStream(s.id);
      retire(c, s.id);
      c.events.push({ type: 'stream-reset', streamId: s.id, code: H3ErrorCode.H3_REQUEST_REJECTED });
    }
  }
  maybeFinishShutdown(c);
}

/**
 * §5.2: once GOAWAY has been sent or received and nothing is in flight, the connection
 * can close. The client closes it: it knows when the last response has arrived, where a
 * server that closed after writing its last bytes could discard them unacknowledged
 * (a CONNECTION_CLOSE ends all streams, RFC 9000 §10.2).
 */
export function maybeFinishShutdown(c: H3Core): void {
  if (c.closed || c.streams.size > 0 || c.role !== 'client') return;
  if (c.goawaySent !== undefined || c.goawayReceived !== undefined)
    close(c, H3ErrorCode.H3_NO_ERROR, 'graceful shutdown complete');
}
