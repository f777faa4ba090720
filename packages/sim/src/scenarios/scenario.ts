/**
 * Scenarios: one protocol feature each, on a fresh simulated network, deterministic by
 * seed. `stepwire demo <name>` prints each one's ladder; a library user can run them too
 * (runScenario) and read `net.lines`. Every scenario says in two or three lines what to
 * watch, and its test checks that the ladder shows exactly that.
 */
import type { TraceEvent } from '@stepwire/wire';
import { type LadderLine, ladderHeader } from '../ladder.ts';
import { createNetwork, type LinkOptions, type Network } from '../network.ts';
import type { ScenarioAbout } from './about.ts';

export interface ScenarioContext {
  net: Network;
  /** A line of outcome under the ladder: '✓ text' or '✗ text', attributed to a host. */
  result(host: string, ok: boolean, text: string): void;
  /** A heading between the parts of a scenario. */
  step(title: string): void;
}

/** A scenario's name, title and what to watch come from ./about.ts (`...about(name)`). */
export interface Scenario extends ScenarioAbout {
  /** The wire for this scenario (impairments, MTU); the user's --loss/--mtu do not apply. */
  link?: LinkOptions;
  run(ctx: ScenarioContext): Promise<void>;
}

export interface ScenarioRun {
  net: Network;
  /** Every result line, and whether all of them were ✓. */
  results: string[];
  ok: boolean;
}

/** Run a scenario on a new network; ladder lines go to `print` as they happen (or are only kept). */
export async function runScenario(
  s: Scenario,
  o: {
    seed?: number;
    print?: (line: string) => void;
    pcap?: string;
    pcapng?: string;
    keylog?: (line: string) => void;
    /** Changes to the scenario's wire (the CLI's --loss and --mtu). */
    link?: LinkOptions;
    /** Each ladder line as data (with its packet's bytes) instead of printed: `demo --step`. */
    onLine?: (line: LadderLine) => void;
    /** Every trace event of the run, with its fields (`demo --html`'s TCP timelines). */
    onTrace?: (e: TraceEvent) => void;
  } = {},
): Promise<ScenarioRun> {
  const print = o.print ?? (() => {});
  if (o.onLine) print(ladderHeader());
  const net = createNetwork({
    seed: o.seed ?? 1,
    trace: o.onLine ? true : print,
    ...(o.onLine ? { onLine: o.onLine } : {}),
    link: { ...s.link, ...o.link },
    ...(o.pcap ? { pcap: o.pcap } : {}),
    ...(o.pcapng ? { pcapng: o.pcapng } : {}),
    ...(o.keylog ? { keylog: o.keylog } : {}),
  });
  if (o.onTrace) net.trace.on(o.onTrace);
  const results: string[] = [];
  let ok = true;
  const ctx: ScenarioContext = {
    net,
    result(host, good, text) {
      const line = `${' '.repeat(8)}${host.padEnd(6)}  ${good ? '✓' : '✗'} ${text}`;
      results.push(line);
      ok &&= good;
      print(line);
    },
    step(title) {
      print(`\n— ${title}`);
    },
  };
  try {
    await s.run(ctx);
    await net.run(); // let every close, TIME-WAIT and retransmission play out
  } finally {
    net.close();
  }
  return { net, results, ok };
}
