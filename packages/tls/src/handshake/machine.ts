/**
 * The shape both handshake machines share (DESIGN.md "Transitions as data, states as
 * types"): a state is a tagged type carrying exactly its own data, and each role keeps one
 * table of (state, message) → handler, each row naming the states it may lead to and the
 * RFC 8446 section that allows the step. A message with no row is an unexpected_message
 * (RFC 8446 §6.2); a handler that tries to enter a state its row does not list is our bug.
 */
import { AlertDescription, TlsAlertError } from '../codec/alert.ts';
import type { HandshakeMessage } from '../codec/handshake.ts';

export type MessageType = HandshakeMessage['msgType'];
export type MessageOf<M extends MessageType> = Extract<HandshakeMessage, { msgType: M }>;

/** A state: its Appendix A name (the trace shows it) and its data. */
export interface NamedState {
  readonly name: string;
}

export interface Transition<C, S extends NamedState, K extends S['name'], M extends MessageType> {
  /** Where RFC 8446 allows this message in this state. */
  readonly rfc: string;
  /** The states the handler may enter (in order, when it passes through several). */
  readonly next: readonly S['name'][];
  /** The step, run on the machine `C` with the state's data and the message. */
  readonly handle: (machine: C, state: Extract<S, { name: K }>, msg: MessageOf<M>, raw: Uint8Array) => void;
}

/** A role's table, written once (a static of the machine's class), not per connection. */
export type TransitionTable<C, S extends NamedState> = {
  readonly [K in S['name']]?: { readonly [M in MessageType]?: Transition<C, S, K, M> };
};

/** A row with its state and message erased, as the dispatcher holds it. */
export interface AnyTransition {
  readonly rfc: string;
  readonly next: readonly string[];
  readonly handle: (machine: never, state: never, msg: never, raw: Uint8Array) => void;
}

/** The row for `msg` in `state`, or an unexpected_message alert. */
export function findTransition<C, S extends NamedState>(
  table: TransitionTable<C, S>,
  state: S,
  msg: HandshakeMessage,
  where = '',
): AnyTransition {
  const byMessage = (table as Record<string, Record<string, AnyTransition> | undefined>)[state.name];
  const row = byMessage?.[msg.msgType];
  // RFC 8446 §6.2: a message not allowed in this state is an unexpected_message.
  if (!row) throw unexpected(`${msg.msgType} in state ${state.name}${where}`);
  return row;
}

/** Run a row's handler with the state and message it was found for. */
export function runTransition<C, S extends NamedState>(
  row: AnyTransition,
  machine: C,
  state: S,
  msg: HandshakeMessage,
  raw: Uint8Array,
): void {
  // The table's types tie each handler to its (state, message); the lookup above matched both.
  (row.handle as (c: C, s: S, m: HandshakeMessage, r: Uint8Array) => void)(machine, state, msg, raw);
}

function unexpected(reason: string): TlsAlertError {
  return new TlsAlertError(AlertDescription.unexpected_message, reason);
}

/** Thrown when a handler enters a state its row does not allow: a bug of ours (internal_error). */
export function checkNext(row: AnyTransition | undefined, from: string, to: string): void {
  if (row && !row.next.includes(to)) throw new Error(`transition ${from} -> ${to} is not in the table`);
}

/**
 * One role's running machine: the current state and the row being run. Both roles (and the
 * server's post-handshake authentication) dispatch and enter through it, so the check that
 * a handler only enters the states its row lists lives in one place.
 */
export class Machine<C, S extends NamedState> {
  private row: AnyTransition | undefined;

  constructor(
    private readonly table: TransitionTable<C, S>,
    private current: S,
    /** Appended to unexpected_message reasons ("of post-handshake authentication"). */
    private readonly where = '',
  ) {}

  get state(): S {
    return this.current;
  }

  /** Find the row for `msg` in the current state (or throw unexpected_message) and run it. */
  dispatch(machine: C, msg: HandshakeMessage, raw: Uint8Array): void {
    const state = this.current;
    const row = findTransition(this.table, state, msg, this.where);
    this.row = row;
    try {
      runTransition(row, machine, state, msg, raw);
    } finally {
      this.row = undefined;
    }
  }

  /**
   * Enter `next`, which the running row (if any) must allow. Returns the section to show
   * for the step: `rfc` when given, else the running row's.
   */
  enter(next: S, rfc?: string): string | undefined {
    checkNext(this.row, this.current.name, next.name);
    this.current = next;
    return rfc ?? this.row?.rfc;
  }
}

/** A certificate chain that has its leaf. */
export type Chain = readonly [Uint8Array, ...Uint8Array[]];

export function nonEmptyChain(list: readonly Uint8Array[]): Chain | undefined {
  const [leaf, ...rest] = list;
  return leaf === undefined ? undefined : [leaf, ...rest];
}
