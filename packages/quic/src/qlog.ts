/**
 * qlog output (draft-ietf-quic-qlog-main-schema, draft-ietf-quic-qlog-quic-events), in the
 * JSON-SEQ serialization (RFC 7464): each record is the Record Separator 0x1E, one JSON
 * object, and a line feed. The first record is the file header (qlog_version, qlog_format,
 * the trace's vantage point and common fields); each further record is one event with
 * `time` (ms, relative to the reference time), `name` ('quic:packet_sent', ...) and `data`.
 *
 * Built from what a QuicConnection already traces on its TraceBus (layer 'quic'): packets
 * in and out with their type, number, connection IDs and frames, and state changes. Metrics
 * (congestion window, RTT, bytes in flight) come from the connection's stats() when given,
 * written as 'quic:recovery_metrics_updated' whenever they change (draft quic-events §7.2).
 * qvis reads these files.
 */
import { type TraceEvent, toHex } from '@stepwire/wire';
import { ackFrameRanges, type Frame } from './frames/frame.ts';

export const QLOG_RECORD_SEPARATOR = '\x1e';

export interface QlogOptions {
  vantagePoint: 'client' | 'server';
  title?: string;
  /** The connection's original destination connection ID (hex), qlog's group_id. */
  groupId?: string;
  /** Calendar milliseconds at which event time 0 falls (the connection clock's origin). */
  referenceTime?: number;
}

/** What a qlog record holds (after the header). */
export interface QlogEvent {
  time: number;
  name: string;
  data: Record<string, unknown>;
}

/** Our packet type names → qlog's PacketType (draft quic-events §8.1). */
const PACKET_TYPES: Record<string, string> = {
  Initial: 'initial',
  Handshake: 'handshake',
  '0-RTT': '0RTT',
  '1-RTT': '1RTT',
  Retry: 'retry',
  VersionNegotiation: 'version_negotiation',
};

const streamType = (bidirectional: boolean) => (bidirectional ? 'bidirectional' : 'unidirectional');
const text = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).toString('utf8');

/**
 * A frame as qlog's QuicFrame (draft-ietf-quic-qlog-quic-events §8.13): its type and the
 * fields qvis draws (stream offsets and lengths, acknowledged ranges, limits, connection IDs),
 * never the payload bytes, so a kept trace holds no packet data. ACK's ack_delay is left out:
 * its unit depends on the sender's ack_delay_exponent, which the frame does not carry.
 */
export function qlogFrame(f: Frame): Record<string, unknown> {
  switch (f.type) {
    case 'PADDING':
      return { frame_type: 'padding', payload_length: f.length };
    case 'PING':
      return { frame_type: 'ping' };
    case 'ACK':
      return {
        frame_type: 'ack',
        acked_ranges: ackFrameRanges(f)
          .reverse()
          .map((r) => (r.smallest === r.largest ? [r.smallest] : [r.smallest, r.largest])),
        ...(f.ecnCounts ? { ect0: f.ecnCounts.ect0, ect1: f.ecnCounts.ect1, ce: f.ecnCounts.ecnCe } : {}),
      };
    case 'RESET_STREAM':
      return {
        frame_type: 'reset_stream',
        stream_id: f.streamId,
        error_code: f.applicationProtocolErrorCode,
        final_size: f.finalSize,
      };
    case 'STOP_SENDING':
      return {
        frame_type: 'stop_sending',
        stream_id: f.streamId,
        error_code: f.applicationProtocolErrorCode,
      };
    case 'CRYPTO':
      return { frame_type: 'crypto', offset: f.offset, length: f.data.length };
    case 'NEW_TOKEN':
      return { frame_type: 'new_token', token: { raw: { length: f.token.length } } };
    case 'STREAM':
      return {
        frame_type: 'stream',
        stream_id: f.streamId,
        offset: f.offset,
        length: f.data.length,
        fin: f.fin,
      };
    case 'MAX_DATA':
      return { frame_type: 'max_data', maximum: f.maximumData };
    case 'MAX_STREAM_DATA':
      return { frame_type: 'max_stream_data', stream_id: f.streamId, maximum: f.maximumStreamData };
    case 'MAX_STREAMS':
      return {
        frame_type: 'max_streams',
        stream_type: streamType(f.bidirectional),
        maximum: f.maximumStreams,
      };
    case 'DATA_BLOCKED':
      return { frame_type: 'data_blocked', limit: f.maximumData };
    case 'STREAM_DATA_BLOCKED':
      return { frame_type: 'stream_data_blocked', stream_id: f.streamId, limit: f.maximumStreamData };
    case 'STREAMS_BLOCKED':
      return {
        frame_type: 'streams_blocked',
        stream_type: streamType(f.bidirectional),
        limit: f.maximumStreams,
      };
    case 'NEW_CONNECTION_ID':
      return {
        frame_type: 'new_connection_id',
        sequence_number: f.sequenceNumber,
        retire_prior_to: f.retirePriorTo,
        connection_id_length: f.connectionId.length,
        connection_id: toHex(f.connectionId),
        stateless_reset_token: toHex(f.statelessResetToken),
      };
    case 'RETIRE_CONNECTION_ID':
      return { frame_type: 'retire_connection_id', sequence_number: f.sequenceNumber };
    case 'PATH_CHALLENGE':
      return { frame_type: 'path_challenge', data: toHex(f.data) };
    case 'PATH_RESPONSE':
      return { frame_type: 'path_response', data: toHex(f.data) };
    case 'CONNECTION_CLOSE':
      return {
        frame_type: 'connection_close',
        error_space: 'transport',
        error_code: f.errorCode,
        reason: text(f.reasonPhrase),
        trigger_frame_type: f.frameType,
      };
    case 'CONNECTION_CLOSE_APPLICATION':
      return {
        frame_type: 'connection_close',
        error_space: 'application',
        error_code: f.errorCode,
        reason: text(f.reasonPhrase),
      };
    case 'HANDSHAKE_DONE':
      return { frame_type: 'handshake_done' };
    case 'DATAGRAM':
      return { frame_type: 'datagram', length: f.data.length };
  }
}

/** Header fields the connection's summary carries (`dcid=… scid=…`). */
function cidsOf(summary: string): { dcid?: string; scid?: string } {
  const dcid = /\bdcid=([0-9a-f]*)/.exec(summary)?.[1];
  const scid = /\bscid=([0-9a-f]*)/.exec(summary)?.[1];
  return { ...(dcid !== undefined ? { dcid } : {}), ...(scid !== undefined ? { scid } : {}) };
}

/** The state names of draft quic-events §5.4 (connection_state_updated). */
const STATES: Record<string, string> = {
  handshaking: 'handshake_started',
  established: 'handshake_complete',
  confirmed: 'handshake_confirmed',
  closing: 'closing',
  draining: 'draining',
  closed: 'closed',
};

/**
 * One qlog trace (one connection, one vantage point). `observe` takes the connection's trace
 * events; `write` receives each finished record (RS, JSON, LF).
 */
export class QlogWriter {
  private t0: number | undefined;
  private lastMetrics = '';
  readonly events: QlogEvent[] = [];

  constructor(
    private readonly write: (record: string) => void,
    readonly options: QlogOptions,
  ) {
    this.record({
      qlog_version: '0.3',
      qlog_format: 'JSON-SEQ',
      title: options.title ?? `stepwire ${options.vantagePoint}`,
      trace: {
        vantage_point: { type: options.vantagePoint, name: 'stepwire' },
        common_fields: {
          protocol_type: ['QUIC', 'HTTP3'],
          time_format: 'relative',
          reference_time: options.referenceTime ?? Date.now(),
          ...(options.groupId ? { group_id: options.groupId } : {}),
        },
      },
    });
  }

  private record(value: unknown): void {
    this.write(`${QLOG_RECORD_SEPARATOR}${JSON.stringify(value)}\n`);
  }

  private emit(t: number, name: string, data: Record<string, unknown>): void {
    this.t0 ??= t;
    const e: QlogEvent = { time: Math.max(0, t - this.t0), name, data };
    this.events.push(e);
    this.record(e);
  }

  /** A trace event of the connection; `stats` is its stats() for recovery metrics. */
  observe(e: TraceEvent, stats?: () => Record<string, unknown>): void {
    if (e.layer !== 'quic') return;
    if (e.state) {
      this.emit(e.t, 'quic:connection_state_updated', {
        old: STATES[e.state.from] ?? e.state.from,
        new: STATES[e.state.to] ?? e.state.to,
      });
      return;
    }
    const f = e.fields as { type?: unknown; packetNumber?: unknown; frames?: unknown } | undefined;
    if (
      (e.dir === 'in' || e.dir === 'out') &&
      typeof f?.type === 'string' &&
      typeof f.packetNumber === 'number'
    ) {
      // The connection traces each frame as qlogFrame made it.
      const frames = Array.isArray(f.frames)
        ? f.frames.filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null)
        : [];
      this.emit(e.t, e.dir === 'out' ? 'quic:packet_sent' : 'quic:packet_received', {
        header: {
          packet_type: PACKET_TYPES[f.type] ?? 'unknown',
          packet_number: f.packetNumber,
          ...cidsOf(e.summary),
        },
        frames,
      });
      if (stats) this.metrics(e.t, stats());
      return;
    }
    if (e.dir === 'drop') this.emit(e.t, 'quic:packet_dropped', { trigger: e.summary });
  }

  private metrics(t: number, s: Record<string, unknown>): void {
    const m: Record<string, number> = {};
    if (typeof s.cwnd === 'number') m.congestion_window = s.cwnd;
    if (typeof s.bytesInFlight === 'number') m.bytes_in_flight = s.bytesInFlight;
    if (typeof s.srtt === 'number') m.smoothed_rtt = s.srtt;
    const key = JSON.stringify(m);
    if (key === this.lastMetrics || key === '{}') return;
    this.lastMetrics = key;
    this.emit(t, 'quic:recovery_metrics_updated', m);
  }
}

/** Splits a JSON-SEQ text into its records (each must start with RS); throws on a malformed one. */
export function parseQlogSeq(text: string): unknown[] {
  if (text.length === 0) return [];
  if (!text.startsWith(QLOG_RECORD_SEPARATOR)) throw new SyntaxError('a JSON-SEQ text starts with RS (0x1E)');
  return text
    .split(QLOG_RECORD_SEPARATOR)
    .slice(1)
    .map((r) => JSON.parse(r));
}
