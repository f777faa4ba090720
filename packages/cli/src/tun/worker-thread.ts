/**
 * One worker of `stepwire serve --tun --workers N`: a whole stack (Host, UDP, TCP, TLS,
 * HTTP/1.1, h2, h3) on one queue of the namespace's multi-queue TUN device. The main
 * thread (workers.ts) made the namespace and configures the kernel side; this thread opens
 * its own queue, so every packet of its flows is read, handled and written here and never
 * crosses to the main thread. What does cross: trace lines, key log lines and counters.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { TunLink } from '@stepwire/link';
import { TraceBus } from '@stepwire/wire';
import { forbidKernelTrafficOffLoopback } from '../safety.ts';
import { SERVICES, startServices } from './services.ts';
import { dropCount, TunSession } from './session.ts';
import { ladderNotes, ladderTap, US } from './trace.ts';
import type { FromWorker, ToWorker, WorkerInit, WorkerReport } from './workers.ts';

// The same guard as the main thread: prototypes are per isolate, so each thread installs its own.
forbidKernelTrafficOffLoopback();

const port = parentPort;
if (port === null) throw new Error('worker-thread.ts runs only as a worker thread of serve --workers');
const init = workerData as WorkerInit;
const post = (m: FromWorker) => port.postMessage(m);

// setns() moves only the calling thread (openTun enters the namespace and comes back on
// this thread), and the kernel attaches this fd as one more queue of the device
// (IFF_MULTI_QUEUE); the first worker's open creates the device.
const queue = TunLink.open({
  netns: init.netns,
  name: init.device,
  multiQueue: true,
  ...(init.offloads ? { offloads: true } : {}),
  ...(init.index === 0 ? { mtu: init.mtu } : {}),
});
const session = TunSession.onQueue(init.netns, queue, {
  hostName: `${US}${init.index}`,
  clockOrigin: init.clockOrigin,
  // RFC 6528 ISNs, RFC 4987 SYN cookies and RFC 7413 Fast Open cookies: one secret in every
  // worker. A flow stays on one queue, but a TFO cookie handed out on one connection comes
  // back on another (a new source port, so maybe another queue), and a SYN cookie must
  // survive the kernel moving a flow when the queue set changes.
  tcp: {
    isnSecret: init.secrets.isnSecret,
    synCookieSecret: init.secrets.synCookieSecret,
    fastOpenKey: init.secrets.fastOpenKey,
  },
  ...(init.trace ? { tap: ladderTap((text) => post({ type: 'line', index: init.index, text })) } : {}),
  ...(init.pcap ? { pcap: init.pcap } : {}),
});

let tlsTrace: TraceBus | undefined;
if (init.trace) {
  // TLS machines keep epoch time; their events join the ladder on the session clock.
  tlsTrace = new TraceBus();
  tlsTrace.on((e) => session.trace.emit({ ...e, t: session.clock.now() }));
}

const started = startServices(
  {
    host: session.host,
    udp: session.udp,
    tcp: session.tcp,
    tls: {
      identity: init.identity,
      ticketKeys: init.secrets.ticketKeys,
      ...(init.keylog ? { keylog: (line: string) => post({ type: 'keylog', line }) } : {}),
      ...(tlsTrace ? { trace: tlsTrace, traceHost: US } : {}),
    },
    ...(init.qlogDir ? { qlogDir: init.qlogDir } : {}),
  },
  SERVICES,
);
// Notes from here on, as with one stack: the listeners' start-up is in the service lines.
if (init.trace) ladderNotes(session.trace, (text) => post({ type: 'line', index: init.index, text }));

/** Connections accepted by listeners now closed (their counts leave with them). */
let acceptedBefore = 0;

function acceptedNow(): number {
  let n = 0;
  for (const l of session.tcp.stats.listeners) n += l.accepted;
  return n;
}

function report(): WorkerReport {
  const c = session.tun.counters;
  const accepted = acceptedBefore + acceptedNow();
  return {
    index: init.index,
    rx: c.get('rx'),
    tx: c.get('tx'),
    dropped: dropCount(session.host.counters) + dropCount(c),
    accepted,
    counters: { ...session.host.counters.snapshot(), ...prefixed('tun.', c.snapshot()) },
  };
}

function prefixed(prefix: string, o: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(o)) out[prefix + k] = v;
  return out;
}

function holdings(): unknown {
  const services: Record<string, unknown> = {};
  for (const r of started.running) if (r.service.stats) services[r.spec.name] = r.service.stats();
  return { tcp: session.tcp.stats, udp: session.udp.stats, ip: session.host.stats, services };
}

// Counters go to the main thread on an interval (and on request, and once more at close),
// so its totals are never older than one interval even if this thread dies.
const reporting = setInterval(() => post({ type: 'report', report: report() }), init.reportIntervalMs);

let closing = false;
port.on('message', (m: ToWorker) => {
  if (m.type === 'stats') post({ type: 'stats', index: init.index, stats: holdings(), report: report() });
  else if (m.type === 'close') void close();
});

async function close(): Promise<void> {
  if (closing) return;
  closing = true;
  clearInterval(reporting);
  acceptedBefore += acceptedNow();
  started.close();
  await session.close();
  post({ type: 'closed', report: report() });
  // Nothing else keeps this thread: the port was its last handle.
  port?.close();
}

// The queue's read loop ended without close(): the device is gone or broken. Without its
// queue this stack is deaf; say why and end the thread with a failure the main thread sees.
void session.tun.closed.then(() => {
  if (closing) return;
  const why = session.tun.error?.message ?? 'the TUN queue closed';
  post({ type: 'fatal', message: why, report: report() });
  process.exit(1);
});

post({ type: 'ready', index: init.index, mtu: session.tun.mtu });
