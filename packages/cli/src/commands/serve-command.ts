import { Command } from 'commander';
import { UsageError } from '../errors.ts';
import { MAX_WORKERS } from '../tun/max-workers.ts';
import { describeService, SERVICE_ABOUT } from '../tun/service-catalog.ts';

/**
 * `stepwire serve`'s options, help and option checks. Help and usage errors load only this
 * file; serving imports ./serve.ts inside the action.
 */

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
        ...SERVICE_ABOUT.map((s) => `  ${describeService(s)}`),
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
      if (workersOption(o) > 1) (await import('../tun/workers.ts')).checkNamespaceFree(o.netns);
      servingMode(o);
      const stop = waitForSignal();
      // The stack, TLS, HTTP and QUIC load only now that something will be served.
      const { runServe } = await import('./serve.ts');
      await runServe(o, print, stop);
    });
}

/** Which way to serve: --tun or --loopback, exactly one (checked again by runServe for direct callers). */
export function servingMode(o: ServeOptions): void {
  if (o.tun && o.loopback) throw new UsageError('--tun and --loopback exclude each other');
  if (!o.tun && !o.loopback) {
    throw new UsageError(
      "only TUN mode exists for now for the whole stack: run 'stepwire serve --tun' as root, or 'stepwire serve --loopback' for HTTP, HTTPS and HTTP/3 on the kernel's loopback ('stepwire demo' shows the simulated network)",
    );
  }
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
 * --workers as a number: 1 to MAX_WORKERS, and more than 1 only with --tun (the caller then
 * checks that the namespace is one the run makes itself: checkNamespaceFree in ../tun/workers.ts).
 */
export function workersOption(o: ServeOptions): number {
  if (o.workers === undefined) return 1;
  const n = Number(o.workers);
  if (!Number.isInteger(n) || n < 1 || n > MAX_WORKERS)
    throw new UsageError(`--workers: expected 1 to ${MAX_WORKERS}, got '${o.workers}'`);
  if (n > 1 && !o.tun) throw new UsageError('--workers goes with --tun');
  if (o.offloads && !o.tun) throw new UsageError('--offloads goes with --tun');
  return n;
}
