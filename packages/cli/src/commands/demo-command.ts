import { SCENARIO_ABOUT } from '@stepwire/sim/about';
import { Command } from 'commander';
import { intIn, probability } from '../args.ts';
import { UsageError } from '../errors.ts';
import type { DemoOptions } from './demo.ts';

/**
 * `stepwire demo`'s options and help. Only this file loads for `demo --help`, `demo --list`
 * and usage errors; running the tour or a scenario imports ./demo.ts (and with it the whole
 * simulated stack) inside the action.
 */

/** The tour's steps, as `stepwire demo --help` lists them. */
const TOUR = [
  'ping A→B over IPv4 and B→A over IPv6 (RFC 792, RFC 4443)',
  'a UDP echo (RFC 768, RFC 862)',
  'a 4000-byte UDP datagram fragmented at the MTU and reassembled (RFC 791 §2.3)',
  'TCP (RFC 9293): handshake, an HTTP request with our HTTP/1.1 client and server, the close',
  'TLS 1.3 (RFC 8446) over TCP: handshake, then HTTPS between our client and our server',
];

function demoHelp(): string {
  const width = Math.max(...SCENARIO_ABOUT.map((s) => s.name.length));
  return [
    '',
    'Without a scenario, a tour of the stack between two simulated hosts, A (198.18.0.1,',
    'fd00:5757::1) and B (198.18.0.2, fd00:5757::2), printed as a ladder — one line per packet,',
    'with the state changes between them:',
    ...TOUR.map((t, i) => `  ${i + 1}. ${t}`),
    '',
    'Scenarios (stepwire demo <name>; --list prints what to watch in each):',
    ...SCENARIO_ABOUT.map((s) => `  ${s.name.padEnd(width)}  ${s.title}`),
    '',
    'Every run is deterministic: the same --seed prints the same ladder. The pcap is dated on',
    "the simulation's calendar (2026-01-01 plus simulated time); TLS secrets go to --keylog or",
    '$SSLKEYLOGFILE, so Wireshark decrypts the pcap; --pcapng writes them into the capture itself',
    '(Decryption Secrets Blocks), so that one file decrypts alone in Wireshark and stepwire trace.',
    '',
    'Examples:',
    '  stepwire demo --seed 7 --loss 0.1',
    '  stepwire demo tls-hrr --pcap hrr.pcap --keylog keys.txt',
    '  stepwire demo tls-full --pcapng tls.pcapng && stepwire trace tls.pcapng',
    '  stepwire demo tcp-handshake --mermaid handshake.mmd',
  ].join('\n');
}

export function demoCommand(print: (s: string) => void = (s) => process.stdout.write(`${s}\n`)): Command {
  return new Command('demo')
    .description(
      'simulate two hosts and print every packet between them as a ladder: a tour of the stack, or one scenario',
    )
    .argument('[scenario]', 'a scenario to run instead of the tour (see --list)')
    .option('--list', 'list the scenarios and what to watch in each')
    .option('--seed <n>', 'seed of the simulated network', intIn(0, 2 ** 32 - 1), 1)
    .option('--loss <p>', 'probability that the wire loses a packet (tour default 0)', probability)
    .option('--mtu <n>', 'MTU of the wire, IPv6 needs at least 1280 (tour default 1500)', intIn(68, 65535))
    .option(
      '--pcap <file>',
      "also write every packet to a pcap file for Wireshark, dated on the simulation's clock",
    )
    .option(
      '--pcapng <file>',
      'also write every packet to a pcapng file with the TLS secrets inside, so Wireshark decrypts it with no key log',
    )
    .option(
      '--keylog <file>',
      'write the TLS secrets (SSLKEYLOGFILE format) so Wireshark can decrypt the pcap; default $SSLKEYLOGFILE',
    )
    .option('--mermaid <file>', 'also write the exchange as a mermaid sequence diagram')
    .option(
      '--html <file>',
      'also write a self-contained HTML page: the ladder, each packet as a layer tree with its bytes, filters, TCP timelines',
    )
    .option(
      '--step',
      'stop at every packet and event: the packet as a layer tree (bytes, meaning, RFC section); keys n t l i u c q',
    )
    .addHelpText('after', demoHelp)
    .action(async (scenario: string | undefined, o: DemoOptions) => {
      if (o.list) {
        if (scenario) throw new UsageError('--list takes no scenario');
        listScenarios(print);
        return;
      }
      // The heavy part (the simulated stack) loads only now that something will run.
      const { demoAction } = await import('./demo.ts');
      await demoAction(scenario, o, print);
    });
}

export function listScenarios(print: (s: string) => void): void {
  for (const s of SCENARIO_ABOUT) {
    print(`${s.name}: ${s.title}`);
    for (const w of s.watch) print(`    ${w}`);
    print('');
  }
  print("Run one with 'stepwire demo <name> [--seed N] [--pcap F] [--mermaid F]'.");
}
