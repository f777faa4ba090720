import * as fs from 'node:fs';
import { ladderHeader } from '@stepwire/sim';
import { TraceBus } from '@stepwire/wire';
import { Command } from 'commander';
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
import { checkNamespaceFree, MAX_WORKERS, TunWorkers, workerPcapPath } from '../tun/workers.ts';

export interface ServeOptions {
  tun?: boolean;
  netns: string;
  trace?: boolean;
  pcap?: string;
  /** The HTTPS certificate chain and key (PEM); default: the serve CA's leaf ($STEPWIRE_HOME/ca). */
  cert?: string;
  key?: string;
  /** Append the TLS secrets of every HTTPS connection here (SSLKEYLOGFILE format). */
  keylog?: string;
  /** Serve HTTP, HTTPS and HTTP/3 on the kernel's loopback (node:net, node:dgram) instead of TUN. */
  loopback?: boolean;
  /** With --loopback: the address (127.0.0.0/8 or ::1) and ports; 0 takes a free port. */
  address?: string;
  httpPort?: string | number;
  httpsPort?: string | number;
  /** A qlog (JSON-SEQ) per HTTP/3 connection in this directory. */
  qlog?: string;
  /** With --tun: this many stacks, one per worker thread and TUN queue (default 1: one stack on the main thread). */
  workers?: string | number;
  /** With --tun: open the device with offloads (checksum, TSO/GSO, GRO). */
  offloads?: boolean;
}

export function serveCommand(print: (s: string) => void = (s) => process.stdout.write(`${s}\n`)): Command {
  return new Command('serve')
    .description(
      'run the stack on a Linux TUN device in a network namespace (root) and serve ping, UDP echo, TCP echo/discard, HTTP, HTTPS and HTTP/3 until SIGINT/SIGTERM (or, with --loopback, HTTP, HTTPS and HTTP/3 on the kernel loopback)',
    )
    .option('--tun', 'run on a TUN device: every layer from IP up is ours')
    .option(
      '--loopback',
      "serve HTTP (80), HTTPS (443) and HTTP/3 (UDP 443) on the kernel's loopback: node:net and node:dgram carry our TLS, HTTP and QUIC",
    )
    .option('--qlog <dir>', 'write a qlog (JSON-SEQ, for qvis) per HTTP/3 connection into this directory')
    .option('--address <addr>', 'with --loopback: 127.0.0.0/8 or ::1', '127.0.0.1')
    .option('--http-port <n>', 'with --loopback: TCP port of HTTP (0: any free one)', '80')
    .option(
      '--https-port <n>',
      'with --loopback: TCP port of HTTPS and UDP port of HTTP/3 (0: any free one)',
      '443',
    )
    .option(
      '--netns <name>',
      'network namespace of the kernel side; made if missing and then removed on exit',
      'stepwire',
    )
    .option('--trace', 'print every packet in and out as a ladder line, with the drops between them')
    .option('--pcap <file>', 'also record every packet to a pcap file for Wireshark')
    .option(
      '--offloads',
      'with --tun: the TUN device with offloads (IFF_VNET_HDR): the kernel hands over and takes 64 KB TCP super-segments and partial checksums (GRO/TSO); a pcap shows packets as handed over',
    )
    .option(
      '--workers <n>',
      `with --tun: run n stacks, one per worker thread, each on its own queue of a multi-queue TUN device (the kernel spreads flows by hash); 1 to ${MAX_WORKERS}`,
      '1',
    )
    .option(
      '--cert <file>',
      'HTTPS certificate chain (PEM, leaf first); default: a leaf for stepwire.test, 198.18.0.2 and fd00:5757::2 from a CA kept in $STEPWIRE_HOME/ca (~/.stepwire/ca)',
    )
    .option('--key <file>', 'private key (PEM) of --cert')
    .option(
      '--keylog <file>',
      'append the TLS secrets of every HTTPS connection (SSLKEYLOGFILE format, for Wireshark)',
    )
    .addHelpText('after', () =>
      [
        '',
        'Makes the namespace (unless it exists) with the kernel at 198.18.0.1 / fd00:5757::1 and',
        'our stack at 198.18.0.2 / fd00:5757::2, then serves until SIGINT or SIGTERM:',
        ...SERVICES.map((spec) => `  ${describeService(spec)}`),
        'and removes what it made. Everything stays inside the namespace.',
        '',
        'Examples:',
        '  stepwire serve --tun --trace',
        '  ip netns exec stepwire curl --cacert ~/.stepwire/ca/ca.pem https://198.18.0.2/',
        '  stepwire serve --tun --pcap serve.pcap --keylog keys.txt',
        '  stepwire serve --tun --workers 2     # one stack per core; --pcap writes one file per worker',
        '  ip netns exec stepwire gtlsclient --exit-on-all-streams-close 198.18.0.2 443 https://198.18.0.2/',
        '',
        "--loopback serves HTTP, HTTPS and HTTP/3 on the kernel's loopback instead (no TUN; ports",
        'below 1024 need root), the same routes; h1/h2 responses advertise h3 with Alt-Svc:',
        '  stepwire serve --loopback --http-port 8080 --https-port 8443 --qlog qlogs/',
        '  stepwire fetch --http3 -k https://127.0.0.1:8443/',
      ].join('\n'),
    )
    .action(async (o: ServeOptions) => {
      // A bad --workers is refused before the signal handlers go in.
      workersOption(o);
      await runServe(o, print, waitForSignal());
    });
}

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
 * Resolves with the first SIGINT or SIGTERM. The listeners stay installed (further
 * signals are ignored while shutting down): Netns's own handler re-raises a signal only
 * when nobody else listens, and we want to finish cleanly and exit 0 instead.
 */
function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (s: NodeJS.Signals) => resolve(s);
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

/**
 * Serve until `stop` resolves. Prints the addresses and services one per line, then
 * 'ready'; then (with trace) a ladder line per packet; at the end one line of counts.
 */
export async function runServe(o: ServeOptions, print: (s: string) => void, stop: Promise<unknown>) {
  if (o.tun && o.loopback) throw new UsageError('--tun and --loopback exclude each other');
  if (!o.tun && !o.loopback) {
    throw new UsageError(
      "only TUN mode exists for now for the whole stack: run 'stepwire serve --tun' as root, or 'stepwire serve --loopback' for HTTP, HTTPS and HTTP/3 on the kernel's loopback ('stepwire demo' shows the simulated network)",
    );
  }
  const workers = workersOption(o);
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

/** --workers as a number: 1 to MAX_WORKERS, and more than 1 only with --tun and a namespace of its own. */
function workersOption(o: ServeOptions): number {
  if (o.workers === undefined) return 1;
  const n = Number(o.workers);
  if (!Number.isInteger(n) || n < 1 || n > MAX_WORKERS)
    throw new UsageError(`--workers: expected 1 to ${MAX_WORKERS}, got '${o.workers}'`);
  if (n > 1 && !o.tun) throw new UsageError('--workers goes with --tun');
  if (o.offloads && !o.tun) throw new UsageError('--offloads goes with --tun');
  if (n > 1) checkNamespaceFree(o.netns);
  return n;
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
