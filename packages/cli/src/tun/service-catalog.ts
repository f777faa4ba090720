/**
 * What each service of `stepwire serve` is: its protocol, port, RFCs and one line of
 * description, in the order serve starts and lists them. The one place these texts live:
 * each entry of SERVICES (./services.ts) spreads `...service(name)` and adds how to start
 * it, and `serve --help` reads this module alone, so that help and usage errors load no
 * protocol code. So this module imports nothing.
 */

/** A service as `serve` describes it: 'udp 7 echo, IPv4 and IPv6 (RFC 862)'. */
export interface ServiceAbout {
  readonly name: string;
  readonly protocol: 'icmp' | 'udp' | 'tcp';
  /** Absent for services of the IP layer itself (ICMP echo). */
  readonly port?: number;
  readonly rfc: string;
  readonly description: string;
}

const ABOUT = {
  'icmp-echo': {
    protocol: 'icmp',
    rfc: 'RFC 792, RFC 4443 §4',
    description: 'echo (ping), IPv4 and IPv6',
  },
  'udp-echo': { protocol: 'udp', port: 7, rfc: 'RFC 862', description: 'echo, IPv4 and IPv6' },
  'tcp-echo': { protocol: 'tcp', port: 7, rfc: 'RFC 862', description: 'echo, IPv4 and IPv6' },
  'tcp-discard': { protocol: 'tcp', port: 9, rfc: 'RFC 863', description: 'discard, IPv4 and IPv6' },
  http: {
    protocol: 'tcp',
    port: 80,
    rfc: 'RFC 9112, RFC 9113',
    description:
      'HTTP/1.1 and h2c (prior knowledge), our HTTP server over our TCP: GET /, GET /bytes/N, POST /echo, POST /sha256, GET /sse',
  },
  https: {
    protocol: 'tcp',
    port: 443,
    rfc: 'RFC 8446, RFC 9110 §4.2.2',
    description: 'HTTPS: our TLS 1.3 over our TCP, ALPN h2 or http/1.1, the routes of port 80',
  },
  h3: {
    protocol: 'udp',
    port: 443,
    rfc: 'RFC 9000, RFC 9001, RFC 9114',
    description: 'HTTP/3: our QUIC over our UDP, TLS 1.3 with ALPN h3, the routes of port 80',
  },
} satisfies Record<string, Omit<ServiceAbout, 'name'>>;

/** A name that has a description here; a service whose name is misspelt fails to type-check. */
export type ServiceName = keyof typeof ABOUT;

/** The protocol, port, RFCs and description of the service `name`, with the name, to spread into it. */
export function service(name: ServiceName): ServiceAbout {
  return { name, ...ABOUT[name] };
}

/** Every service, in the order of SERVICES (serve's help lists them so). */
export const SERVICE_ABOUT: readonly ServiceAbout[] = (Object.keys(ABOUT) as ServiceName[]).map(service);

/** 'udp 7 echo, IPv4 and IPv6 (RFC 862)', as serve prints it. */
export function describeService(s: ServiceAbout): string {
  const where = s.port === undefined ? s.protocol : `${s.protocol} ${s.port}`;
  return `${where} ${s.description} (${s.rfc})`;
}
