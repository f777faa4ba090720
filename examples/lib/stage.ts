/**
 * The stage every HTTP example shares: a seeded simulated network, one server host running
 * our HTTP/1.1 server on our TCP, client hosts with our fetch over their own pool, and a
 * timeline on the virtual clock. Kept small on purpose: each example reads on its own.
 *
 * With `tun: true` (root) the same hosts sit on Linux TUN devices instead, one device each in
 * one network namespace the stage makes (sw-ex-<pid>-<n>), each on its own /30 of
 * 198.18.0.0/24, with IPv4 forwarding on: every packet between two of our hosts leaves one
 * device, is routed by the kernel and enters the other — real packets, capturable with
 * `ip netns exec sw-ex-… tcpdump -i any`. Time is then real, the wire's delay and rate are
 * applied in user space as our hosts send (the kernel here has no netem), and the namespace
 * goes away with close() (or at exit).
 */
import { execFileSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { Agent, createHttpServer, type HttpServer, type RequestListener } from '@stepwire/http';
import { createNetwork, type LinkOptions, type NetHost, type Network } from '@stepwire/sim';
import type { Timer } from '@stepwire/wire';

export interface StageOptions {
  seed?: number;
  /** One-way delay of every link, ms (a→b crosses two links: 2 × delay). */
  delay?: number;
  /** More of the wire's behaviour (rateBps, loss, ...), for every host's link. */
  link?: LinkOptions;
  /** Client host names, made after the server (198.18.0.2, .3, ...). */
  clients?: string[];
  /** Print the timeline as it happens. */
  print?: boolean;
  /** Print the packet ladder too. */
  ladder?: boolean;
  /** Put the hosts on TUN devices in a namespace of their own, the kernel routing between them (root). */
  tun?: boolean;
}

export interface Moment {
  /** Time since the stage was set up, ms (virtual; real with `tun`). */
  t: number;
  who: string;
  text: string;
}

export interface Stage {
  net: Network;
  server: NetHost;
  clients: NetHost[];
  http: HttpServer;
  /** The namespace the hosts' TUN devices are in (with `tun`), removed by close(). */
  netns: string | undefined;
  /** http://server/ + path. */
  url(path: string): string;
  /** The pool of a client host (one per host, made on first use). */
  agent(host: NetHost): Agent;
  /** ms since the stage was set up (over TUN, after its devices were made). */
  now(): number;
  /** Run fn at stage time t. */
  at(t: number, fn: () => void): Timer;
  /** Run fn at stage time now + ms. */
  after(ms: number, fn: () => void): Timer;
  log(who: string, text: string): void;
  timeline: Moment[];
  /** Close the server, the pools and the network (and with it the namespace); idempotent. */
  close(): Promise<void>;
}

/** Stages made by this process: each over TUN gets a namespace of its own. */
let made = 0;

/**
 * Over TUN (root; `net` on a real clock): the server, then the clients, each on a TUN device
 * of its own in one new namespace, each on its own /30 (the kernel at .4n+1, ours at .4n+2),
 * the kernel forwarding between them; `link` applied as each host sends. net.close() removes
 * the namespace.
 */
export function tunHosts(
  net: Network,
  names: string[],
  impair: LinkOptions,
  serverName = 'server',
): { server: NetHost; clients: NetHost[]; netns: string } {
  const { mtu, ...impairments } = impair;
  const netns = `sw-ex-${process.pid}-${++made}`;
  const device = (n: number) => ({
    device: `sw${n}`,
    kernelV4: `198.18.0.${4 * n + 1}/30`,
    ourV4: `198.18.0.${4 * n + 2}`,
    kernelV6: `fd00:5757:${n}::1/64`,
    ourV6: `fd00:5757:${n}::2`,
    // The other hosts' subnets are reached through the kernel, which forwards between devices.
    routes: ['198.18.0.0/24'],
    impair: impairments,
    ...(mtu ? { mtu } : {}),
  });
  const server = net.tun(serverName, { netns, ...device(0) });
  try {
    const clients = names.map((name, i) => net.tun(name, { netns: server.netns, ...device(i + 1) }));
    return { server, clients, netns };
  } catch (e) {
    net.close();
    throw e;
  }
}

export function stage(listener: RequestListener, o: StageOptions = {}): Stage {
  const timeline: Moment[] = [];
  const link: LinkOptions = { delay: o.delay ?? 5, ...o.link };
  const trace = o.ladder && o.print ? { trace: (line: string) => console.log(line) } : {};
  const net = o.tun
    ? createNetwork({ seed: o.seed ?? 1, clock: 'real', ...trace })
    : createNetwork({ seed: o.seed ?? 1, link, ...trace });
  const names = o.clients ?? ['client'];
  const { server, clients, netns } = o.tun
    ? tunHosts(net, names, link)
    : { server: net.host('server'), clients: names.map((n) => net.host(n)), netns: undefined };
  // Timeouts stay at their defaults except the idle one, which would otherwise end a
  // held long-poll or event stream the examples keep open on purpose.
  const http = createHttpServer(
    { clock: net.clock, hostName: 'server', timeouts: { requestTimeout: 0 } },
    listener,
  );
  const listening = server.tcp.createServer();
  try {
    http.listen(listening);
    listening.listen(80);
  } catch (e) {
    net.close(); // and with it the namespace, over TUN
    throw e;
  }
  const agents = new Map<NetHost, Agent>();
  // Stage time starts now: on a real clock, after the devices were made.
  const zero = net.clock.now();
  if (o.print && netns) {
    const on = [server, ...clients].map((h, i) => `${h.name} ${h.ipv4} on sw${i}`).join(', ');
    console.log(`over TUN in namespace ${netns}: ${on}; the kernel routes between them`);
    console.log(
      `  (watch: ip netns exec ${netns} tshark -i any; the ladder's clock started ${ms(zero)} earlier)`,
    );
  }
  let closed = false;
  const s: Stage = {
    net,
    server,
    clients,
    http,
    timeline,
    netns,
    url: (path) => `http://${server.ipv4}${path}`,
    agent(host) {
      let a = agents.get(host);
      if (!a) {
        a = new Agent({
          clock: net.clock,
          connect: (origin) => {
            const socket = host.tcp.connect({ host: origin.hostname, port: origin.port });
            // Our client writes a request's head and body separately; with Nagle on, the
            // body would wait for the ACK of the head, which the server delays 40 ms
            // (tcp-nagle-delayed-ack shows that stall). node:http clients set it too.
            socket.setNoDelay(true);
            return socket;
          },
        });
        agents.set(host, a);
      }
      return a;
    },
    // Real time is kept to 0.1 ms, as the timeline prints it.
    now: () => (o.tun ? Math.round((net.clock.now() - zero) * 10) / 10 : net.clock.now() - zero),
    at: (t, fn) => net.clock.setTimer(zero + t, fn),
    after: (ms, fn) => net.clock.setTimer(net.clock.now() + ms, fn),
    log(who, text) {
      const m = { t: s.now(), who, text };
      timeline.push(m);
      if (o.print) console.log(`${m.t.toFixed(1).padStart(9)} ms  ${who.padEnd(8)} ${text}`);
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        for (const a of agents.values()) a.destroy();
        http.close();
        listening.close();
        await net.run(() => true);
        if (netns)
          s.log('kernel', `forwarded ${kernelForwarded(netns)} IPv4 packets between the hosts' devices`);
      } finally {
        net.close();
      }
    },
  };
  return s;
}

/** The namespace's count of IPv4 packets the kernel forwarded (RFC 4293 ipSystemStatsInForwDatagrams). */
function kernelForwarded(netns: string): number {
  const snmp = execFileSync('ip', ['netns', 'exec', netns, 'cat', '/proc/net/snmp'], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  // Two 'Ip:' lines: the field names, then the values.
  const [names, values] = snmp
    .split('\n')
    .filter((l) => l.startsWith('Ip: '))
    .map((l) => l.split(/\s+/));
  return Number(values?.[names?.indexOf('ForwDatagrams') ?? -1] ?? Number.NaN);
}

/** The request body as a Buffer. */
export function readBody(req: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

/** A duration for print: to 0.1 ms (real times over TUN have more digits than they mean). */
export function ms(t: number): string {
  return `${Math.round(t * 10) / 10} ms`;
}

/** True when this module is the program node was started with (not imported by a test). */
export function isMain(url: string): boolean {
  return process.argv[1] !== undefined && url === pathToFileURL(process.argv[1]).href;
}
