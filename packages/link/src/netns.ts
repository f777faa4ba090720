/**
 * Network namespaces for TUN tests and the CLI: a namespace holds the kernel side (the
 * TUN device with the kernel's addresses, its routes, and any program we run there:
 * ping, curl, openssl), while our process stays in the root namespace and owns the TUN
 * fd. Nothing is ever sent from the root namespace.
 *
 * Everything made here is removed on close(), on error during setup, and on process
 * exit, SIGINT and SIGTERM; a namespace of the same name left by a crashed run is removed
 * before a new one is made.
 */
import { type ChildProcess, execFileSync, type SpawnOptions, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { LinkSetupError } from './errors.ts';
import { TunLink } from './tun.ts';
import { checkIfName } from './tun-ffi.ts';

/** Addresses from RFC 2544's benchmarking range and the ULA range (RFC 4193). */
export const NETNS_DEFAULTS = {
  device: 'sw0',
  kernelV4: '198.18.0.1/24',
  kernelV6: 'fd00:5757::1/64',
  ourV4: '198.18.0.2',
  ourV6: 'fd00:5757::2',
} as const;

export interface NetnsOptions {
  /** Namespace name (also the name under /var/run/netns). */
  name: string;
  /** TUN device name inside the namespace; default 'sw0'. */
  device?: string;
  /** The kernel's address and prefix on the device; default 198.18.0.1/24. */
  kernelV4?: string;
  /** The kernel's IPv6 address and prefix; default fd00:5757::1/64 (added with nodad). */
  kernelV6?: string;
  /** The address our stack should use (reported back, and routed by the prefix); default 198.18.0.2. */
  ourV4?: string;
  ourV6?: string;
  /** Device MTU; default 1500. */
  mtu?: number;
  /**
   * Stop the kernel from sending IPv6 router solicitations on the device, so the only
   * packets on the link are the ones a test causes. Default true.
   */
  quietIpv6?: boolean;
  /** Passed to TunLink. */
  pollTimeoutMs?: number;
  /** Open the device with offloads (IFF_VNET_HDR: checksum, TSO/GSO, GRO), passed to TunLink. */
  offloads?: boolean;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface RunOptions {
  /** Killed (SIGKILL) after this long; default 10 s. */
  timeoutMs?: number;
  /** Written to the program's stdin, which is then closed. */
  input?: string | Uint8Array;
}

const OUTPUT_CAP = 1 << 20;

function checkNetnsName(name: string): void {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name) || name === '.' || name === '..') {
    throw new LinkSetupError(
      'ERR_NETNS_BAD_NAME',
      `bad namespace name '${name}': letters, digits, '_', '.', '-'`,
    );
  }
}

function ip(args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') {
      throw new LinkSetupError('ERR_NETNS_COMMAND', "the 'ip' command (iproute2) is not installed", 'ENOENT');
    }
    const why = (err.stderr ?? err.message).toString().trim().split('\n')[0];
    if (/Operation not permitted|Permission denied/.test(why ?? '')) {
      throw new LinkSetupError('ERR_TUN_PERMISSION', `ip ${args.join(' ')}: ${why}: run as root`, 'EPERM');
    }
    throw new LinkSetupError('ERR_NETNS_COMMAND', `ip ${args.join(' ')}: ${why}`);
  }
}

export function netnsExists(name: string): boolean {
  checkNetnsName(name);
  return fs.existsSync(`/var/run/netns/${name}`);
}

/**
 * Remove a namespace and, with it, every device inside. Programs still running in it keep
 * the namespace alive, unnamed, until they exit; no new one can be entered by name.
 * Returns whether there was one to remove.
 */
export function netnsDown(name: string): boolean {
  if (!netnsExists(name)) return false;
  ip(['netns', 'del', name]);
  return true;
}

interface KernelSide {
  device: string;
  kernelV4: string;
  kernelV6: string;
  ourV4: string;
  ourV6: string;
}

function resolve(options: NetnsOptions): KernelSide {
  checkNetnsName(options.name);
  const device = options.device ?? NETNS_DEFAULTS.device;
  checkIfName(device);
  if (device.includes('%'))
    throw new LinkSetupError('ERR_TUN_BAD_NAME', `namespace devices need a fixed name, not '${device}'`);
  return {
    device,
    kernelV4: options.kernelV4 ?? NETNS_DEFAULTS.kernelV4,
    kernelV6: options.kernelV6 ?? NETNS_DEFAULTS.kernelV6,
    ourV4: options.ourV4 ?? NETNS_DEFAULTS.ourV4,
    ourV6: options.ourV6 ?? NETNS_DEFAULTS.ourV6,
  };
}

/** The network part of 'a.b.c.d/len' or an IPv6 prefix, for routes; ip accepts host bits set with 'prefix' syntax only when masked, so mask it. */
function prefixOf(cidr: string): string {
  const [addr, lenText] = cidr.split('/');
  const len = Number(lenText);
  if (!addr || !Number.isInteger(len)) throw new RangeError(`not an address/prefix: ${cidr}`);
  if (addr.includes(':')) {
    const groups = expandV6(addr);
    let bits = len;
    const masked = groups.map((g) => {
      const keep = Math.max(0, Math.min(16, bits));
      bits -= 16;
      return keep === 0 ? 0 : g & ((0xffff << (16 - keep)) & 0xffff);
    });
    return `${masked.map((g) => g.toString(16)).join(':')}/${len}`;
  }
  const parts = addr.split('.').map(Number);
  const v = ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  const n = (v & mask) >>> 0;
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/${len}`;
}

function expandV6(addr: string): number[] {
  const [head, tail] = addr.includes('::') ? addr.split('::') : [addr, undefined];
  const h = head ? head.split(':').map((x) => Number.parseInt(x, 16)) : [];
  const t = tail ? tail.split(':').map((x) => Number.parseInt(x, 16)) : [];
  const fill = tail === undefined ? [] : new Array<number>(8 - h.length - t.length).fill(0);
  return [...h, ...fill, ...t];
}

/** Give the device its kernel-side addresses, bring it up, and route the prefixes to it. */
function configureKernelSide(name: string, k: KernelSide, quietIpv6: boolean): void {
  ip(['-n', name, 'link', 'set', 'lo', 'up']);
  if (quietIpv6) {
    // Per-namespace sysctls, written from inside the namespace (/proc/sys/net belongs to
    // the namespace of the process that opens it). router_solicitations=0 stops RFC 4861
    // §6.3.7 solicitations; accept_ra=0 keeps a stray advertisement from adding routes.
    const conf = `/proc/sys/net/ipv6/conf/${k.device}`;
    const r = spawnSync(
      'ip',
      [
        'netns',
        'exec',
        name,
        'sh',
        '-c',
        `echo 0 > ${conf}/router_solicitations && echo 0 > ${conf}/accept_ra`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000, encoding: 'utf8' },
    );
    if (r.status !== 0) {
      throw new LinkSetupError(
        'ERR_NETNS_COMMAND',
        `cannot set IPv6 sysctls in '${name}': ${r.stderr?.trim()}`,
      );
    }
  }
  ip(['-n', name, 'addr', 'add', k.kernelV4, 'dev', k.device]);
  // nodad: skip duplicate address detection (RFC 4862 §5.4) so the address is usable at once.
  ip(['-n', name, '-6', 'addr', 'add', k.kernelV6, 'dev', k.device, 'nodad']);
  ip(['-n', name, 'link', 'set', k.device, 'up']);
  ensureRoute(name, '-4', prefixOf(`${k.ourV4}/${k.kernelV4.split('/')[1]}`), k.device);
  ensureRoute(name, '-6', prefixOf(`${k.ourV6}/${k.kernelV6.split('/')[1]}`), k.device);
}

/**
 * The addresses' prefix routes normally point at the device already (proto kernel, with
 * the preferred source); add one only when missing, e.g. for a /32 kernel address, so the
 * kernel's own route is left as the kernel made it.
 */
function ensureRoute(name: string, family: '-4' | '-6', prefix: string, device: string): void {
  const have = ip(['-n', name, family, 'route', 'show', 'exact', prefix, 'dev', device]).trim();
  if (have === '') ip(['-n', name, family, 'route', 'add', prefix, 'dev', device]);
}

// One set of process-wide handlers, however many namespaces are open.
const cleanups = new Set<() => void>();
/** Names of this process's open Netns: making one again would pull the namespace from under it. */
const openNames = new Set<string>();
let handlersInstalled = false;

function runCleanups(): void {
  for (const c of [...cleanups]) {
    try {
      c();
    } catch {
      // Best effort at exit: one failure must not stop the others.
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  runCleanups();
  uninstallHandlers();
  // Die of the same signal, as we would have without a handler, unless someone else
  // listens and has their own plan.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', runCleanups);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

function uninstallHandlers(): void {
  if (!handlersInstalled) return;
  handlersInstalled = false;
  process.off('exit', runCleanups);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
}

function register(cleanup: () => void): void {
  cleanups.add(cleanup);
  installHandlers();
}

function unregister(cleanup: () => void): void {
  cleanups.delete(cleanup);
  if (cleanups.size === 0) uninstallHandlers();
}

/**
 * A namespace with a TUN device inside whose fd we hold as a TunLink. The kernel side has
 * `kernel` addresses; our stack should use `ours`.
 */
export class Netns {
  readonly link: TunLink;
  readonly device: string;
  readonly kernel: { v4: string; v6: string };
  readonly ours: { v4: string; v6: string };
  private readonly children = new Set<ChildProcess>();
  private state: 'open' | 'closing' | 'closed' = 'open';
  private readonly cleanup = () => this.closeSync();

  private constructor(
    readonly name: string,
    k: KernelSide,
    link: TunLink,
  ) {
    this.link = link;
    this.device = k.device;
    this.kernel = { v4: k.kernelV4.split('/')[0]!, v6: k.kernelV6.split('/')[0]! };
    this.ours = { v4: k.ourV4, v6: k.ourV6 };
  }

  /**
   * Make the namespace, the TUN device inside it (via setns, see tun-ffi.ts) and its
   * kernel-side configuration. Throws LinkSetupError (one line, with a code) on failure,
   * having removed whatever it made.
   */
  static create(options: NetnsOptions): Netns {
    const k = resolve(options);
    const name = options.name;
    if (openNames.has(name)) {
      throw new LinkSetupError('ERR_NETNS_IN_USE', `namespace '${name}' is already open in this process`);
    }
    netnsDown(name); // a leftover from a crashed run
    ip(['netns', 'add', name]);
    let link: TunLink | undefined;
    const early = () => {
      link?.close();
      try {
        netnsDown(name);
      } catch {
        // Reported by the error that brought us here.
      }
    };
    register(early);
    try {
      link = TunLink.open({
        name: k.device,
        netns: name,
        mtu: options.mtu ?? 1500,
        ...(options.pollTimeoutMs !== undefined ? { pollTimeoutMs: options.pollTimeoutMs } : {}),
        ...(options.offloads ? { offloads: true } : {}),
      });
      configureKernelSide(name, k, options.quietIpv6 ?? true);
    } catch (e) {
      unregister(early);
      early();
      throw e;
    }
    unregister(early);
    const ns = new Netns(name, k, link);
    register(ns.cleanup);
    openNames.add(name);
    return ns;
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Start a program inside the namespace (via `ip netns exec`); it is killed on close(). */
  spawn(cmd: string, args: string[] = [], options: SpawnOptions = {}): ChildProcess {
    if (this.state !== 'open') throw new Error(`namespace '${this.name}' is closed`);
    const child = spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { stdio: 'pipe', ...options });
    this.children.add(child);
    const forget = () => this.children.delete(child);
    child.once('exit', forget);
    child.once('error', forget);
    return child;
  }

  /**
   * Run a program inside the namespace to completion and collect its output (each stream
   * capped at 1 MiB). Resolves with the exit status, whatever it is; kills the program
   * after timeoutMs.
   */
  run(cmd: string, args: string[] = [], options: RunOptions = {}): Promise<RunResult> {
    const child = this.spawn(cmd, args);
    const timeoutMs = options.timeoutMs ?? 10_000;
    return new Promise((resolvePromise, reject) => {
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      child.stdout?.setEncoding('utf8').on('data', (d: string) => {
        if (stdout.length < OUTPUT_CAP) stdout += d;
      });
      child.stderr?.setEncoding('utf8').on('data', (d: string) => {
        if (stderr.length < OUTPUT_CAP) stderr += d;
      });
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        resolvePromise({ code, signal, stdout, stderr, timedOut });
      });
      if (options.input !== undefined) child.stdin?.end(options.input);
      else child.stdin?.end();
    });
  }

  /**
   * Stop our programs in the namespace, close the TUN link and wait for its read loop to
   * end (the device goes with the last reference to its fd), then delete the namespace.
   * Idempotent.
   */
  async close(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'closing';
    try {
      await Promise.all([...this.children].map((c) => stopChild(c, 2000)));
      this.link.close();
      await Promise.race([this.link.closed, delay(2000)]);
    } finally {
      this.closeSync();
    }
  }

  /** The same, without waiting: for exit and signal handlers. */
  closeSync(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    unregister(this.cleanup);
    openNames.delete(this.name);
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    this.link.close();
    netnsDown(this.name);
  }
}

const delay = (ms: number) =>
  new Promise<void>((r) => {
    setTimeout(r, ms).unref();
  });

async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  await Promise.race([exited, delay(graceMs)]);
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await Promise.race([exited, delay(graceMs)]);
  }
}

export interface NetnsInfo {
  name: string;
  device: string;
  kernel: { v4: string; v6: string };
  ours: { v4: string; v6: string };
}

/**
 * For `stepwire netns up`: a namespace with a persistent TUN device (`ip tuntap add`), so
 * it outlives this process and a later `TunLink.open({ netns, name: device })` attaches to
 * it. Replaces a namespace of the same name. Undo with netnsDown(name).
 */
export function netnsUp(name: string, options: Omit<NetnsOptions, 'name' | 'pollTimeoutMs'> = {}): NetnsInfo {
  const k = resolve({ ...options, name });
  netnsDown(name);
  ip(['netns', 'add', name]);
  try {
    ip(['-n', name, 'tuntap', 'add', 'dev', k.device, 'mode', 'tun']);
    ip(['-n', name, 'link', 'set', k.device, 'mtu', String(options.mtu ?? 1500)]);
    configureKernelSide(name, k, options.quietIpv6 ?? true);
  } catch (e) {
    try {
      netnsDown(name);
    } catch {
      // The first error says more.
    }
    throw e;
  }
  return {
    name,
    device: k.device,
    kernel: { v4: k.kernelV4.split('/')[0]!, v6: k.kernelV6.split('/')[0]! },
    ours: { v4: k.ourV4, v6: k.ourV6 },
  };
}
