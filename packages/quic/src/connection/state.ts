/**
 * The legal transitions of a QUIC connection and of its streams, as data (one row per
 * transition, each citing its section). The connection and the streams check every state
 * change against these tables: a change that is not in a table is a bug, thrown as such.
 */

/**
 * Connection states. 'handshaking' until TLS completes (RFC 9001 §4.1.1), 'established'
 * after; 'closing' and 'draining' are RFC 9000 §10.2; 'closed' holds no state any more.
 */
export type ConnectionState = 'handshaking' | 'established' | 'closing' | 'draining' | 'closed';

export type ConnectionInput =
  | 'handshake-complete'
  | 'close-local'
  | 'close-received'
  | 'stateless-reset'
  | 'idle-timeout'
  | 'version-negotiation'
  | 'closing-timeout'
  | 'draining-timeout';

interface Row<S, I> {
  from: readonly S[];
  input: I;
  to: S;
  rfc: string;
}

const LIVE: readonly ConnectionState[] = ['handshaking', 'established'];

export const CONNECTION_TRANSITIONS: readonly Row<ConnectionState, ConnectionInput>[] = [
  { from: ['handshaking'], input: 'handshake-complete', to: 'established', rfc: 'RFC 9001 §4.1.1' },
  // An endpoint that sends CONNECTION_CLOSE enters the closing state.
  { from: LIVE, input: 'close-local', to: 'closing', rfc: 'RFC 9000 §10.2.1' },
  // Receiving CONNECTION_CLOSE: draining (also from closing, §10.2.2 "MAY transition").
  { from: [...LIVE, 'closing'], input: 'close-received', to: 'draining', rfc: 'RFC 9000 §10.2.2' },
  { from: LIVE, input: 'stateless-reset', to: 'draining', rfc: 'RFC 9000 §10.3.1' },
  // The idle timeout discards the connection silently.
  { from: LIVE, input: 'idle-timeout', to: 'closed', rfc: 'RFC 9000 §10.1' },
  // A client that receives a Version Negotiation packet listing no version it supports abandons the attempt.
  { from: ['handshaking'], input: 'version-negotiation', to: 'closed', rfc: 'RFC 9000 §6.2' },
  // "The closing and draining states SHOULD persist for at least three times the current PTO interval."
  { from: ['closing'], input: 'closing-timeout', to: 'closed', rfc: 'RFC 9000 §10.2' },
  { from: ['draining'], input: 'draining-timeout', to: 'closed', rfc: 'RFC 9000 §10.2' },
];

export function connectionTransition(
  from: ConnectionState,
  input: ConnectionInput,
): Row<ConnectionState, ConnectionInput> | undefined {
  return CONNECTION_TRANSITIONS.find((r) => r.input === input && r.from.includes(from));
}

/** RFC 9000 §3.1, Figure 2: the sending part of a stream. */
export type SendStreamState = 'Ready' | 'Send' | 'Data Sent' | 'Reset Sent' | 'Data Recvd' | 'Reset Recvd';
export type SendStreamInput = 'send' | 'send-fin' | 'all-acked' | 'reset' | 'reset-acked';

export const SEND_STREAM_TRANSITIONS: readonly Row<SendStreamState, SendStreamInput>[] = [
  { from: ['Ready'], input: 'send', to: 'Send', rfc: 'RFC 9000 §3.1' },
  { from: ['Ready', 'Send'], input: 'send-fin', to: 'Data Sent', rfc: 'RFC 9000 §3.1' },
  { from: ['Data Sent'], input: 'all-acked', to: 'Data Recvd', rfc: 'RFC 9000 §3.1' },
  { from: ['Ready', 'Send', 'Data Sent'], input: 'reset', to: 'Reset Sent', rfc: 'RFC 9000 §3.1' },
  { from: ['Reset Sent'], input: 'reset-acked', to: 'Reset Recvd', rfc: 'RFC 9000 §3.1' },
];

/** RFC 9000 §3.2, Figure 3: the receiving part of a stream. */
export type RecvStreamState =
  | 'Recv'
  | 'Size Known'
  | 'Data Recvd'
  | 'Data Read'
  | 'Reset Recvd'
  | 'Reset Read';
export type RecvStreamInput = 'fin' | 'all-received' | 'read-all' | 'reset' | 'reset-read';

export const RECV_STREAM_TRANSITIONS: readonly Row<RecvStreamState, RecvStreamInput>[] = [
  { from: ['Recv'], input: 'fin', to: 'Size Known', rfc: 'RFC 9000 §3.2' },
  { from: ['Size Known'], input: 'all-received', to: 'Data Recvd', rfc: 'RFC 9000 §3.2' },
  { from: ['Data Recvd'], input: 'read-all', to: 'Data Read', rfc: 'RFC 9000 §3.2' },
  { from: ['Recv', 'Size Known'], input: 'reset', to: 'Reset Recvd', rfc: 'RFC 9000 §3.2' },
  { from: ['Reset Recvd'], input: 'reset-read', to: 'Reset Read', rfc: 'RFC 9000 §3.2' },
];

export function sendStreamTransition(
  from: SendStreamState,
  input: SendStreamInput,
): SendStreamState | undefined {
  return SEND_STREAM_TRANSITIONS.find((r) => r.input === input && r.from.includes(from))?.to;
}
export function recvStreamTransition(
  from: RecvStreamState,
  input: RecvStreamInput,
): RecvStreamState | undefined {
  return RECV_STREAM_TRANSITIONS.find((r) => r.input === input && r.from.includes(from))?.to;
}
