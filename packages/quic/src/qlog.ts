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
import type { TraceEvent } from '@stepwire/wire';

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

/** Our frame type names → qlog's frame_type (draft quic-events §8.13). */
function qlogFrameType(type: string): { frame_type: string; error_space?: string } {
  if (type === 'CONNECTION_CLOSE_APPLICATION')
    return { frame_type: 'connection_close', error_space: 'application' };
  if (type === 'CONNECTION_CLOSE') return { frame_type: 'connection_close', error_space: 'transport' };
  if (type.startsWith('ACK')) return { frame_type: 'ack' };
  if (type.startsWith('STREAM') && !type.startsWith('STREAMS') && type !== 'STREAM_DATA_BLOCKED')
    return { frame_type: 'stream' };
  if (type.startsWith('DATAGRAM')) return { frame_type: 'datagram' };
  return { frame_type: type.toLowerCase() };
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
      const frames = Array.isArray(f.frames)
        ? f.frames.filter((x): x is string => typeof x === 'string')
        : [];
      this.emit(e.t, e.dir === 'out' ? 'quic:packet_sent' : 'quic:packet_received', {
        header: {
          packet_type: PACKET_TYPES[f.type] ?? 'unknown',
          packet_number: f.packetNumber,
          ...cidsOf(e.summary),
        },
        frames: frames.map(qlogFrameType),
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
