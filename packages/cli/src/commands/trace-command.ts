import { Command } from 'commander';
import type { TraceOptions } from './trace.ts';

/** `stepwire trace`'s options and help; the decoders (./trace.ts) load in the action. */

export function traceCommand(print: (s: string) => void): Command {
  return new Command('trace')
    .description(
      'decode any pcap or pcapng capture (raw IP, Ethernet, Linux cooked) with our codecs: the ladder, each refusal with its offset and reason, TLS 1.3 decrypted with a key log, and optionally the HTML view',
    )
    .argument(
      '<file>',
      'a pcap or pcapng file (tcpdump -w, dumpcap, Wireshark, stepwire demo --pcap / --pcapng)',
    )
    .option(
      '--keylog <file>',
      "TLS secrets (SSLKEYLOGFILE format) to decrypt TLS 1.3 with; also read: $SSLKEYLOGFILE and the pcapng's Decryption Secrets Blocks",
    )
    .option(
      '--html <file>',
      'also write a self-contained HTML page: ladder, layer tree, bytes, filters, timelines',
    )
    .option('-v, --verbose', 'print every layer and field under its packet')
    .option(
      '--step',
      'pause at each packet with its layer tree (keys as in demo --step: n next, k same connection, t/l/i/u next TCP/TLS/IP/UDP, c continue, q quit)',
    )
    .option(
      '--no-verify-checksums',
      'show wrong checksums without refusing the packet (captures taken with checksum offload), as Wireshark does',
    )
    .action(async (file: string, o: TraceOptions) => {
      // Our codecs, the dissector and the TLS decryption load only now that a file will be read.
      const { runTrace } = await import('./trace.ts');
      runTrace(file, o, print);
    });
}
