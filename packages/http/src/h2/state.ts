/**
 * The stream states of RFC 9113 §5.1 as one transition table: (state, direction, event) →
 * next state, or the error the RFC names. Every state change of a stream in the connection
 * goes through `transition`, so this table is the whole of the stream lifecycle.
 *
 *                              +--------+
 *                      send PP |        | recv PP
 *                     ,--------+  idle  +--------.
 *                    /         |        |         \
 *                   v          +--------+          v
 *            +----------+          |           +----------+
 *            | reserved |          | send H /  | reserved |
 *            | (local)  |          | recv H    | (remote) |
 *            +---+------+          v           +------+---+
 *                |             +--------+             |
 *                |     recv ES |        | send ES     |
 *         send H |     ,-------+  open  +-------.     | recv H
 *                |    /        |        |        \    |
 *                v   v         +---+----+         v   v
 *            +----------+          |           +----------+
 *            |   half-  |          |           |   half-  |
 *            |  closed  |          | send R /  |  closed  |
 *            | (remote) |          | recv R    | (local)  |
 *            +---+------+          |           +-----+----+
 *                |                 |                 |
 *                | send ES /       |       recv ES / |
 *                | send R /        v        send R / |
 *                | recv R      +--------+   recv R   |
 *                `------------>|        |<-----------'
 *                              | closed |
 *                              +--------+
 */
import { ErrorCode } from './errors.ts';

export type StreamState =
  | 'idle'
  | 'reserved (local)'
  | 'reserved (remote)'
  | 'open'
  | 'half-closed (local)'
  | 'half-closed (remote)'
  | 'closed'
  /**
   * Closed by a RST_STREAM we sent: frames the peer sent before it saw ours may still
   * arrive and are ignored (RFC 9113 §5.1, "closed" paragraph 5).
   */
  | 'closed (reset sent)';

/** What happens to a stream: a frame (by type) or a flag carried on one. */
export type StreamEvent =
  | 'HEADERS'
  | 'DATA'
  | 'END_STREAM'
  | 'RST_STREAM'
  | 'PUSH_PROMISE'
  | 'WINDOW_UPDATE'
  | 'PRIORITY'
  | '*';

export type Outcome =
  | { next: StreamState | 'same' }
  /** A protocol error of the peer: a stream error (RST_STREAM) or a connection error (GOAWAY). */
  | { error: 'stream' | 'connection'; code: number }
  /** Drop the frame silently. */
  | { ignore: true }
  /** Our own API was used out of order (e.g. DATA after END_STREAM): a local usage error. */
  | { misuse: true };

type Row = [StreamState, 'send' | 'recv', StreamEvent, Outcome, string];

const to = (next: StreamState | 'same'): Outcome => ({ next });
const connErr = (code: number): Outcome => ({ error: 'connection', code });
const streamErr = (code: number): Outcome => ({ error: 'stream', code });
const ignore: Outcome = { ignore: true };
const misuse: Outcome = { misuse: true };
const P = ErrorCode.PROTOCOL_ERROR;
const SC = ErrorCode.STREAM_CLOSED;

// biome-ignore format: a table reads best as one row per line
export const STREAM_TRANSITIONS: readonly Row[] = [
  // idle
  ['idle', 'send', 'HEADERS', to('open'), 'RFC 9113 §5.1 idle: sending a HEADERS frame → open'],
  ['idle', 'recv', 'HEADERS', to('open'), 'RFC 9113 §5.1 idle: receiving a HEADERS frame → open'],
  ['idle', 'send', 'PUSH_PROMISE', to('reserved (local)'), 'RFC 9113 §5.1 idle: sending PUSH_PROMISE reserves the promised stream'],
  ['idle', 'recv', 'PUSH_PROMISE', to('reserved (remote)'), 'RFC 9113 §5.1 idle: receiving PUSH_PROMISE reserves the promised stream'],
  ['idle', 'recv', 'PRIORITY', to('same'), 'RFC 9113 §5.1 idle: PRIORITY may be received'],
  ['idle', 'send', 'PRIORITY', to('same'), 'RFC 9113 §5.1 idle: PRIORITY may be sent'],
  ['idle', 'recv', '*', connErr(P), 'RFC 9113 §5.1 idle: any other frame is a connection error PROTOCOL_ERROR'],
  ['idle', 'send', '*', misuse, 'RFC 9113 §5.1 idle: only HEADERS, PUSH_PROMISE, PRIORITY'],
  // reserved (local)
  ['reserved (local)', 'send', 'HEADERS', to('half-closed (remote)'), 'RFC 9113 §5.1 reserved (local): sending HEADERS → half-closed (remote)'],
  ['reserved (local)', 'send', 'RST_STREAM', to('closed'), 'RFC 9113 §5.1 reserved (local): either endpoint can send RST_STREAM'],
  ['reserved (local)', 'recv', 'RST_STREAM', to('closed'), 'RFC 9113 §5.1 reserved (local): either endpoint can send RST_STREAM'],
  ['reserved (local)', 'recv', 'WINDOW_UPDATE', to('same'), 'RFC 9113 §5.1 reserved (local): PRIORITY or WINDOW_UPDATE may be received'],
  ['reserved (local)', 'recv', 'PRIORITY', to('same'), 'RFC 9113 §5.1 reserved (local): PRIORITY or WINDOW_UPDATE may be received'],
  ['reserved (local)', 'send', 'PRIORITY', to('same'), 'RFC 9113 §5.1 reserved (local): PRIORITY may be sent'],
  ['reserved (local)', 'recv', '*', connErr(P), 'RFC 9113 §5.1 reserved (local): other frames are a connection error PROTOCOL_ERROR'],
  ['reserved (local)', 'send', '*', misuse, 'RFC 9113 §5.1 reserved (local): only HEADERS, RST_STREAM, PRIORITY'],
  // reserved (remote)
  ['reserved (remote)', 'recv', 'HEADERS', to('half-closed (local)'), 'RFC 9113 §5.1 reserved (remote): receiving HEADERS → half-closed (local)'],
  ['reserved (remote)', 'send', 'RST_STREAM', to('closed'), 'RFC 9113 §5.1 reserved (remote): either endpoint can send RST_STREAM'],
  ['reserved (remote)', 'recv', 'RST_STREAM', to('closed'), 'RFC 9113 §5.1 reserved (remote): either endpoint can send RST_STREAM'],
  ['reserved (remote)', 'recv', 'PRIORITY', to('same'), 'RFC 9113 §5.1 reserved (remote): PRIORITY may be received'],
  ['reserved (remote)', 'send', 'WINDOW_UPDATE', to('same'), 'RFC 9113 §5.1 reserved (remote): PRIORITY or WINDOW_UPDATE may be sent'],
  ['reserved (remote)', 'send', 'PRIORITY', to('same'), 'RFC 9113 §5.1 reserved (remote): PRIORITY or WINDOW_UPDATE may be sent'],
  ['reserved (remote)', 'recv', '*', connErr(P), 'RFC 9113 §5.1 reserved (remote): other frames are a connection error PROTOCOL_ERROR'],
  ['reserved (remote)', 'send', '*', misuse, 'RFC 9113 §5.1 reserved (remote): only RST_STREAM, PRIORITY, WINDOW_UPDATE'],
  // open
  ['open', 'recv', 'END_STREAM', to('half-closed (remote)'), 'RFC 9113 §5.1 open: receiving END_STREAM → half-closed (remote)'],
  ['open', 'send', 'END_STREAM', to('half-closed (local)'), 'RFC 9113 §5.1 open: sending END_STREAM → half-closed (local)'],
  ['open', 'recv', 'RST_STREAM', to('closed'), 'RFC 9113 §5.1 open: RST_STREAM → closed'],
  ['open', 'send', 'RST_STREAM', to('closed'), 'RFC 9113 §5.1 open: RST_STREAM → closed'],
  ['open', 'recv', '*', to('same'), 'RFC 9113 §5.1 open: frames of any type may be received'],
  ['open', 'send', '*', to('same'), 'RFC 9113 §5.1 open: frames of any type may be sent'],
  // half-closed (local)
  ['half-closed (local)', 'recv', 'END_STREAM', to('closed'), 'RFC 9113 §5.1 half-closed (local): receiving END_STREAM → closed'],
  ['half-closed (local)', 'recv', 'RST_STREAM', to('closed'), 'RFC 9113 §5.1 half-closed (local): RST_STREAM → closed'],
  ['half-closed (local)', 'send', 'RST_STREAM', to('closed'), 'RFC 9113 §5.1 half-closed (local): RST_STREAM → closed'],
  ['half-closed (local)', 'recv', '*', to('same'), 'RFC 9113 §5.1 half-closed (local): frames of any type may be received'],
  ['half-closed (local)', 'send', 'WINDOW_UPDATE', to('same'), 'RFC 9113 §5.1 half-closed (local): WINDOW_UPDATE, PRIORITY, RST_STREAM only'],
  ['half-closed (local)', 'send', 'PRIORITY', to('same'), 'RFC 9113 §5.1 half-closed (local): WINDOW_UPDATE, PRIORITY, RST_STREAM only'],
  ['half-closed (local)', 'send', '*', misuse, 'RFC 9113 §5.1 half-closed (local): MUST NOT send other frames'],
  // half-closed (remote)
  ['half-closed (remote)', 'send', 'END_STREAM', to('closed'), 'RFC 9113 §5.1 half-closed (remote): sending END_STREAM → closed'],
  ['half-closed (remote)', 'send', 'RST_STREAM', to('closed'), 'RFC 9113 §5.1 half-closed (remote): RST_STREAM → closed'],
  ['half-closed (remote)', 'recv', 'RST_STREAM', to('closed'), 'RFC 9113 §5.1 half-closed (remote): RST_STREAM → closed'],
  ['half-closed (remote)', 'recv', 'WINDOW_UPDATE', to('same'), 'RFC 9113 §5.1 half-closed (remote): WINDOW_UPDATE, PRIORITY, RST_STREAM may be received'],
  ['half-closed (remote)', 'recv', 'PRIORITY', to('same'), 'RFC 9113 §5.1 half-closed (remote): WINDOW_UPDATE, PRIORITY, RST_STREAM may be received'],
  ['half-closed (remote)', 'recv', '*', streamErr(SC), 'RFC 9113 §5.1 half-closed (remote): other frames are a stream error STREAM_CLOSED'],
  ['half-closed (remote)', 'send', '*', to('same'), 'RFC 9113 §5.1 half-closed (remote): frames of any type may be sent'],
  // closed
  ['closed', 'recv', 'PRIORITY', to('same'), 'RFC 9113 §5.1 closed: PRIORITY may be received'],
  ['closed', 'recv', 'WINDOW_UPDATE', ignore, 'RFC 9113 §5.1 closed: WINDOW_UPDATE or RST_STREAM may arrive shortly after END_STREAM'],
  ['closed', 'recv', 'RST_STREAM', ignore, 'RFC 9113 §5.1 closed: WINDOW_UPDATE or RST_STREAM may arrive shortly after END_STREAM'],
  ['closed', 'recv', 'DATA', streamErr(SC), 'RFC 9113 §6.1: DATA on a stream not open or half-closed (local) is a stream error STREAM_CLOSED'],
  ['closed', 'recv', '*', connErr(SC), 'RFC 9113 §5.1 closed: other frames MAY be a connection error STREAM_CLOSED'],
  ['closed', 'send', 'PRIORITY', to('same'), 'RFC 9113 §5.1 closed: only PRIORITY may be sent'],
  ['closed', 'send', '*', misuse, 'RFC 9113 §5.1 closed: MUST NOT send frames other than PRIORITY'],
  // closed after we sent RST_STREAM
  ['closed (reset sent)', 'recv', '*', ignore, 'RFC 9113 §5.1 closed: frames in flight when RST_STREAM was sent are ignored'],
  ['closed (reset sent)', 'send', 'PRIORITY', to('same'), 'RFC 9113 §5.1 closed: only PRIORITY may be sent'],
  ['closed (reset sent)', 'send', '*', misuse, 'RFC 9113 §5.1 closed: MUST NOT send frames other than PRIORITY'],
];

type Row2 = { outcome: Outcome; rfc: string };
/** state → direction → event → row; nested maps so a lookup builds no key strings. */
const TABLE = new Map<StreamState, { send: Map<StreamEvent, Row2>; recv: Map<StreamEvent, Row2> }>();
for (const [state, dir, ev, outcome, rfc] of STREAM_TRANSITIONS) {
  let byDir = TABLE.get(state);
  if (!byDir) TABLE.set(state, (byDir = { send: new Map(), recv: new Map() }));
  byDir[dir].set(ev, { outcome, rfc });
}

/** Looks up (state, direction, event), falling back to the state's '*' row. */
export function transition(
  state: StreamState,
  dir: 'send' | 'recv',
  ev: Exclude<StreamEvent, '*'>,
): { outcome: Outcome; rfc: string } {
  const byEvent = TABLE.get(state)?.[dir];
  const row = byEvent?.get(ev) ?? byEvent?.get('*');
  // Every state has a '*' row for both directions (a test checks it), so this is unreachable.
  if (row === undefined) throw new Error(`no transition for ${state} ${dir} ${ev}`);
  return row;
}

export const isClosed = (s: StreamState): boolean => s === 'closed' || s === 'closed (reset sent)';
