/** HTTP/2 settings as a typed record (RFC 9113 §6.5.2, RFC 8441 §3, RFC 9218 §2.1). */
import { type Setting, SettingId } from './frames.ts';

export interface Http2Settings {
  headerTableSize: number;
  enablePush: boolean;
  /** Unlimited (Infinity) until the peer says otherwise (RFC 9113 §6.5.2). */
  maxConcurrentStreams: number;
  initialWindowSize: number;
  maxFrameSize: number;
  /** Advisory; unlimited until announced. */
  maxHeaderListSize: number;
  enableConnectProtocol: boolean;
  noRfc7540Priorities: boolean;
}

/** The values every endpoint starts from before the peer's SETTINGS (RFC 9113 §6.5.2). */
export const DEFAULT_SETTINGS: Readonly<Http2Settings> = {
  headerTableSize: 4096,
  enablePush: true,
  maxConcurrentStreams: Number.POSITIVE_INFINITY,
  initialWindowSize: 65_535,
  maxFrameSize: 16_384,
  maxHeaderListSize: Number.POSITIVE_INFINITY,
  enableConnectProtocol: false,
  noRfc7540Priorities: false,
};

/** The settings that differ from the defaults, as SETTINGS parameters. */
export function settingsToFrame(s: Partial<Http2Settings>): Setting[] {
  const out: Setting[] = [];
  const put = (id: number, v: number | boolean | undefined) => {
    if (v === undefined) return;
    const n = typeof v === 'boolean' ? (v ? 1 : 0) : v;
    if (Number.isFinite(n)) out.push([id, n]);
  };
  put(SettingId.HEADER_TABLE_SIZE, s.headerTableSize);
  put(SettingId.ENABLE_PUSH, s.enablePush);
  put(SettingId.MAX_CONCURRENT_STREAMS, s.maxConcurrentStreams);
  put(SettingId.INITIAL_WINDOW_SIZE, s.initialWindowSize);
  put(SettingId.MAX_FRAME_SIZE, s.maxFrameSize);
  put(SettingId.MAX_HEADER_LIST_SIZE, s.maxHeaderListSize);
  put(SettingId.ENABLE_CONNECT_PROTOCOL, s.enableConnectProtocol);
  put(SettingId.NO_RFC7540_PRIORITIES, s.noRfc7540Priorities);
  return out;
}

/** Applies received parameters in order (RFC 9113 §6.5.3); unknown ones are ignored (§6.5.2). */
export function applySettings(base: Http2Settings, params: readonly Setting[]): Http2Settings {
  const s = { ...base };
  for (const [id, v] of params) {
    switch (id) {
      case SettingId.HEADER_TABLE_SIZE:
        s.headerTableSize = v;
        break;
      case SettingId.ENABLE_PUSH:
        s.enablePush = v === 1;
        break;
      case SettingId.MAX_CONCURRENT_STREAMS:
        s.maxConcurrentStreams = v;
        break;
      case SettingId.INITIAL_WINDOW_SIZE:
        s.initialWindowSize = v;
        break;
      case SettingId.MAX_FRAME_SIZE:
        s.maxFrameSize = v;
        break;
      case SettingId.MAX_HEADER_LIST_SIZE:
        s.maxHeaderListSize = v;
        break;
      case SettingId.ENABLE_CONNECT_PROTOCOL:
        s.enableConnectProtocol = v === 1;
        break;
      case SettingId.NO_RFC7540_PRIORITIES:
        s.noRfc7540Priorities = v === 1;
        break;
    }
  }
  return s;
}
