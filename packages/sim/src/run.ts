import type { VirtualClock } from '@stepwire/wire';

/**
 * What a simulation is still waiting for when it stops: armed timers per host and layer,
 * open sockets. Built by the network at the moment of the error, so it names exactly what
 * kept (or failed to keep) the run going.
 */
export interface PendingReport {
  /** Simulated time of the report, in ms. */
  t: number;
  /** Timers armed on the wire (packets in flight, delayed or queued by impairments). */
  wireTimers: number;
  hosts: PendingHost[];
}

export interface PendingHost {
  name: string;
  /** Every timer armed through this host's clock (IP, UDP, TCP), and TCP's share of them. */
  timers: { total: number; tcp: number };
  /** TCP connections as 'local → remote STATE'. */
  connections: string[];
  /** TCP listeners as 'address:port'. */
  listeners: string[];
  /** Bound UDP sockets as 'address:port'. */
  udpSockets: string[];
}

/** True when the report holds nothing: no timer, no connection, no listener, no socket. */
export function isIdle(r: PendingReport): boolean {
  return (
    r.wireTimers === 0 &&
    r.hosts.every(
      (h) =>
        h.timers.total === 0 &&
        h.connections.length === 0 &&
        h.listeners.length === 0 &&
        h.udpSockets.length === 0,
    )
  );
}

export function formatPending(r: PendingReport): string {
  const lines = [`  wire: ${r.wireTimers} timer(s) armed (packets in flight)`];
  for (const h of r.hosts) {
    lines.push(
      `  host ${h.name}: ${h.timers.total} timer(s) armed (tcp ${h.timers.tcp}, ip/udp ${h.timers.total - h.timers.tcp})`,
    );
    for (const c of h.connections) lines.push(`    tcp ${c}`);
    for (const l of h.listeners) lines.push(`    tcp listening on ${l}`);
    for (const u of h.udpSockets) lines.push(`    udp socket bound to ${u}`);
  }
  return lines.join('\n');
}

/**
 * Nothing left to do on the virtual clock (no timer armed anywhere) while the awaited
 * operation is still pending: no packet will ever move again, so waiting is pointless.
 */
export class SimulationStalled extends Error {
  override readonly name = 'SimulationStalled';
  constructor(
    readonly what: string,
    readonly pending: PendingReport,
  ) {
    super(
      `simulation stalled at t=${pending.t} ms: ${what} is still pending but no timer is armed anywhere, so nothing can happen any more. Still open:\n${formatPending(pending)}`,
    );
  }
}

/** The run reached its limit of simulated time with the awaited operation still pending. */
export class SimulationTimeLimit extends Error {
  override readonly name = 'SimulationTimeLimit';
  constructor(
    readonly what: string,
    readonly limitMs: number,
    readonly pending: PendingReport,
  ) {
    super(
      `time limit: ${what} still pending after ${limitMs} ms of simulated time (t=${pending.t} ms; raise it with { limit }). Still pending:\n${formatPending(pending)}`,
    );
  }
}

/** What `run` waits for: a promise, a condition, a span of simulated time, or (nothing) idleness. */
export type RunTarget<T> = Promise<T> | (() => boolean) | number | undefined;

export interface RunOptions {
  /** Simulated milliseconds after which the run fails with SimulationTimeLimit; default 600 000. */
  limit?: number;
  /**
   * Event-loop turns to wait, when no timer is armed, for user code (setImmediate chains,
   * I/O) to arm one before calling the run stalled; default 20.
   */
  settleTurns?: number;
}

/** One turn of Node's event loop: nextTick and promise jobs drain, then setImmediate callbacks run. */
export function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The async run loop on a virtual clock. Between timers it yields to Node's event loop, so
 * stream callbacks (process.nextTick), promise continuations, setImmediate and node:http's
 * parser all run exactly as they would on real sockets — only time is simulated.
 *
 * Order within one step: fire every timer due at the earliest deadline, then one event-loop
 * turn. When no timer is armed, a few more turns are given before declaring a stall, since
 * user code may be about to send something from a setImmediate chain.
 */
export async function runVirtual<T>(
  clock: VirtualClock,
  target: RunTarget<T>,
  opts: RunOptions,
  report: () => PendingReport,
): Promise<T | undefined> {
  const limit = opts.limit ?? 600_000;
  const settleTurns = opts.settleTurns ?? 20;
  const start = clock.now();
  const deadline = start + limit;
  let settled = false;
  let watched: Promise<T> | undefined;
  let done: () => boolean;
  let what: string;
  if (typeof target === 'number') {
    const until = start + target;
    what = `the run to t=${until} ms`;
    // Ends inside the loop, once every timer due by `until` has fired.
    done = () => false;
  } else if (typeof target === 'function') {
    what = 'the condition given to run()';
    done = target;
  } else if (target === undefined) {
    what = 'the run until idle';
    done = () => clock.nextTimerAt() === undefined;
  } else {
    what = 'the awaited promise';
    watched = target.finally(() => {
      settled = true;
    });
    // The caller gets the rejection from our return value, not as an unhandled one.
    watched.catch(() => {});
    done = () => settled;
  }
  await turn();
  while (!done()) {
    let at = clock.nextTimerAt();
    for (let i = 0; at === undefined && i < settleTurns && !done(); i++) {
      await turn();
      at = clock.nextTimerAt();
    }
    if (done()) break;
    if (typeof target === 'number') {
      const until = start + target;
      if (at === undefined || at > until) {
        clock.advanceTo(until);
        break;
      }
    }
    if (at === undefined) {
      // Running until idle: no timer left is exactly success.
      if (target === undefined) break;
      throw new SimulationStalled(what, report());
    }
    if (at > deadline) throw new SimulationTimeLimit(what, limit, report());
    clock.advanceTo(at);
    await turn();
  }
  return watched ? await watched : undefined;
}
