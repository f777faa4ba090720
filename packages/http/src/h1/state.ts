/**
 * The HTTP/1.1 connection state rules for both roles in one place, as data (the shape of
 * h11's `_state.py`). Each side of a connection — client and server — has its own state;
 * an event sent or received by a side moves that side by the first table; the second
 * table holds the rules that fire on the pair of states (keep-alive, protocol switches,
 * the start of the next request/response cycle).
 *
 * One cycle is one request and its response. A server parses the next pipelined request
 * only when the cycle before it is over, which is what keeps responses in request order
 * (RFC 9112 §9.3.2).
 */

export type Role = 'client' | 'server';

export type SideState =
  | 'IDLE'
  /** Server only: a request head arrived, no final response yet. */
  | 'SEND_RESPONSE'
  | 'SEND_BODY'
  | 'DONE'
  /** Done, and the connection ends after this message (no keep-alive). */
  | 'MUST_CLOSE'
  | 'CLOSED'
  /** Client only: sent an Upgrade or CONNECT request; the server's answer decides. */
  | 'MIGHT_SWITCH_PROTOCOL'
  | 'SWITCHED_PROTOCOL'
  | 'ERROR';

export type MessageEvent = 'request' | 'informational' | 'response' | 'data' | 'end' | 'closed';

/** A qualifier on response events: whether they accept a proposed protocol switch. */
export type SwitchKind = 'upgrade' | 'connect';

export interface EventRule {
  role: Role;
  from: SideState;
  on: MessageEvent;
  /** For the server's answers: the switch this event accepts (101 to Upgrade, 2xx to CONNECT). */
  accepts?: SwitchKind;
  to: SideState;
  rfc: string;
}

/** Transitions a side makes on an event it sends (or, for the server, the client's request). */
export const EVENT_RULES: readonly EventRule[] = [
  { role: 'client', from: 'IDLE', on: 'request', to: 'SEND_BODY', rfc: 'RFC 9112 §3' },
  { role: 'client', from: 'IDLE', on: 'closed', to: 'CLOSED', rfc: 'RFC 9112 §9.6' },
  { role: 'client', from: 'SEND_BODY', on: 'data', to: 'SEND_BODY', rfc: 'RFC 9112 §6' },
  { role: 'client', from: 'SEND_BODY', on: 'end', to: 'DONE', rfc: 'RFC 9112 §6.3' },
  { role: 'client', from: 'DONE', on: 'closed', to: 'CLOSED', rfc: 'RFC 9112 §9.6' },
  { role: 'client', from: 'MUST_CLOSE', on: 'closed', to: 'CLOSED', rfc: 'RFC 9112 §9.6' },
  { role: 'client', from: 'CLOSED', on: 'closed', to: 'CLOSED', rfc: 'RFC 9112 §9.6' },
  // The server's side moves when the client's request head arrives: it now owes a response.
  { role: 'server', from: 'IDLE', on: 'request', to: 'SEND_RESPONSE', rfc: 'RFC 9112 §9.3' },
  { role: 'server', from: 'IDLE', on: 'closed', to: 'CLOSED', rfc: 'RFC 9112 §9.6' },
  // An error answer (400, 408, 431, ...) to a request that never parsed, then close.
  { role: 'server', from: 'IDLE', on: 'response', to: 'SEND_BODY', rfc: 'RFC 9112 §9.6' },
  { role: 'server', from: 'SEND_RESPONSE', on: 'informational', to: 'SEND_RESPONSE', rfc: 'RFC 9110 §15.2' },
  {
    role: 'server',
    from: 'SEND_RESPONSE',
    on: 'informational',
    accepts: 'upgrade',
    to: 'SWITCHED_PROTOCOL',
    rfc: 'RFC 9110 §15.2.2',
  },
  { role: 'server', from: 'SEND_RESPONSE', on: 'response', to: 'SEND_BODY', rfc: 'RFC 9112 §4' },
  {
    role: 'server',
    from: 'SEND_RESPONSE',
    on: 'response',
    accepts: 'connect',
    to: 'SWITCHED_PROTOCOL',
    rfc: 'RFC 9110 §9.3.6',
  },
  { role: 'server', from: 'SEND_BODY', on: 'data', to: 'SEND_BODY', rfc: 'RFC 9112 §6' },
  { role: 'server', from: 'SEND_BODY', on: 'end', to: 'DONE', rfc: 'RFC 9112 §6.3' },
  { role: 'server', from: 'DONE', on: 'closed', to: 'CLOSED', rfc: 'RFC 9112 §9.6' },
  { role: 'server', from: 'MUST_CLOSE', on: 'closed', to: 'CLOSED', rfc: 'RFC 9112 §9.6' },
  { role: 'server', from: 'CLOSED', on: 'closed', to: 'CLOSED', rfc: 'RFC 9112 §9.6' },
];

/** Facts about the current cycle that the state rules look at. */
export interface CycleFacts {
  /** Either side said it will not keep the connection (RFC 9112 §9.3). */
  keepAlive: boolean;
  /** The client proposed a switch that the server has not yet answered. */
  pendingSwitch: SwitchKind | undefined;
}

export interface StateRule {
  name: string;
  /** Applies when this holds; returns the new pair. */
  when(client: SideState, server: SideState, f: CycleFacts): boolean;
  to(client: SideState, server: SideState): [SideState, SideState];
  rfc: string;
}

const done = (s: SideState) => s === 'DONE';

/** Rules fired on the pair of states after every event, in order, until none applies. */
export const STATE_RULES: readonly StateRule[] = [
  {
    name: 'switch accepted',
    when: (c, s) => c === 'MIGHT_SWITCH_PROTOCOL' && s === 'SWITCHED_PROTOCOL',
    to: () => ['SWITCHED_PROTOCOL', 'SWITCHED_PROTOCOL'],
    rfc: 'RFC 9110 §7.8',
  },
  {
    name: 'switch proposed',
    when: (c, _s, f) => c === 'DONE' && f.pendingSwitch !== undefined,
    to: (_c, s) => ['MIGHT_SWITCH_PROTOCOL', s],
    rfc: 'RFC 9110 §7.8',
  },
  {
    name: 'switch declined',
    when: (c, _s, f) => c === 'MIGHT_SWITCH_PROTOCOL' && f.pendingSwitch === undefined,
    to: (_c, s) => ['DONE', s],
    rfc: 'RFC 9110 §7.8',
  },
  {
    name: 'no keep-alive (client)',
    when: (c, _s, f) => !f.keepAlive && c === 'DONE',
    to: (_c, s) => ['MUST_CLOSE', s],
    rfc: 'RFC 9112 §9.6',
  },
  {
    name: 'no keep-alive (server)',
    when: (_c, s, f) => !f.keepAlive && s === 'DONE',
    to: (c) => [c, 'MUST_CLOSE'],
    rfc: 'RFC 9112 §9.6',
  },
  {
    name: 'next cycle',
    when: (c, s, f) => done(c) && done(s) && f.keepAlive && f.pendingSwitch === undefined,
    to: () => ['IDLE', 'IDLE'],
    rfc: 'RFC 9112 §9.3',
  },
];

/**
 * False only where no rule of STATE_RULES can apply (checked against the table for every
 * pair and fact in state.test.ts): each rule needs the client MIGHT_SWITCH_PROTOCOL; or the
 * client DONE with a pending switch, without keep-alive, or with the server DONE too; or the
 * server DONE without keep-alive.
 */
export function mayApply(client: SideState, server: SideState, f: CycleFacts): boolean {
  if (client === 'MIGHT_SWITCH_PROTOCOL') return true;
  if (client === 'DONE') return f.pendingSwitch !== undefined || !f.keepAlive || server === 'DONE';
  return server === 'DONE' && !f.keepAlive;
}

/**
 * EVENT_RULES by role, state and event, for a lookup per event without building a key:
 * the row for (role, from, on, accepts), found once and cached in a Map per role and state.
 */
type RuleTable = Record<Role, Map<SideState, Map<MessageEvent, EventRule[]>>>;

const RULE_TABLE: RuleTable = (() => {
  const t: RuleTable = { client: new Map(), server: new Map() };
  for (const r of EVENT_RULES) {
    const byState = t[r.role];
    let byEvent = byState.get(r.from);
    if (!byEvent) byState.set(r.from, (byEvent = new Map()));
    let rows = byEvent.get(r.on);
    if (!rows) byEvent.set(r.on, (rows = []));
    rows.push(r);
  }
  return t;
})();

/**
 * A connection's CycleFacts, made with `new` rather than as an object literal: V8 tracks
 * each object literal's allocation site and, once the objects of a site survive a few
 * scavenges (a server's long keep-alive connections), allocates every later one straight
 * into the old generation — for every short Connection: close connection after that too,
 * which then costs a full mark-compact to reclaim (measured: GC was half the CPU per
 * in-memory Connection: close request). Instances of a class are not pretenured that way.
 */
class Facts implements CycleFacts {
  keepAlive = true;
  pendingSwitch: SwitchKind | undefined = undefined;
}

export class ProtocolStateError extends Error {
  override readonly name = 'ProtocolStateError';
}

/** Both sides' states, moved only through the tables above. */
export class ConnectionState {
  client: SideState = 'IDLE';
  server: SideState = 'IDLE';
  readonly facts: CycleFacts = new Facts();
  /** Completed cycles (request and response both done, connection kept). */
  cycles = 0;
  /** Every change, for traces: [side, from, to, rfc]. */
  onChange: ((role: Role, from: SideState, to: SideState, rfc: string) => void) | undefined;

  get(role: Role): SideState {
    return role === 'client' ? this.client : this.server;
  }

  /** Apply `on` to `role`'s side; throws ProtocolStateError when the table has no row for it. */
  process(role: Role, on: MessageEvent, accepts?: SwitchKind): void {
    const from = this.get(role);
    let rule: EventRule | undefined;
    const rows = RULE_TABLE[role].get(from)?.get(on);
    if (rows) for (let i = 0; i < rows.length; i++) if (rows[i]?.accepts === accepts) rule = rows[i];
    if (!rule) throw new ProtocolStateError(`${role} cannot ${on} in state ${from}`);
    // The client's request also moves the server: it now owes a response.
    if (role === 'client' && on === 'request') this.process('server', 'request');
    this.set(role, rule.to, rule.rfc);
    if (accepts) this.facts.pendingSwitch = undefined;
    this.settle();
  }

  /** A side gave up: protocol error (RFC 9112 §9.6 closes the connection after one). */
  fail(role: Role): void {
    this.set(role, 'ERROR', 'RFC 9112 §9.6');
  }

  proposeSwitch(kind: SwitchKind): void {
    this.facts.pendingSwitch = kind;
  }

  /** The server declines a proposed switch by answering normally. */
  declineSwitch(): void {
    if (this.facts.pendingSwitch === undefined) return;
    this.facts.pendingSwitch = undefined;
    this.settle();
  }

  /**
   * Both sides switch at once: the Node-style server hands the stream to an 'upgrade' or
   * 'connect' listener as soon as the request head is parsed, and that listener answers.
   */
  switchNow(): void {
    this.facts.pendingSwitch = undefined;
    this.set('client', 'SWITCHED_PROTOCOL', 'RFC 9110 §7.8');
    this.set('server', 'SWITCHED_PROTOCOL', 'RFC 9110 §7.8');
  }

  noKeepAlive(): void {
    this.facts.keepAlive = false;
    this.settle();
  }

  private set(role: Role, to: SideState, rfc: string): void {
    const from = this.get(role);
    if (from === to) return;
    if (role === 'client') this.client = to;
    else this.server = to;
    this.onChange?.(role, from, to, rfc);
  }

  private settle(): void {
    for (let guard = 0; guard < 8; guard++) {
      // most events of a cycle leave a pair no rule matches: no scan for them
      if (!mayApply(this.client, this.server, this.facts)) return;
      let rule: StateRule | undefined;
      for (const r of STATE_RULES) {
        if (r.when(this.client, this.server, this.facts)) {
          rule = r;
          break;
        }
      }
      if (!rule) return;
      const [c, s] = rule.to(this.client, this.server);
      if (c === this.client && s === this.server) return;
      if (rule.name === 'next cycle') this.cycles++;
      this.set('client', c, rule.rfc);
      this.set('server', s, rule.rfc);
    }
  }
}
