/**
 * The stage every HTTP example shares: a seeded simulated network, one server host running
 * our HTTP/1.1 server on our TCP, client hosts with our fetch over their own pool, and a
 * timeline on the virtual clock. Kept small on purpose: each example reads on its own.
 */
import { pathToFileURL } from 'node:url';
import { Agent, createHttpServer, type HttpServer, type RequestListener } from '@stepwire/http';
import { createNetwork, type LinkOptions, type NetHost, type Network } from '@stepwire/sim';

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
}

export interface Moment {
  /** Virtual time, ms. */
  t: number;
  who: string;
  text: string;
}

export interface Stage {
  net: Network;
  server: NetHost;
  clients: NetHost[];
  http: HttpServer;
  /** http://server/ + path. */
  url(path: string): string;
  /** The pool of a client host (one per host, made on first use). */
  agent(host: NetHost): Agent;
  now(): number;
  /** Run fn at virtual time now + ms. */
  after(ms: number, fn: () => void): void;
  log(who: string, text: string): void;
  timeline: Moment[];
  close(): Promise<void>;
}

export function stage(listener: RequestListener, o: StageOptions = {}): Stage {
  const timeline: Moment[] = [];
  const net = createNetwork({
    seed: o.seed ?? 1,
    link: { delay: o.delay ?? 5, ...o.link },
    ...(o.ladder && o.print ? { trace: (line: string) => console.log(line) } : {}),
  });
  const server = net.host('server');
  const clients = (o.clients ?? ['client']).map((n) => net.host(n));
  // Timeouts stay at their defaults except the idle one, which would otherwise end a
  // held long-poll or event stream the examples keep open on purpose.
  const http = createHttpServer(
    { clock: net.clock, hostName: 'server', timeouts: { requestTimeout: 0 } },
    listener,
  );
  const listening = server.tcp.createServer();
  http.listen(listening);
  listening.listen(80);
  const agents = new Map<NetHost, Agent>();
  const s: Stage = {
    net,
    server,
    clients,
    http,
    timeline,
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
    now: () => net.clock.now(),
    after(ms, fn) {
      net.clock.setTimer(net.clock.now() + ms, fn);
    },
    log(who, text) {
      const m = { t: net.clock.now(), who, text };
      timeline.push(m);
      if (o.print) console.log(`${m.t.toFixed(1).padStart(9)} ms  ${who.padEnd(8)} ${text}`);
    },
    async close() {
      for (const a of agents.values()) a.destroy();
      http.close();
      listening.close();
      await net.run(() => true);
      net.close();
    },
  };
  return s;
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

/** True when this module is the program node was started with (not imported by a test). */
export function isMain(url: string): boolean {
  return process.argv[1] !== undefined && url === pathToFileURL(process.argv[1]).href;
}
