import { ByteReader } from '@stepwire/wire';
import { readVarintLimit } from '../packet/varint.ts';
import {
  type H3Event,
  type H3LocalSettings,
  type H3Transport,
  Http3Connection,
  type Http3ConnectionOptions,
} from './connection.ts';
import { decodeH3Frames, H3SettingId, H3StreamType } from './frames.ts';

/**
 * Reads a captured HTTP/3 connection (each stream's bytes, as a decrypted capture gives
 * them) through our Http3Connection, as if it were one of the two endpoints: `local` are
 * the streams that endpoint sent (its own SETTINGS decide how it decodes, RFC 9204 §5),
 * `remote` the streams it received. Returns what the application would have seen and how
 * the connection ended — a real peer's traffic as an oracle for the core.
 */
export interface H3ReplayInput {
  role: 'client' | 'server';
  local: ReadonlyMap<number, Uint8Array>;
  remote: ReadonlyMap<number, Uint8Array>;
  /** The streams ended (their FIN was captured); default false. */
  fin?: boolean;
  limits?: Http3ConnectionOptions['limits'];
}

export interface H3ReplayResult {
  events: H3Event[];
  /** The connection error our core raised, if any. */
  closedWith: { code: number; reason: string } | undefined;
  connection: Http3Connection;
}

/** The SETTINGS on the control stream among `streams` (RFC 9114 §6.2.1), as our options. */
export function settingsFromStreams(streams: ReadonlyMap<number, Uint8Array>): H3LocalSettings | undefined {
  for (const [id, bytes] of streams) {
    if ((id & 2) === 0 || bytes.length === 0) continue;
    const r = new ByteReader(bytes, 'h3');
    if (readVarintLimit(r, 'Stream Type') !== H3StreamType.CONTROL) continue;
    const first = decodeH3Frames(bytes.subarray(r.offset))[0];
    if (first?.type !== 'SETTINGS') return undefined;
    const get = (k: number) => first.settings.find((s) => s.id === k)?.value;
    const out: H3LocalSettings = {
      qpackMaxTableCapacity: get(H3SettingId.QPACK_MAX_TABLE_CAPACITY) ?? 0,
      qpackBlockedStreams: get(H3SettingId.QPACK_BLOCKED_STREAMS) ?? 0,
      enableConnectProtocol: get(H3SettingId.ENABLE_CONNECT_PROTOCOL) === 1,
    };
    const max = get(H3SettingId.MAX_FIELD_SECTION_SIZE);
    if (max !== undefined) out.maxFieldSectionSize = max;
    return out;
  }
  return undefined;
}

export function replayH3(input: H3ReplayInput): H3ReplayResult {
  const ownBidi = [...input.local.keys()].filter((id) => (id & 2) === 0).sort((a, b) => a - b);
  let nextUni = input.role === 'client' ? 1_000_002 : 1_000_003;
  let closedWith: { code: number; reason: string } | undefined;
  // Writes go nowhere: the capture already holds what this endpoint sent.
  const transport: H3Transport = {
    openStream: (kind) => {
      if (kind === 'bidi') return ownBidi.shift() ?? -1;
      nextUni += 4;
      return nextUni;
    },
    write: () => {},
    resetStream: () => {},
    stopSending: () => {},
    close: (code, reason = '') => {
      closedWith ??= { code, reason };
    },
  };
  const opts: Http3ConnectionOptions = { role: input.role, grease: false };
  const settings = settingsFromStreams(input.local);
  if (settings) opts.settings = settings;
  if (input.limits) opts.limits = input.limits;
  const h3 = new Http3Connection(transport, opts);
  const events: H3Event[] = [...h3.handle({ type: 'connected', alpn: 'h3' })];
  if (input.role === 'client') {
    // Our requests' streams must exist for the responses to land on; their content is in `local`.
    for (let n = ownBidi.length; n > 0; n--)
      h3.sendRequest(
        [
          [':method', 'GET'],
          [':scheme', 'https'],
          [':authority', 'replay'],
          [':path', '/'],
        ],
        true,
      );
  }
  // Ascending IDs: request streams (0, 4, …) come before the QPACK encoder stream, so
  // sections that need its inserts are read blocked first, then released (RFC 9204 §2.2.1).
  for (const id of [...input.remote.keys()].sort((a, b) => a - b)) {
    let data = input.remote.get(id) ?? new Uint8Array(0);
    // The peer's decoder stream acknowledges sections the captured endpoint encoded, not
    // ours (our encoder sent nothing): only its stream type is read.
    if ((id & 2) !== 0 && data.length > 0) {
      const r = new ByteReader(data, 'h3');
      if (readVarintLimit(r, 'Stream Type') === H3StreamType.QPACK_DECODER) data = data.subarray(0, r.offset);
    }
    events.push(...h3.handle({ type: 'stream-opened', id }));
    events.push(
      ...h3.handle({
        type: 'stream-data',
        id,
        data,
        fin: input.fin ?? false,
      }),
    );
  }
  return { events, closedWith, connection: h3 };
}
