import type { Host } from '@stepwire/ip';
import type { Tcp } from '@stepwire/tcp';
import { type Udp, udpEcho } from '@stepwire/udp';
import type { TraceBus } from '@stepwire/wire';
import { dualStackSocket, h3OverDatagrams, serveAltSvc, withAltSvc } from '../services/h3.ts';
import { createHttpApp } from '../services/http-app.ts';
import { ephemeralServeIdentity, httpsOverTcp, type TlsIdentity } from '../services/https.ts';
import { httpOverTcp, tcpDiscard, tcpEcho } from '../services/tcp-services.ts';
import { describeService, type ServiceAbout, service } from './service-catalog.ts';

export { describeService };

/** What a service gets to run on: the Host and the transports built on it. */
export interface ServiceContext {
  host: Host;
  udp: Udp;
  tcp: Tcp;
  /**
   * The certificate and key of the TLS services, and where their key log goes. Without it
   * they make a throwaway CA in memory (tests on the simulated network).
   */
  tls?: {
    identity: TlsIdentity;
    keylog?: (line: string) => void;
    trace?: TraceBus;
    traceHost?: string;
    /**
     * The HTTPS server's session ticket keys (48 bytes, node:tls's form). `serve --workers`
     * gives every stack the same, so a ticket issued by one resumes on another (a client's
     * next connection has a new source port, so maybe another queue); random otherwise.
     */
    ticketKeys?: Uint8Array;
  };
  /** Where the HTTP/3 service writes a qlog per QUIC connection (serve --qlog DIR). */
  qlogDir?: string;
}

export interface RunningService {
  close(): void;
  /** What the service holds now (connections, timers, buffers), for `serve`'s stats line. */
  stats?(): unknown;
}

/**
 * One service of `stepwire serve`. A new layer adds its services by adding its texts to
 * ./service-catalog.ts and an entry to SERVICES (and, if it needs a transport the context
 * lacks, a field to ServiceContext):
 *   { ...service('tcp-echo'), start: ({ tcp }) => tcpEcho(tcp, 7) }
 */
export interface ServiceSpec extends ServiceAbout {
  start(ctx: ServiceContext): RunningService;
}

export const SERVICES: readonly ServiceSpec[] = [
  {
    ...service('icmp-echo'),
    // The Host's echo responder answers on every address it has; nothing to start.
    start: () => ({ close() {} }),
  },
  {
    ...service('udp-echo'),
    start: ({ udp }) => udpEcho(udp, 7),
  },
  {
    ...service('tcp-echo'),
    start: ({ tcp }) => tcpEcho(tcp, 7),
  },
  {
    ...service('tcp-discard'),
    start: ({ tcp }) => tcpDiscard(tcp, 9),
  },
  {
    ...service('http'),
    start: ({ tcp }) => {
      // RFC 7838 §3, RFC 9114 §3.1.1: every response advertises HTTP/3 on UDP 443 (the h3 service below).
      // TCP Fast Open (RFC 7413): a kernel client with --tcp-fastopen gets its request taken from the SYN.
      const svc = httpOverTcp(tcp, 80, createHttpApp({}, withAltSvc(serveAltSvc(443))), {
        server: { fastOpen: true },
      });
      return { close: () => svc.close(), stats: () => svc.app.stats() };
    },
  },
  {
    ...service('https'),
    start: ({ tcp, tls }) => {
      const svc = httpsOverTcp(tcp, 443, {
        identity: tls?.identity ?? ephemeralServeIdentity(),
        ...(tls?.keylog ? { keylog: tls.keylog } : {}),
        ...(tls?.trace ? { trace: tls.trace, traceHost: tls.traceHost ?? 'https' } : {}),
        app: createHttpApp({}, withAltSvc(serveAltSvc(443))),
        // RFC 7413: the ClientHello may ride in the SYN (the seeds' HTTPS over TFO).
        fastOpen: true,
      });
      if (tls?.ticketKeys) svc.tls.setTicketKeys(tls.ticketKeys);
      return { close: () => svc.close(), stats: () => ({ tls: svc.tls.stats(), http: svc.app.stats() }) };
    },
  },
  {
    ...service('h3'),
    start: ({ host, udp, tls, qlogDir }) => {
      const v4 = udp.createSocket('udp4');
      const v6 = udp.createSocket('udp6');
      try {
        v4.bindSync(443);
        v6.bindSync(443);
      } catch (e) {
        v4.close();
        v6.close();
        throw e;
      }
      const svc = h3OverDatagrams({
        socket: dualStackSocket(v4, v6),
        clock: host.clock,
        port: 443,
        // Our UDP reads and sets the IP ECN field, so QUIC's ECN works here (RFC 9000 §13.4).
        ecn: true,
        identity: tls?.identity ?? ephemeralServeIdentity(),
        ...(tls?.keylog ? { keylog: tls.keylog } : {}),
        ...(tls?.trace ? { trace: tls.trace, traceHost: tls.traceHost ?? 'h3' } : {}),
        ...(qlogDir ? { qlogDir } : {}),
      });
      return {
        close: () => {
          svc.close();
          v4.close();
          v6.close();
        },
        stats: () => svc.stats(),
      };
    },
  },
];

/**
 * Start every service, or none: if one fails to start (a port taken twice in the table),
 * those already running are closed and the error is thrown.
 */
export function startServices(
  ctx: ServiceContext,
  specs: readonly ServiceSpec[] = SERVICES,
): { running: { spec: ServiceSpec; service: RunningService }[]; close(): void } {
  const running: { spec: ServiceSpec; service: RunningService }[] = [];
  const close = () => {
    for (const r of running.splice(0).reverse()) r.service.close();
  };
  try {
    for (const spec of specs) running.push({ spec, service: spec.start(ctx) });
  } catch (e) {
    close();
    throw e;
  }
  return { running, close };
}
