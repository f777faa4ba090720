/**
 * The RFC 9293 §3.3.2 state diagram (Figure 6) as data: every state change of a
 * connection is a row of TRANSITIONS, (state, input) → next state, and ControlBlock's
 * `transition` refuses any pair that is not in the table. A reader who wants to know how a
 * connection can leave ESTABLISHED reads the rows that start there; each row names the
 * section of RFC 9293 that describes it.
 */

export type TcpState =
  | 'CLOSED'
  | 'LISTEN'
  | 'SYN-SENT'
  | 'SYN-RECEIVED'
  | 'ESTABLISHED'
  | 'FIN-WAIT-1'
  | 'FIN-WAIT-2'
  | 'CLOSE-WAIT'
  | 'CLOSING'
  | 'LAST-ACK'
  | 'TIME-WAIT';

/** What moves a connection from one state to the next: a user call, a segment or a timer. */
export type TcpInput =
  /** OPEN call, active (RFC 9293 §3.10.1). */
  | 'active-open'
  /** OPEN call, passive. */
  | 'passive-open'
  /** CLOSE call, or the FIN it queued going out once the handshake is done (§3.10.4). */
  | 'close'
  /** ABORT call (§3.10.5). */
  | 'abort'
  /** A SYN without ACK (§3.10.7.2; simultaneous open in §3.10.7.3). */
  | 'rcv-syn'
  /** A SYN-ACK acknowledging our SYN (§3.10.7.3). */
  | 'rcv-syn-ack'
  /** An ACK of our SYN in SYN-RECEIVED (§3.10.7.4 fifth). */
  | 'rcv-ack-of-syn'
  /** The peer's FIN, with everything before it (§3.10.7.4 eighth). */
  | 'rcv-fin'
  /** An ACK of our FIN (§3.10.7.4 fifth). */
  | 'rcv-ack-of-fin'
  /** An acceptable RST (§3.10.7.3 second, §3.10.7.4 second). */
  | 'rcv-rst'
  /** Retransmissions exhausted (§3.8.3 R2). */
  | 'retransmission-timeout'
  /** USER TIMEOUT (§3.10.8, RFC 5482). */
  | 'user-timeout'
  /** Keepalive probes unanswered (§3.8.4). */
  | 'keepalive-timeout'
  /** 2 MSL passed in TIME-WAIT (§3.10.8). */
  | 'time-wait-timeout';

export interface Transition {
  readonly from: TcpState;
  readonly on: TcpInput;
  readonly to: TcpState;
  readonly rfc: string;
}

const ALL_OPEN: readonly TcpState[] = [
  'LISTEN',
  'SYN-SENT',
  'SYN-RECEIVED',
  'ESTABLISHED',
  'FIN-WAIT-1',
  'FIN-WAIT-2',
  'CLOSE-WAIT',
  'CLOSING',
  'LAST-ACK',
  'TIME-WAIT',
];
/** States with a retransmission, user or keepalive timer that can give up (not LISTEN, not TIME-WAIT). */
const TIMING_OUT: readonly TcpState[] = ALL_OPEN.filter((s) => s !== 'LISTEN' && s !== 'TIME-WAIT');

function each(states: readonly TcpState[], on: TcpInput, to: TcpState, rfc: string): Transition[] {
  return states.map((from) => ({ from, on, to, rfc }));
}

/** The whole diagram. CLOSED is the RFC's fictional state: the connection object is done. */
export const TRANSITIONS: readonly Transition[] = [
  // User calls.
  { from: 'CLOSED', on: 'active-open', to: 'SYN-SENT', rfc: 'RFC 9293 §3.10.1' },
  { from: 'CLOSED', on: 'passive-open', to: 'LISTEN', rfc: 'RFC 9293 §3.10.1' },
  { from: 'LISTEN', on: 'close', to: 'CLOSED', rfc: 'RFC 9293 §3.10.4' },
  // In SYN-SENT and SYN-RECEIVED the FIN is queued, and this row applies once ESTABLISHED.
  { from: 'ESTABLISHED', on: 'close', to: 'FIN-WAIT-1', rfc: 'RFC 9293 §3.10.4' },
  { from: 'CLOSE-WAIT', on: 'close', to: 'LAST-ACK', rfc: 'RFC 9293 §3.10.4' },
  ...each(ALL_OPEN, 'abort', 'CLOSED', 'RFC 9293 §3.10.5'),

  // Opening (§3.5, Figures 7 and 8).
  { from: 'LISTEN', on: 'rcv-syn', to: 'SYN-RECEIVED', rfc: 'RFC 9293 §3.10.7.2' },
  { from: 'SYN-SENT', on: 'rcv-syn-ack', to: 'ESTABLISHED', rfc: 'RFC 9293 §3.10.7.3' },
  { from: 'SYN-SENT', on: 'rcv-syn', to: 'SYN-RECEIVED', rfc: 'RFC 9293 §3.10.7.3' },
  { from: 'SYN-RECEIVED', on: 'rcv-ack-of-syn', to: 'ESTABLISHED', rfc: 'RFC 9293 §3.10.7.4' },

  // Closing (§3.6, Figures 12 and 13): the peer's FIN, then the ACK of ours.
  { from: 'SYN-RECEIVED', on: 'rcv-fin', to: 'CLOSE-WAIT', rfc: 'RFC 9293 §3.10.7.4' },
  { from: 'ESTABLISHED', on: 'rcv-fin', to: 'CLOSE-WAIT', rfc: 'RFC 9293 §3.10.7.4' },
  { from: 'FIN-WAIT-1', on: 'rcv-fin', to: 'CLOSING', rfc: 'RFC 9293 §3.10.7.4' },
  { from: 'FIN-WAIT-2', on: 'rcv-fin', to: 'TIME-WAIT', rfc: 'RFC 9293 §3.10.7.4' },
  { from: 'FIN-WAIT-1', on: 'rcv-ack-of-fin', to: 'FIN-WAIT-2', rfc: 'RFC 9293 §3.10.7.4' },
  { from: 'CLOSING', on: 'rcv-ack-of-fin', to: 'TIME-WAIT', rfc: 'RFC 9293 §3.10.7.4' },
  { from: 'LAST-ACK', on: 'rcv-ack-of-fin', to: 'CLOSED', rfc: 'RFC 9293 §3.10.7.4' },
  { from: 'TIME-WAIT', on: 'time-wait-timeout', to: 'CLOSED', rfc: 'RFC 9293 §3.10.8' },

  // Resets (§3.5.2). A passive SYN-RECEIVED "returns to LISTEN": here the listener keeps
  // listening and this connection, which belonged to that one SYN, closes.
  { from: 'SYN-SENT', on: 'rcv-rst', to: 'CLOSED', rfc: 'RFC 9293 §3.10.7.3' },
  ...each(ALL_OPEN.slice(2), 'rcv-rst', 'CLOSED', 'RFC 9293 §3.10.7.4'),

  // Giving up.
  ...each(TIMING_OUT, 'retransmission-timeout', 'CLOSED', 'RFC 9293 §3.8.3'),
  ...each(TIMING_OUT, 'user-timeout', 'CLOSED', 'RFC 9293 §3.10.8'),
  { from: 'ESTABLISHED', on: 'keepalive-timeout', to: 'CLOSED', rfc: 'RFC 9293 §3.8.4' },
  { from: 'CLOSE-WAIT', on: 'keepalive-timeout', to: 'CLOSED', rfc: 'RFC 9293 §3.8.4' },
];

const TABLE = new Map<string, Transition>();
for (const t of TRANSITIONS) {
  const key = `${t.from} ${t.on}`;
  if (TABLE.has(key)) throw new Error(`tcp: two transitions for ${key}`);
  TABLE.set(key, t);
}

/** The row for (state, input), or undefined when the diagram has no such edge. */
export function transitionFor(from: TcpState, on: TcpInput): Transition | undefined {
  return TABLE.get(`${from} ${on}`);
}

/**
 * Under test an illegal transition throws, so a missing row shows at once; elsewhere it is
 * counted and traced, and the connection carries on as it would have (a bug in this table
 * must not take a running stack down).
 */
export const STRICT_TRANSITIONS: boolean =
  (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.VITEST !==
  undefined;

// State sets, defined once.

/** The synchronized states (RFC 9293 §3.10.7.4): both sequence spaces are known. */
export const SYNCHRONIZED: ReadonlySet<TcpState> = new Set<TcpState>([
  'ESTABLISHED',
  'FIN-WAIT-1',
  'FIN-WAIT-2',
  'CLOSE-WAIT',
  'CLOSING',
  'LAST-ACK',
  'TIME-WAIT',
]);

/** States in which queued data or our FIN may still go out (or be retransmitted). */
export const SEND_STATES: ReadonlySet<TcpState> = new Set<TcpState>([
  'ESTABLISHED',
  'CLOSE-WAIT',
  'FIN-WAIT-1',
  'CLOSING',
  'LAST-ACK',
]);

/** States in which the user may still write (RFC 9293 §3.10.2 SEND: queued before ESTABLISHED). */
export const USER_SEND_STATES: ReadonlySet<TcpState> = new Set<TcpState>([
  'SYN-RECEIVED',
  'ESTABLISHED',
  'CLOSE-WAIT',
]);

/** States that take segment text (RFC 9293 §3.10.7.4 seventh). */
export const TEXT_STATES: ReadonlySet<TcpState> = new Set<TcpState>([
  'ESTABLISHED',
  'FIN-WAIT-1',
  'FIN-WAIT-2',
]);

/** States that keepalive probes watch (RFC 9293 §3.8.4). */
export const KEEPALIVE_STATES: ReadonlySet<TcpState> = new Set<TcpState>(['ESTABLISHED', 'CLOSE-WAIT']);
