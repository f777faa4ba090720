import * as fs from 'node:fs';
import { ladderHeader } from '@stepwire/sim';
import { TraceBus } from '@stepwire/wire';
import { UsageError } from '../errors.ts';
import {
  defaultCaDir,
  identityFromFiles,
  loadOrCreateServeIdentity,
  type TlsIdentity,
} from '../services/https.ts';
import { type LoopbackService, serveLoopback } from '../services/loopback.ts';
import { describeService, SERVICES, startServices } from '../tun/services.ts';
import { dropCount, TunSession } from '../tun/session.ts';
import { ladderNotes, ladderTap, US } from '../tun/trace.ts';
import { checkNamespaceFree, TunWorkers, workerPcapPath } from '../tun/workers.ts';
import { type ServeOptions, servingMode, workersOption } from './serve-command.ts';

export type { ServeOptions } from './serve-command.ts';

/**
 * A trace bus for TLS, whose machines keep epoch time (certificate validity, ticket ages):
 * its events join the session's ladder stamped with the session clock like every packet.
 */
function retimed(session: TunSession): TraceBus {
  const bus = new TraceBus();
  bus.on((e) => session.trace.emit({ ...e, t: session.clock.now() }));
  return bus;
}

/**
 * Serve until `stop` resolves. Prints the addresses and services one per line, then
 * 'ready'; then (with trace) a ladder line per packet; at the end one line of counts.
 */
export async function runServe(o: ServeOptions, print: (s: string) => void, stop: Promise<unknown>) {
  servingMode(o);
  const workers = workersOption(o);
  if (workers > 1) checkNamespaceFree(o.netns);
  if ((o.cert === undefined) !== (o.key === undefined))
    throw new UsageError('--cert and --key go together: give both, or neither to use the serve CA');
  let identity: TlsIdentity;
  let made: { ca: boolean; leaf: boolean } | undefined;
  if (o.cert !== undefined && o.key !== undefined) {
    try {
      identity = identityFromFiles(o.cert, o.key);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code?.startsWith('E')) throw e;
      throw new UsageError(`--cert/--key: ${(e as Error).message}`);
    }
  } else {
    const r = loadOrCreateServeIdentity(defaultCaDir());
    identity = r;
    made = r.made;
  }
  let keylogFd: number | undefined;
  const keylog = o.keylog
    ? (line: string) => {
        keylogFd ??= fs.openSync(o.keylog!, 'a', 0o600);
        fs.writeSync(keylogFd, `${line}\n`);
      }
    : undefined;
  if (o.loopback) {
    try {
      await runLoopback(o, identity, keylog, print, stop);
    } finally {
      if (keylogFd !== undefined) fs.closeSync(keylogFd);
    }
    return;
  }
  if (workers > 1) {
    try {
      await runWorkers(o, workers, identity, made, keylog, print, stop);
    } finally {
      if (keylogFd !== undefined) fs.closeSync(keylogFd);
    }
    return;
  }
  const session = TunSession.open({
    netns: o.netns,
    ...(o.offloads ? { offloads: true } : {}),
    ...(o.trace ? { tap: ladderTap(print) } : {}),
    ...(o.pcap ? { pcap: o.pcap } : {}),
  });
  try {
    const started = startServices(
      {
        host: session.host,
        udp: session.udp,
        tcp: session.tcp,
        tls: {
          identity,
          ...(keylog ? { keylog } : {}),
          ...(o.trace ? { trace: retimed(session), traceHost: US } : {}),
        },
        ...(o.qlog ? { qlogDir: o.qlog } : {}),
      },
      SERVICES,
    );
    print(
      `namespace ${session.netns} (${session.created ? 'made for this run, removed on exit' : 'existing, kept'}), device ${session.device}, mtu ${session.tun.mtu}`,
    );
    print(`address ${session.ours.v4}/24 (kernel side ${session.kernel.v4})`);
    print(`address ${session.ours.v6}/64 (kernel side ${session.kernel.v6})`);
    for (const r of started.running) print(`service ${describeService(r.spec)}`);
    if (identity.caPath) {
      print(`ca: ${identity.caPath}`);
      print(
        `https certificate for stepwire.test, ${session.ours.v4}, ${session.ours.v6}: ${made?.ca ? 'CA made now' : made?.leaf ? 'CA kept, leaf made now' : 'CA and leaf kept'} (curl --cacert ${identity.caPath} https://${session.ours.v4}/)`,
      );
    } else {
      print(`https certificate: ${o.cert} (yours)`);
    }
    if (o.keylog) print(`keylog: ${o.keylog}`);
    if (o.trace) {
      ladderNotes(session.trace, print);
      print(ladderHeader());
    }
    const off = session.tun.offloads;
    if (off)
      print(
        `offloads: checksum${off.tsoMax ? `, TCP super-segments up to ${off.tsoMax} bytes (TSO/GSO, GRO)` : ''}`,
      );
    print('ready');
    // `kill -USR2 <pid>` prints what the stack holds now, one JSON line: connections, armed
    // timers and buffered bytes per layer (a leak shows as numbers that grow under load and do
    // not come back when the load stops).
    const printStats = () => {
      const services: Record<string, unknown> = {};
      for (const r of started.running) if (r.service.stats) services[r.spec.name] = r.service.stats();
      print(
        `stats ${JSON.stringify({ tcp: session.tcp.stats, udp: session.udp.stats, ip: session.host.stats, services })}`,
      );
    };
    process.on('SIGUSR2', printStats);
    try {
      await stop;
    } finally {
      process.off('SIGUSR2', printStats);
    }
    started.close();
    const c = session.tun.counters;
    print(
      `stopped: ${c.get('rx')} packets in, ${c.get('tx')} out, ${dropCount(session.host.counters) + dropCount(c)} dropped`,
    );
    if (session.tun.offloads)
      print(
        `offloads: ${session.host.counters.get('ip.rx.gro')} super-segments in (GRO), ${c.get('tx.gso')} out (TSO/GSO)`,
      );
  } finally {
    await session.close();
    if (keylogFd !== undefined) fs.closeSync(keylogFd);
  }
}

/**
 * `serve --tun --workers N` (N > 1): the same start-up lines, 'ready', SIGUSR2 stats and end
 * line as one stack, from N stacks in worker threads (tun/workers.ts). The end adds one line
 * per worker. A worker that dies stops the others; the namespace is removed and the error
 * thrown, so the command exits non-zero.
 */
async function runWorkers(
  o: ServeOptions,
  workers: number,
  identity: TlsIdentity,
  made: { ca: boolean; leaf: boolean } | undefined,
  keylog: ((line: string) => void) | undefined,
  print: (s: string) => void,
  stop: Promise<unknown>,
): Promise<void> {
  const pool = await TunWorkers.start({
    netns: o.netns,
    workers,
    identity,
    print,
    ...(o.trace ? { trace: true } : {}),
    ...(keylog ? { keylog } : {}),
    ...(o.pcap ? { pcap: o.pcap } : {}),
    ...(o.qlog ? { qlogDir: o.qlog } : {}),
    ...(o.offloads ? { offloads: true } : {}),
  });
  const printStats = () => {
    void pool.stats().then((w) => print(`stats ${JSON.stringify({ totals: pool.totals(), workers: w })}`));
  };
  try {
    print(
      `namespace ${pool.netns} (made for this run, removed on exit), device ${pool.device} with ${workers} queues, mtu ${pool.mtu}`,
    );
    print(
      `workers ${workers}: one stack per worker thread and queue, flows spread by the kernel's flow hash`,
    );
    print(`address ${pool.ours.v4}/24 (kernel side ${pool.kernel.v4})`);
    print(`address ${pool.ours.v6}/64 (kernel side ${pool.kernel.v6})`);
    for (const spec of SERVICES) print(`service ${describeService(spec)}`);
    if (identity.caPath) {
      print(`ca: ${identity.caPath}`);
      print(
        `https certificate for stepwire.test, ${pool.ours.v4}, ${pool.ours.v6}: ${made?.ca ? 'CA made now' : made?.leaf ? 'CA kept, leaf made now' : 'CA and leaf kept'} (curl --cacert ${identity.caPath} https://${pool.ours.v4}/)`,
      );
    } else {
      print(`https certificate: ${o.cert} (yours)`);
    }
    if (o.keylog) print(`keylog: ${o.keylog}`);
    if (o.pcap) print(`pcap: ${workerPcapPath(o.pcap, 0)} ... one per worker`);
    if (o.trace) print(`    ${ladderHeader()}`);
    print('ready');
    process.on('SIGUSR2', printStats);
    await Promise.race([stop, pool.failed]);
  } finally {
    process.off('SIGUSR2', printStats);
    await pool.close();
  }
  for (const r of pool.reports())
    print(
      `worker ${r.index}: ${r.rx} packets in, ${r.tx} out, ${r.dropped} dropped, ${r.accepted} connections accepted`,
    );
  const t = pool.totals();
  print(`stopped: ${t.rx} packets in, ${t.tx} out, ${t.dropped} dropped`);
  if (pool.error) throw pool.error;
}

function portOption(name: string, v: string | number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new UsageError(`${name}: expected a port, got '${v}'`);
  return n;
}

/** `serve --loopback`: the same start-up lines, 'ready', SIGUSR2 stats and end line as over TUN. */
async function runLoopback(
  o: ServeOptions,
  identity: TlsIdentity,
  keylog: ((line: string) => void) | undefined,
  print: (s: string) => void,
  stop: Promise<unknown>,
): Promise<void> {
  const address = o.address ?? '127.0.0.1';
  const services: LoopbackService[] = await serveLoopback({
    address,
    httpPort: portOption('--http-port', o.httpPort, 80),
    httpsPort: portOption('--https-port', o.httpsPort, 443),
    identity,
    ...(keylog ? { keylog } : {}),
    ...(o.qlog ? { qlogDir: o.qlog } : {}),
  });
  try {
    print(`loopback ${address} (kernel sockets; TLS, HTTP/1.1, HTTP/2, QUIC and HTTP/3 are ours)`);
    for (const s of services) print(`service ${s.name === 'h3' ? 'udp' : 'tcp'} ${s.port} ${s.description}`);
    if (identity.caPath) print(`ca: ${identity.caPath}`);
    if (o.keylog) print(`keylog: ${o.keylog}`);
    if (o.qlog) print(`qlog: ${o.qlog}/<odcid>_server.sqlog per HTTP/3 connection`);
    print('ready');
    const printStats = () => {
      const all: Record<string, unknown> = {};
      for (const s of services) all[s.name] = s.stats();
      print(`stats ${JSON.stringify({ services: all })}`);
    };
    process.on('SIGUSR2', printStats);
    try {
      await stop;
    } finally {
      process.off('SIGUSR2', printStats);
    }
  } finally {
    for (const s of services.reverse()) s.close();
  }
  print('stopped');
}
