/**
 * `stepwire serve --tun --workers N`: one whole stack per worker thread, each on its own
 * queue of one IFF_MULTI_QUEUE TUN device — SO_REUSEPORT sharding applied to a userland
 * stack. The kernel picks the queue of every packet it sends to the device by a symmetric
 * flow hash (tun_automq_select_queue), and remembers which queue last wrote each flow, so a
 * TCP connection, a QUIC connection on one path or a ping's id lives in one worker from its
 * first packet to its last.
 *
 * What is shared and what is partitioned:
 * - The address and every service: each worker runs the same set with the same TLS
 *   credentials (PEM text crosses to the threads; key objects are made there).
 * - TCP secrets (RFC 6528 ISN, RFC 4987 SYN cookies, RFC 7413 Fast Open) and the HTTPS
 *   session ticket keys (RFC 8446 §4.6.1): the same in every worker, and one clock origin,
 *   so a cookie or ticket minted by one stack is good in any other — a client's next
 *   connection has a new source port and so, likely, another queue. (The HTTP/3 service
 *   makes a TLS server per QUIC connection with its own ticket key, so its tickets do not
 *   resume anywhere yet, with or without workers.)
 * - ICMP echo is stateless: whichever worker a ping reaches answers it.
 * - Connection state is partitioned and cannot follow a flow to another queue: an ICMP
 *   error about a TCP flow (PMTU) may hash to another worker, which drops it as unknown
 *   (`tcp.icmp.no-connection`); a QUIC client that migrates (new address or port, RFC 9000
 *   §9) hashes to another queue whose stack has never seen its connection IDs, so
 *   migration across queues is not followed.
 * - Counters: every worker reports its own on an interval and at close; this thread sums
 *   them. Trace lines carry the worker's number.
 *
 * The main thread makes and removes the namespace, configures the kernel side, prints, and
 * never touches a packet.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { NETNS_DEFAULTS, netnsDown, netnsExists } from '@stepwire/link';
import { UsageError } from '../errors.ts';
import type { TlsIdentity } from '../services/https.ts';
import { MAX_WORKERS } from './max-workers.ts';

/** What a worker thread is started with (structured-clone data only: PEMs, not key objects). */
export interface WorkerInit {
  index: number;
  netns: string;
  device: string;
  mtu: number;
  /** Epoch ms every worker's clock counts from (SYN cookie periods, merged trace times). */
  clockOrigin: number;
  secrets: {
    isnSecret: Uint8Array;
    synCookieSecret: Uint8Array;
    fastOpenKey: Uint8Array;
    /** HTTPS session ticket keys (RFC 8446 §4.6.1 tickets sealed under them). */
    ticketKeys: Uint8Array;
  };
  identity: TlsIdentity;
  trace: boolean;
  keylog: boolean;
  pcap?: string;
  qlogDir?: string;
  offloads?: boolean;
  reportIntervalMs: number;
}

/** One worker's counters: packets on its queue, drops, TCP connections its listeners accepted. */
export interface WorkerReport {
  index: number;
  rx: number;
  tx: number;
  dropped: number;
  accepted: number;
  counters: Record<string, number>;
}

export type FromWorker =
  | { type: 'ready'; index: number; mtu: number }
  | { type: 'line'; index: number; text: string }
  | { type: 'keylog'; line: string }
  | { type: 'report'; report: WorkerReport }
  | { type: 'stats'; index: number; stats: unknown; report: WorkerReport }
  | { type: 'closed'; report: WorkerReport }
  | { type: 'fatal'; message: string; report: WorkerReport };

export type ToWorker = { type: 'stats' } | { type: 'close' };

export interface TunWorkersOptions {
  netns: string;
  workers: number;
  identity: TlsIdentity;
  /** Ladder lines of every worker, prefixed with its number. */
  trace?: boolean;
  /** Receives every TLS key log line of every worker. */
  keylog?: (line: string) => void;
  /** Each worker records its queue to `<pcap without .pcap>.w<i>.pcap`. */
  pcap?: string;
  qlogDir?: string;
  /** Open every queue with offloads (IFF_VNET_HDR; see TunSessionOptions.offloads). */
  offloads?: boolean;
  print: (line: string) => void;
  /** How often workers send their counters; default 1000 ms. */
  reportIntervalMs?: number;
}

const MTU = 1500;
const START_TIMEOUT_MS = 20_000;
const CLOSE_TIMEOUT_MS = 5_000;

/**
 * Workers make their namespace themselves: `stepwire netns up` makes a single-queue device,
 * and the kernel refuses to mix queue flags on one device (EINVAL).
 */
export function checkNamespaceFree(netns: string): void {
  if (netnsExists(netns)) {
    throw new UsageError(
      `namespace '${netns}' exists: --workers makes its own (a multi-queue device); remove it with 'stepwire netns down --netns ${netns}' or choose another --netns`,
    );
  }
}

/** `serve.pcap` → `serve.w1.pcap`: one file per queue (a pcap writer is one thread's). */
export function workerPcapPath(pcap: string, index: number): string {
  const m = /^(.*?)(\.pcap)?$/.exec(pcap);
  return `${m?.[1] ?? pcap}.w${index}.pcap`;
}

/** A worker's failure: a code starting with 'E' makes the CLI print one line and exit 1. */
function workerError(message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_SERVE_WORKER' });
}

const ip = (args: string[]): void => {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
  } catch (e) {
    const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`ip ${args.join(' ')}: ${stderr || (e as Error).message}`);
  }
};

/**
 * How to start the worker file: in the workspace the sources are TypeScript run through
 * tsx, whose loader a new thread must register again; the built package runs the .js.
 */
function startWorker(init: WorkerInit): Worker {
  const ts = import.meta.url.endsWith('.ts');
  const entry = new URL(ts ? './worker-thread.ts' : './worker-thread.js', import.meta.url);
  // trackUnmanagedFds off: the queue's fd comes from open(2) through koffi, not fs.open, and
  // TunLink closes it itself; tracking would only warn that it closed an fd it never saw.
  const options = { workerData: init, trackUnmanagedFds: false };
  if (!ts) return new Worker(entry, options);
  const tsxApi = pathToFileURL(
    createRequire(import.meta.url)
      .resolve('tsx/esm/api')
      .replace(/\.cjs$/, '.mjs'),
  ).href;
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(boot, { ...options, eval: true });
}

interface Slot {
  index: number;
  worker: Worker;
  /** Latest counters this worker sent. */
  report: WorkerReport;
  /** Set once close was asked of it (its exit is then expected). */
  closing: boolean;
  exited: Promise<number>;
  onStats?: (stats: unknown) => void;
}

/**
 * The namespace, its multi-queue device and N worker threads, each with a stack on one
 * queue. start() resolves when every worker serves and the kernel side is up; close()
 * stops every worker (each closes its queue), then removes the namespace.
 */
export class TunWorkers {
  readonly device = NETNS_DEFAULTS.device;
  readonly ours = { v4: NETNS_DEFAULTS.ourV4, v6: NETNS_DEFAULTS.ourV6 } as const;
  readonly kernel = {
    v4: NETNS_DEFAULTS.kernelV4.split('/')[0] ?? '',
    v6: NETNS_DEFAULTS.kernelV6.split('/')[0] ?? '',
  };
  mtu = MTU;
  private fail: (e: Error) => void = () => {};
  /** Resolves with the first worker that stopped on its own (error, lost queue). */
  readonly failed: Promise<Error> = new Promise((resolve) => {
    this.fail = resolve;
  });
  private failure: Error | undefined;
  private readonly slots: Slot[] = [];
  private closing: Promise<void> | undefined;
  private readonly removeNs = () => {
    try {
      netnsDown(this.netns);
    } catch {
      // At exit, best effort: the error is reported elsewhere.
    }
  };

  private constructor(
    readonly netns: string,
    private readonly opts: TunWorkersOptions,
  ) {}

  static async start(opts: TunWorkersOptions): Promise<TunWorkers> {
    if (!Number.isInteger(opts.workers) || opts.workers < 1 || opts.workers > MAX_WORKERS)
      throw new UsageError(`--workers: expected 1 to ${MAX_WORKERS}, got '${opts.workers}'`);
    checkNamespaceFree(opts.netns);
    const w = new TunWorkers(opts.netns, opts);
    process.on('exit', w.removeNs);
    try {
      ip(['netns', 'add', opts.netns]);
      await w.spawnAll();
      w.configureKernelSide();
    } catch (e) {
      await w.close();
      throw e;
    }
    return w;
  }

  /**
   * All at once: whichever worker's open comes first creates the device (the kernel takes
   * TUNSETIFF under one lock), the others attach their queues to it; worker 0 sets the MTU.
   * The kernel side is configured once every queue is there, so no flow is hashed over a
   * queue set that is about to change.
   */
  private async spawnAll(): Promise<void> {
    const clockOrigin = Date.now();
    const secrets = {
      isnSecret: new Uint8Array(randomBytes(16)),
      synCookieSecret: new Uint8Array(randomBytes(32)),
      fastOpenKey: new Uint8Array(randomBytes(16)),
      ticketKeys: new Uint8Array(randomBytes(48)),
    };
    const initFor = (index: number): WorkerInit => ({
      index,
      netns: this.netns,
      device: this.device,
      mtu: MTU,
      clockOrigin,
      secrets,
      identity: this.opts.identity,
      trace: this.opts.trace ?? false,
      keylog: this.opts.keylog !== undefined,
      ...(this.opts.pcap ? { pcap: workerPcapPath(this.opts.pcap, index) } : {}),
      ...(this.opts.qlogDir ? { qlogDir: this.opts.qlogDir } : {}),
      ...(this.opts.offloads ? { offloads: true } : {}),
      reportIntervalMs: this.opts.reportIntervalMs ?? 1000,
    });
    const mtus = await Promise.all(
      Array.from({ length: this.opts.workers }, (_, i) => this.spawn(initFor(i))),
    );
    this.mtu = Math.min(...mtus);
  }

  /** Start one worker; resolves with its queue's MTU once it serves, rejects if it dies first. */
  private spawn(init: WorkerInit): Promise<number> {
    const worker = startWorker(init);
    const slot: Slot = {
      index: init.index,
      worker,
      report: { index: init.index, rx: 0, tx: 0, dropped: 0, accepted: 0, counters: {} },
      closing: false,
      exited: new Promise((resolve) => worker.once('exit', resolve)),
    };
    this.slots.push(slot);
    return new Promise((resolve, reject) => {
      let ready = false;
      let lastError: Error | undefined;
      const timer = setTimeout(() => {
        reject(workerError(`worker ${init.index} did not start within ${START_TIMEOUT_MS / 1000} s`));
      }, START_TIMEOUT_MS);
      worker.on('message', (m: FromWorker) => {
        switch (m.type) {
          case 'ready':
            ready = true;
            clearTimeout(timer);
            resolve(m.mtu);
            break;
          case 'line':
            this.opts.print(`${`w${m.index}`.padEnd(4)}${m.text}`);
            break;
          case 'keylog':
            this.opts.keylog?.(m.line);
            break;
          case 'report':
          case 'closed':
            slot.report = m.report;
            break;
          case 'stats':
            slot.report = m.report;
            slot.onStats?.(m.stats);
            break;
          case 'fatal':
            slot.report = m.report;
            lastError = workerError(`worker ${init.index}: ${m.message}`);
            break;
        }
      });
      worker.on('error', (e) => {
        lastError = e;
      });
      worker.once('exit', (code) => {
        clearTimeout(timer);
        slot.onStats?.(undefined);
        const err =
          lastError ??
          workerError(
            `worker ${init.index} exited${code === 0 ? '' : ` with code ${code}`} before it was closed`,
          );
        if (!ready) {
          reject(workerError(`worker ${init.index} could not start: ${err.message}`));
          return;
        }
        if (slot.closing) return;
        const failure =
          err instanceof Error && 'code' in err ? err : workerError(`worker ${init.index}: ${err.message}`);
        this.failure ??= failure;
        this.fail(failure);
      });
    });
  }

  private configureKernelSide(): void {
    const ns = this.netns;
    const dev = this.device;
    ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    // RFC 4861 §6.3.7: no router solicitations, and no routes from a stray advertisement,
    // so the only packets on the device are the ones a client causes (as Netns.create does).
    execFileSync(
      'ip',
      [
        'netns',
        'exec',
        ns,
        'sh',
        '-c',
        `echo 0 > /proc/sys/net/ipv6/conf/${dev}/router_solicitations && echo 0 > /proc/sys/net/ipv6/conf/${dev}/accept_ra`,
      ],
      { stdio: 'ignore', timeout: 10_000 },
    );
    ip(['-n', ns, 'addr', 'add', NETNS_DEFAULTS.kernelV4, 'dev', dev]);
    // nodad: usable at once (RFC 4862 §5.4).
    ip(['-n', ns, '-6', 'addr', 'add', NETNS_DEFAULTS.kernelV6, 'dev', dev, 'nodad']);
    ip(['-n', ns, 'link', 'set', dev, 'up']);
  }

  get count(): number {
    return this.slots.length;
  }

  /** The latest counters of every worker. */
  reports(): WorkerReport[] {
    return this.slots.map((s) => s.report);
  }

  /** Sums over the workers. */
  totals(): { rx: number; tx: number; dropped: number; accepted: number } {
    const t = { rx: 0, tx: 0, dropped: 0, accepted: 0 };
    for (const r of this.reports()) {
      t.rx += r.rx;
      t.tx += r.tx;
      t.dropped += r.dropped;
      t.accepted += r.accepted;
    }
    return t;
  }

  /** What every worker's stack holds now (connections, timers, buffers), asked of each. */
  async stats(): Promise<unknown[]> {
    return Promise.all(
      this.slots.map(
        (s) =>
          new Promise<unknown>((resolve) => {
            const timer = setTimeout(() => done(undefined), 2000);
            const done = (v: unknown) => {
              clearTimeout(timer);
              s.onStats = undefined;
              resolve(
                v === undefined ? { worker: s.index, gone: true } : { worker: s.index, ...(v as object) },
              );
            };
            s.onStats = done;
            s.worker.postMessage({ type: 'stats' } satisfies ToWorker);
          }),
      ),
    );
  }

  /** The first worker failure, if any (close() still runs in full). */
  get error(): Error | undefined {
    return this.failure;
  }

  /**
   * Ask every worker to close its services and queue, wait for each thread to end (and
   * terminate one that does not), then remove the namespace. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all(
        this.slots.map(async (s) => {
          s.closing = true;
          s.worker.postMessage({ type: 'close' } satisfies ToWorker);
          const late = new Promise<'late'>((r) => setTimeout(() => r('late'), CLOSE_TIMEOUT_MS).unref());
          if ((await Promise.race([s.exited, late])) === 'late') await s.worker.terminate();
        }),
      );
      this.removeNs();
      process.off('exit', this.removeNs);
    })();
    return this.closing;
  }
}
