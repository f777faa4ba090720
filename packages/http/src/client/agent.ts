import net from 'node:net';
import type { Duplex } from 'node:stream';
import { type ConnectOptions as TlsConnectOptions, connect as tlsConnect } from '@stepwire/tls';
import { type Clock, RealClock, type Timer, TimerGroup, type TraceBus } from '@stepwire/wire';
import type { Http1Limits } from '../h1/connection.ts';
import {
  type Http2Session,
  type Http2Stream,
  connect as h2connect,
  type SessionOptions,
} from '../h2/session.ts';
import { ClientConnection } from './connection.ts';

/** Where connections of a pool go: scheme, host, port (RFC 6454 §4, the origin triple). */
export interface Origin {
  protocol: 'http:' | 'https:';
  hostname: string;
  port: number;
}

export function originKey(o: Origin): string {
  const host = o.hostname.includes(':') ? `[${o.hostname}]` : o.hostname;
  return `${o.protocol}//${host}:${o.port}`;
}

export interface AgentOptions {
  /** Keep connections open for reuse (RFC 9112 §9.3). Default true. */
  keepAlive?: boolean;
  /** Connections per origin, in use or idle; requests past it wait in a queue. Default Infinity, as node:http. */
  maxSockets?: number;
  /** Idle connections kept per origin. Default 256. */
  maxFreeSockets?: number;
  /** An idle connection is closed after this many ms. Default 4000 (undici's keep-alive timeout). */
  idleTimeout?: number;
  /** Requests allowed to wait for a connection per origin; past it they fail with ENOBUFS-like errors. Default Infinity. */
  maxQueue?: number;
  /**
   * Opens a byte stream to an origin. Default: node:net.connect to the origin's host and
   * port (the kernel; the safety guard keeps it on loopback); for https, @stepwire/tls over it.
   * Pass our TCP's connect to run on the simulated network.
   */
  connect?: (origin: Origin) => Duplex;
  /** TLS options for https origins (ca, servername, rejectUnauthorized, ...). */
  tls?: Omit<TlsConnectOptions, 'socket'>;
  /** Limits on what a server may send (head size, field count, body size); HTTP/1.1 core defaults, like Node's. */
  limits?: Partial<Http1Limits>;
  /**
   * HTTP/2: true (the default) offers ALPN ['h2', 'http/1.1'] to https origins and uses one
   * multiplexed session per origin when the server picks h2 (RFC 9113 §3.2); false keeps
   * HTTP/1.1; 'prior-knowledge' also speaks h2c to http origins (RFC 9113 §3.3).
   */
  http2?: Http2Mode;
  /** Settings and limits of the HTTP/2 sessions. */
  http2Session?: Omit<SessionOptions, 'clock' | 'trace'>;
  clock?: Clock;
  trace?: TraceBus;
  /** Host name in trace events. */
  traceHost?: string;
}

export type Http2Mode = boolean | 'prior-knowledge';

/** What carries a request: a connection of the HTTP/1.1 pool, or the origin's HTTP/2 session. */
export type Carrier = { kind: 'h1'; conn: ClientConnection } | { kind: 'h2'; session: Http2Session };

/** The first connection to an origin, once ALPN has chosen. */
type Probe = { session: Http2Session } | { socket: Duplex | undefined };

interface Waiter {
  give: (c: ClientConnection) => void;
  fail: (e: Error) => void;
}

interface Pool {
  origin: Origin;
  active: Set<ClientConnection>;
  idle: ClientConnection[];
  queue: Waiter[];
  timers: Map<ClientConnection, Timer>;
  created: number;
  reused: number;
  queuedTotal: number;
  maxQueued: number;
  idleClosed: number;
}

export interface PoolStats {
  active: number;
  idle: number;
  queued: number;
  /** Connections opened, requests that reused a kept connection, requests that had to wait. */
  created: number;
  reused: number;
  queuedTotal: number;
  maxQueued: number;
  idleClosed: number;
}

export interface AgentStats {
  origins: Record<string, PoolStats>;
  /** Idle timers armed across all pools: back to 0 when nothing is idle. */
  timersArmed: number;
  /** HTTP/2 sessions open now, and opened in all. */
  http2Sessions: number;
  http2SessionsCreated: number;
  /** HTTP/2 requests a server refused unprocessed that were sent again (RFC 9113 §8.7). */
  http2Retried: number;
}

/**
 * A connection pool per origin, like node:http's Agent and undici's Pool: at most
 * `maxSockets` connections, idle ones kept for `idleTimeout` ms, requests queued in order
 * when every connection is busy.
 */
export class Agent {
  readonly keepAlive: boolean;
  readonly maxSockets: number;
  readonly maxFreeSockets: number;
  readonly idleTimeout: number;
  readonly maxQueue: number;
  private readonly pools = new Map<string, Pool>();
  /** One HTTP/2 session per origin (RFC 9113 §9.1.1: a client SHOULD NOT open more than one). */
  private readonly sessions = new Map<string, Http2Session>();
  /** A first TLS connection whose ALPN answer the origin's other requests wait for. */
  private readonly probes = new Map<string, Promise<Probe>>();
  /** Origins whose server answered ALPN without h2: they use the HTTP/1.1 pool. */
  private readonly h1Origins = new Set<string>();
  private sessionsCreated = 0;
  private http2Retried = 0;
  /** Requests in flight on each session, and the idle timer of a session with none. */
  private readonly sessionBusy = new Map<Http2Session, { streams: number; idle: Timer | undefined }>();
  private readonly timers: TimerGroup;
  private destroyed = false;

  constructor(readonly options: AgentOptions = {}) {
    this.keepAlive = options.keepAlive ?? true;
    this.maxSockets = options.maxSockets ?? Number.POSITIVE_INFINITY;
    this.maxFreeSockets = options.maxFreeSockets ?? 256;
    this.idleTimeout = options.idleTimeout ?? 4000;
    this.maxQueue = options.maxQueue ?? Number.POSITIVE_INFINITY;
    this.timers = new TimerGroup(options.clock ?? new RealClock());
  }

  now(): number {
    return this.timers.now();
  }

  private trace(summary: string, fields: Record<string, unknown>): void {
    this.traceEvent('local', summary, fields, 'RFC 9112 §9.3');
  }

  /** A trace event on the agent's bus (requests and responses of its connections use it too). */
  traceEvent(
    dir: 'in' | 'out' | 'local',
    summary: string,
    fields: Record<string, unknown>,
    rfc: string,
  ): void {
    const t = this.options.trace;
    if (!t?.enabled) return;
    t.emit({
      t: this.timers.now(),
      host: this.options.traceHost ?? 'client',
      layer: 'http',
      dir,
      summary,
      fields,
      rfc,
    });
  }

  private pool(origin: Origin): Pool {
    const key = originKey(origin);
    let p = this.pools.get(key);
    if (!p) {
      p = {
        origin,
        active: new Set(),
        idle: [],
        queue: [],
        timers: new Map(),
        created: 0,
        reused: 0,
        queuedTotal: 0,
        maxQueued: 0,
        idleClosed: 0,
      };
      this.pools.set(key, p);
    }
    return p;
  }

  /** A timer on the agent's clock, counted in stats().timersArmed (request timeouts use it). */
  setTimer(ms: number, fn: () => void): Timer {
    return this.timers.setTimer(this.timers.now() + ms, fn);
  }

  /**
   * Get a connection for `origin`: an idle one, a new one, or a place in the queue. With
   * `fresh`, idle connections are skipped (a retry after a kept connection turned out dead).
   */
  acquire(origin: Origin, o: { fresh?: boolean } = {}): Promise<ClientConnection> {
    if (this.destroyed) return Promise.reject(new Error('agent destroyed'));
    const p = this.pool(origin);
    const key = originKey(origin);
    if (o.fresh) {
      // Close the idle ones too: they are as old as the one that just failed.
      for (const c of p.idle.splice(0)) {
        p.timers.get(c)?.cancel();
        p.timers.delete(c);
        c.close();
      }
    }
    // Most recently used first: its server is least likely to have timed it out.
    for (let c = p.idle.pop(); c; c = p.idle.pop()) {
      p.timers.get(c)?.cancel();
      p.timers.delete(c);
      if (c.dead) continue;
      refSocket(c, true);
      p.active.add(c);
      p.reused++;
      this.trace(`pool ${key}: reuse connection #${c.id}`, {
        origin: key,
        connection: c.id,
        active: p.active.size,
      });
      return Promise.resolve(c);
    }
    if (p.active.size + p.idle.length < this.maxSockets) {
      try {
        return Promise.resolve(this.open(p));
      } catch (e) {
        // connect() refused at once (a bad address, or the loopback safety guard).
        return Promise.reject(e);
      }
    }
    if (p.queue.length >= this.maxQueue) {
      return Promise.reject(
        Object.assign(new Error(`request queue for ${key} is full`), { code: 'ENOBUFS' }),
      );
    }
    return new Promise((give, fail) => {
      p.queue.push({ give, fail });
      p.queuedTotal++;
      p.maxQueued = Math.max(p.maxQueued, p.queue.length);
      this.trace(`pool ${key}: all ${p.active.size} connections busy, queued (${p.queue.length} waiting)`, {
        origin: key,
        queued: p.queue.length,
      });
    });
  }

  private open(p: Pool): ClientConnection {
    const o = p.origin;
    const socket = this.connectTo(o);
    const c = new ClientConnection(socket, () => this.timers.now(), this.options.limits);
    p.created++;
    p.active.add(c);
    const key = originKey(o);
    this.trace(`pool ${key}: new connection #${c.id} (${p.active.size + p.idle.length}/${this.maxSockets})`, {
      origin: key,
      connection: c.id,
    });
    c.onReusable = () => this.release(p, c);
    c.onDead = () => this.remove(p, c);
    return c;
  }

  private connectTo(o: Origin, offerH2 = false): Duplex {
    if (this.options.connect) {
      const s = this.options.connect(o);
      // As node:http's client does on every socket: a request's head and body are separate
      // writes, and with Nagle on the body waits out the server's delayed ACK (40+ ms).
      (s as Partial<Pick<net.Socket, 'setNoDelay'>>).setNoDelay?.(true);
      return o.protocol === 'https:' ? tlsConnect({ ...this.tlsOptions(o, offerH2), socket: s }) : s;
    }
    // Through net.connect, so the loopback safety guard sees every kernel connection.
    const s = net.connect({ host: o.hostname, port: o.port });
    s.setNoDelay(true);
    return o.protocol === 'https:' ? tlsConnect({ ...this.tlsOptions(o, offerH2), socket: s }) : s;
  }

  private tlsOptions(o: Origin, offerH2: boolean): Omit<TlsConnectOptions, 'socket'> {
    const t = { host: o.hostname, ALPNProtocols: ['http/1.1'], ...(this.options.tls ?? {}) };
    // RFC 9113 §3.2: "h2" in the ALPN offer; http/1.1 after it so a server without h2 still answers.
    return offerH2 ? { ...t, ALPNProtocols: ['h2', 'http/1.1'] } : t;
  }

  /**
   * The carrier for a request: the origin's HTTP/2 session when the mode and the server allow
   * it (every request shares it, no maxSockets queue), else a connection of the HTTP/1.1 pool.
   * The first request to an https origin opens the connection whose ALPN answer decides;
   * requests made meanwhile wait for that answer rather than opening connections of their own.
   */
  carrier(origin: Origin, mode: Http2Mode = this.options.http2 ?? true): Promise<Carrier> {
    if (this.destroyed) return Promise.reject(new Error('agent destroyed'));
    const key = originKey(origin);
    const h2 = origin.protocol === 'https:' ? mode !== false : mode === 'prior-knowledge';
    const viaPool = () => this.acquire(origin).then((conn): Carrier => ({ kind: 'h1', conn }));
    if (!h2 || this.h1Origins.has(key)) return viaPool();
    const open = this.sessions.get(key);
    if (open) return Promise.resolve({ kind: 'h2', session: open });
    if (origin.protocol === 'http:') {
      // RFC 9113 §3.3: prior knowledge — the preface goes out at once, no negotiation.
      try {
        return Promise.resolve({ kind: 'h2', session: this.startSession(origin, this.connectTo(origin)) });
      } catch (e) {
        return Promise.reject(e);
      }
    }
    let probe = this.probes.get(key);
    if (!probe) {
      probe = this.probe(origin);
      this.probes.set(key, probe);
      const done = () => this.probes.delete(key);
      probe.then(done, done);
    }
    return probe.then((r): Carrier | Promise<Carrier> => {
      if ('session' in r) return { kind: 'h2', session: r.session };
      // The server chose HTTP/1.1: the probe's connection joins the pool for one waiter.
      const s = r.socket;
      r.socket = undefined;
      return s ? { kind: 'h1', conn: this.adoptSocket(origin, s) } : viaPool();
    });
  }

  private probe(o: Origin): Promise<Probe> {
    const key = originKey(o);
    return new Promise((resolve, reject) => {
      let s: Duplex;
      try {
        s = this.connectTo(o, true);
      } catch (e) {
        reject(e);
        return;
      }
      const onError = (e: Error) => reject(e);
      const onClose = () => reject(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
      s.once('error', onError);
      s.once('close', onClose);
      s.once('secureConnect', () => {
        s.off('error', onError);
        s.off('close', onClose);
        const alpn = (s as { alpnProtocol?: string | false }).alpnProtocol;
        this.trace(`origin ${key}: ALPN ${alpn || '(none)'}`, { origin: key, alpn: alpn || null });
        if (alpn === 'h2') {
          resolve({ session: this.startSession(o, s) });
          return;
        }
        this.h1Origins.add(key);
        // Until a pool connection listens, an error must not go unheard.
        s.once('error', () => {});
        resolve({ socket: s });
      });
    });
  }

  private startSession(o: Origin, socket: Duplex): Http2Session {
    const key = originKey(o);
    const host = o.hostname.includes(':') ? `[${o.hostname}]` : o.hostname;
    const session = h2connect(`${o.protocol}//${host}:${o.port}`, {
      ...(this.options.http2Session ?? {}),
      ...(this.options.clock ? { clock: this.options.clock } : {}),
      ...(this.options.trace ? { trace: this.options.trace } : {}),
      ...(this.options.traceHost ? { hostName: this.options.traceHost } : {}),
      createConnection: () => socket,
    });
    this.sessionsCreated++;
    this.sessions.set(key, session);
    this.sessionBusy.set(session, { streams: 0, idle: undefined });
    this.trace(`origin ${key}: HTTP/2 session`, { origin: key });
    // RFC 9113 §6.8: after GOAWAY no new streams go on this session; in-flight ones finish.
    const forget = () => {
      if (this.sessions.get(key) === session) this.sessions.delete(key);
      if (session.closed) {
        this.sessionBusy.get(session)?.idle?.cancel();
        this.sessionBusy.delete(session);
      }
    };
    session.retryRefused = (stream) => this.resend(o, stream);
    session.on('goaway', forget);
    session.on('connectionClose', forget);
    session.on('close', forget);
    // Its streams carry the error to their requests.
    session.on('error', forget);
    return session;
  }

  /**
   * RFC 9113 §8.7: a request the server did not process — above the last stream id of its
   * GOAWAY (§6.8), or reset with REFUSED_STREAM — may be sent again. It goes on the
   * origin's next session (a new connection once this one is going away); the stream the
   * request holds moves there with its headers and kept body.
   */
  private resend(o: Origin, stream: Http2Stream): void {
    const key = originKey(o);
    const from = stream.session;
    this.trace(
      `origin ${key}: HTTP/2 request refused unprocessed (attempt ${stream.retries}), sending it again`,
      {
        origin: key,
        stream: stream.id,
      },
    );
    // The mode that gave this origin a session: prior knowledge for http, ALPN for https.
    this.carrier(o, o.protocol === 'http:' ? 'prior-knowledge' : true).then(
      (c) => {
        if (c.kind === 'h1') {
          // The server stopped offering h2 meanwhile: this stream cannot move to HTTP/1.1.
          c.conn.close();
          stream.failRetry();
          return;
        }
        if (c.session === from || c.session.closed) {
          stream.failRetry();
          return;
        }
        this.http2Retried++;
        this.sessionUse(c.session, 1);
        stream.once('close', () => this.sessionUse(c.session, -1));
        stream.migrate(c.session);
      },
      (e: Error) => stream.failRetry(e),
    );
  }

  /**
   * A request starts (+1) or ends (-1) on `session`. As the HTTP/1.1 pool does with idle
   * connections: a session with no request in flight does not keep the process alive, and
   * is closed (GOAWAY NO_ERROR) after `idleTimeout` ms.
   */
  sessionUse(session: Http2Session, delta: 1 | -1): void {
    const b = this.sessionBusy.get(session);
    if (!b || session.closed) return;
    b.streams += delta;
    b.idle?.cancel();
    b.idle = undefined;
    refDuplex(session.socket, b.streams > 0);
    if (b.streams > 0) return;
    if (!this.keepAlive) {
      this.retire(session);
      return;
    }
    b.idle = this.timers.setTimer(this.timers.now() + this.idleTimeout, () => {
      b.idle = undefined;
      this.trace(`HTTP/2 session idle for ${this.idleTimeout} ms, closing`, {});
      this.retire(session);
    });
  }

  /** No new requests on `session`; it closes gracefully (GOAWAY NO_ERROR, RFC 9113 §6.8). */
  private retire(session: Http2Session): void {
    for (const [k, v] of this.sessions) if (v === session) this.sessions.delete(k);
    session.close();
  }

  /** A connected socket (the ALPN probe's) as a connection of the HTTP/1.1 pool. */
  private adoptSocket(origin: Origin, socket: Duplex): ClientConnection {
    const p = this.pool(origin);
    const c = new ClientConnection(socket, () => this.timers.now(), this.options.limits);
    p.created++;
    p.active.add(c);
    c.onReusable = () => this.release(p, c);
    c.onDead = () => this.remove(p, c);
    return c;
  }

  /** An exchange finished and the connection may carry another. */
  private release(p: Pool, c: ClientConnection): void {
    const key = originKey(p.origin);
    const next = p.queue.shift();
    if (next && this.keepAlive) {
      p.reused++;
      this.trace(`pool ${key}: connection #${c.id} to the next queued request (${p.queue.length} waiting)`, {
        origin: key,
        connection: c.id,
      });
      next.give(c);
      return;
    }
    if (next) p.queue.unshift(next);
    p.active.delete(c);
    if (!this.keepAlive || this.destroyed || p.idle.length >= this.maxFreeSockets) {
      c.close();
      return;
    }
    p.idle.push(c);
    // As node:http's agent: an idle kept connection does not keep the process alive.
    refSocket(c, false);
    this.trace(`pool ${key}: connection #${c.id} idle`, {
      origin: key,
      connection: c.id,
      idle: p.idle.length,
    });
    p.timers.set(
      c,
      this.timers.setTimer(this.timers.now() + this.idleTimeout, () => {
        p.timers.delete(c);
        p.idleClosed++;
        this.trace(`pool ${key}: connection #${c.id} idle for ${this.idleTimeout} ms, closing`, {
          origin: key,
          connection: c.id,
        });
        c.close();
      }),
    );
  }

  /** A connection died (closed by either side, error, upgrade): free its slot for the queue. */
  private remove(p: Pool, c: ClientConnection): void {
    p.active.delete(c);
    const i = p.idle.indexOf(c);
    if (i >= 0) p.idle.splice(i, 1);
    p.timers.get(c)?.cancel();
    p.timers.delete(c);
    if (this.destroyed) return;
    while (p.queue.length > 0 && p.active.size + p.idle.length < this.maxSockets) {
      const w = p.queue.shift();
      if (!w) break;
      try {
        w.give(this.open(p));
      } catch (e) {
        w.fail(e as Error);
      }
    }
  }

  stats(): AgentStats {
    const origins: Record<string, PoolStats> = {};
    for (const [k, p] of this.pools) {
      origins[k] = {
        active: p.active.size,
        idle: p.idle.length,
        queued: p.queue.length,
        created: p.created,
        reused: p.reused,
        queuedTotal: p.queuedTotal,
        maxQueued: p.maxQueued,
        idleClosed: p.idleClosed,
      };
    }
    return {
      origins,
      timersArmed: this.timers.armed,
      http2Sessions: this.sessions.size,
      http2SessionsCreated: this.sessionsCreated,
      http2Retried: this.http2Retried,
    };
  }

  /** Close idle connections now (node:http's agent.destroy closes all). */
  closeIdle(): void {
    for (const p of this.pools.values()) for (const c of [...p.idle]) c.close();
    for (const [s, b] of [...this.sessionBusy]) if (b.streams === 0) this.retire(s);
  }

  destroy(): void {
    this.destroyed = true;
    for (const [s, b] of [...this.sessionBusy]) {
      b.idle?.cancel();
      s.destroy();
    }
    this.sessionBusy.clear();
    this.sessions.clear();
    for (const p of this.pools.values()) {
      for (const w of p.queue.splice(0)) w.fail(new Error('agent destroyed'));
      for (const c of [...p.idle, ...p.active]) c.close();
    }
  }
}

/** ref()/unref() the kernel socket under a connection (under TLS too), when there is one. */
function refSocket(c: ClientConnection, on: boolean): void {
  refDuplex(c.socket, on);
}

function refDuplex(socket: Duplex, on: boolean): void {
  type Refable = { ref?: () => unknown; unref?: () => unknown; transport?: unknown };
  let s = socket as unknown as Refable | undefined;
  for (let depth = 0; s && depth < 3; depth++) {
    if (typeof s.unref === 'function' && typeof s.ref === 'function') {
      if (on) s.ref();
      else s.unref();
      return;
    }
    s = s.transport as Refable | undefined;
  }
}

let globalAgentValue: Agent | undefined;
/** The agent used when a request names none (like http.globalAgent). */
export function globalAgent(): Agent {
  globalAgentValue ??= new Agent();
  return globalAgentValue;
}
