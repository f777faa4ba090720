import { Command, Option } from 'commander';
import { UsageError } from '../errors.ts';
import type { FetchCliOptions } from './fetch.ts';

/** `stepwire fetch`'s options and help; the clients (./fetch.ts) load in the action. */

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function fetchCommand(): Command {
  return new Command('fetch')
    .description(
      'a curl-like HTTP/1.1, HTTP/2 and HTTP/3 client on our stack (node:net/node:dgram on loopback, or our TCP/UDP over TUN)',
    )
    .argument('<url>', 'http:// or https:// URL')
    .option('-X, --request <method>', 'request method (default GET, or POST with -d)')
    .option('-d, --data <data>', "request body; '@file' reads a file (CR and LF removed, as curl)", collect)
    .option('--data-binary <data>', "request body as is; '@file' reads a file byte for byte", collect)
    .option('-H, --header <line>', "extra field 'Name: value' (repeatable)", collect)
    .option('-o, --output <file>', 'write the body to a file instead of stdout')
    .option('-i, --include', 'print the response head (status line and fields) before the body')
    .option('-f, --fail', 'exit 22 without printing the body when the status is 400 or more')
    .option('--cacert <file>', 'trust the CA certificate(s) in this PEM file for https')
    .option('-k, --insecure', 'do not verify the server certificate')
    .option('--resolve <host:port:addr>', 'connect to addr for host:port (repeatable)', collect)
    .option('--tun', 'run on our own IP/TCP stack over a TUN device (root); the kernel side is the peer')
    .option(
      '--offloads',
      'with --tun: the TUN device with offloads (64 KB TCP super-segments both ways, partial checksums)',
    )
    .option(
      '--netns <name>',
      'with --tun: namespace of the kernel side; made if missing, removed after',
      'stepwire',
    )
    .option('-s, --silent', 'no progress bar and no error messages')
    .option('-L, --location', 'follow redirects (at most 20; 303, and 301/302 after POST, become GET)')
    .option('-v, --verbose', 'show the connection, the request head and the response head on stderr')
    .option(
      '--http2',
      'HTTP/2 with prior knowledge (h2c) for http:// URLs; https:// offers h2 by ALPN with or without it',
    )
    .option(
      '--http3',
      'HTTP/3 over our QUIC (UDP, https:// only): node:dgram on loopback, or our UDP with --tun; -v shows the QUIC handshake',
    )
    .option(
      '--qlog <file>',
      'with --http3: write the QUIC connection as qlog (JSON-SEQ, for qvis) to this file',
    )
    .addOption(
      new Option('-m, --max-time <seconds>', 'give up after this many seconds (exit 28)').argParser((v) => {
        const n = Number(v);
        if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--max-time: expected seconds, got '${v}'`);
        return n;
      }),
    )
    .addHelpText(
      'after',
      [
        '',
        'Names resolve only through --resolve and "localhost": no DNS query leaves this machine.',
        'Without --tun the kernel carries the bytes and only loopback is reachable; with --tun our',
        'stack (198.18.0.2, fd00:5757::2) talks to the kernel side of a namespace (198.18.0.1,',
        'fd00:5757::1). A progress bar goes to stderr for large bodies when stderr is a terminal.',
        '',
        'Exit status as curl: 0 ok, 2 usage, 6 could not resolve host, 7 could not connect,',
        '22 HTTP status >= 400 with -f, 23 write error, 28 timeout, 35 TLS handshake failed, 47 too many redirects,',
        '56 connection broken while receiving, 60 server certificate not trusted, 77 CA file unreadable.',
        '',
        'Examples:',
        '  stepwire fetch http://127.0.0.1:8080/ -i',
        '  stepwire fetch -d @form.txt -H "X-Trace: 1" http://localhost:8080/echo',
        '  stepwire fetch --cacert ca.pem --resolve example.test:8443:127.0.0.1 https://example.test:8443/',
        '  stepwire fetch --tun -o page.html http://198.18.0.1:8000/',
        '  stepwire fetch --http3 -v --cacert ca.pem --resolve stepwire.test:8443:127.0.0.1 https://stepwire.test:8443/',
        '  stepwire fetch --http3 --qlog fetch.sqlog -k https://127.0.0.1:8443/bytes/1000000 -o /dev/null',
      ].join('\n'),
    )
    .action(async (url: string, o: FetchCliOptions) => {
      // HTTP/1.1, HTTP/2, TLS and QUIC load only now that a request will be made.
      const { runFetch } = await import('./fetch.ts');
      const code = await runFetch(url, o, {
        out: (b) => process.stdout.write(b),
        err: (t) => process.stderr.write(t),
        errIsTty: process.stderr.isTTY === true,
        outIsTty: process.stdout.isTTY === true,
      });
      if (code !== 0) process.exitCode = code;
    });
}
