import { createHash } from 'node:crypto';
import { Host } from '@stepwire/ip';
import { MemoryLink } from '@stepwire/link';
import { Sim, type SimOptions } from '@stepwire/sim';
import { VirtualClock } from '@stepwire/wire';
import { Tcp, type TcpStackOptions } from '../src/index.ts';

/** Two simulated hosts (A 198.18.0.1, B 198.18.0.2) with TCP on each. */
export interface TcpSim {
  sim: Sim;
  a: Tcp;
  b: Tcp;
  /** Await a promise while driving the virtual clock. */
  run<T>(p: Promise<T>, limitMs?: number): Promise<T>;
}

export function tcpSim(opts: SimOptions = {}, tcpOpts: TcpStackOptions = {}): TcpSim {
  const sim = new Sim(opts);
  // The Sim gives each host a Tcp with seeded secrets; other options need a new one (which
  // takes over protocol 6 on the host).
  const custom = Object.keys(tcpOpts).length > 0;
  const a = custom ? new Tcp(sim.a.host, tcpOpts) : sim.a.tcp;
  const b = custom ? new Tcp(sim.b.host, tcpOpts) : sim.b.tcp;
  return { sim, a, b, run: (p, limit) => drive(sim, p, limit) };
}

/**
 * Like Sim.run but quicker: every timer due at the current instant fires before the event
 * loop is given a turn (streams run their callbacks on process.nextTick).
 */
export async function drive<T>(sim: Sim, p: Promise<T>, limitMs = 600_000): Promise<T> {
  let settled = false;
  const watched = p.finally(() => {
    settled = true;
  });
  watched.catch(() => {});
  const clock = sim.clock;
  const deadline = clock.now() + limitMs;
  await turn();
  while (!settled) {
    const at = clock.nextTimerAt();
    if (at === undefined || at > deadline) {
      throw new Error(`simulation stalled at t=${clock.now()} ms with the operation still pending`);
    }
    clock.advanceTo(at);
    await turn();
  }
  return watched;
}

function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Resolve with every byte a readable gives until 'end'. */
export function collect(s: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('end', () => resolve(Buffer.concat(parts)));
    s.on('error', reject);
  });
}

export function once<T = unknown>(e: NodeJS.EventEmitter, name: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onErr = (err: Error) => {
      if (name !== 'error') reject(err);
    };
    e.once(name, (v: T) => {
      e.removeListener('error', onErr);
      resolve(v);
    });
    if (name !== 'error') e.once('error', onErr);
  });
}

/** Two bare Hosts (no TCP unless the caller adds one) on a perfect MemoryLink. */
export function rawHosts(): { clock: VirtualClock; a: Host; b: Host } {
  const clock = new VirtualClock();
  const [la, lb] = MemoryLink.pair({ clock });
  const a = new Host({ name: 'A', clock });
  a.addInterface({ link: la, ipv4: '198.18.0.1/24' });
  const b = new Host({ name: 'B', clock });
  b.addInterface({ link: lb, ipv4: '198.18.0.2/24' });
  return { clock, a, b };
}

/** `n` bytes of a xorshift stream from `seed`: writes differ, so a reused or misplaced buffer shows. */
export function streamBytes(n: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

export const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
