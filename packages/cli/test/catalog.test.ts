import { SCENARIOS } from '@stepwire/sim';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { demoCommand, listScenarios } from '../src/commands/demo-command.ts';
import { serveCommand } from '../src/commands/serve-command.ts';
import { describeService, SERVICES } from '../src/tun/services.ts';

// The help reads the scenarios' and services' texts from their light modules
// (@stepwire/sim/about, ../src/tun/service-catalog.ts), which the scenarios and services
// themselves spread in: the texts cannot drift, but the lists can. A scenario added to
// SCENARIOS without texts in about.ts (or in another order), or a service added to SERVICES
// without its entry in service-catalog.ts, fails here.
/** A command's whole help as `--help` prints it, the text added after the options included. */
function helpOf(cmd: Command): string {
  let out = '';
  cmd.configureOutput({ writeOut: (s) => (out += s) });
  cmd.outputHelp();
  return out;
}

/** The lines of `help` after the one containing `heading`, up to the first that is not indented. */
function indentedAfter(help: string, heading: string): string[] {
  const lines = help.split('\n');
  const from = lines.findIndex((l) => l.includes(heading)) + 1;
  expect(from, heading).toBeGreaterThan(0);
  const rest = lines.slice(from);
  const end = rest.findIndex((l) => !l.startsWith('  '));
  return end < 0 ? rest : rest.slice(0, end);
}

describe('the help lists what runs', () => {
  it('demo --list shows every scenario of SCENARIOS, in order, with its title and what to watch', () => {
    const lines: string[] = [];
    listScenarios((l) => lines.push(l));
    const expected = SCENARIOS.flatMap((s) => [
      `${s.name}: ${s.title}`,
      ...s.watch.map((w) => `    ${w}`),
      '',
    ]);
    expect(lines.slice(0, -1)).toEqual(expected);
  });

  it('demo --help names every scenario of SCENARIOS with its title, in order', () => {
    const listed = indentedAfter(helpOf(demoCommand()), 'Scenarios (').map((l) => l.trim().split(/ {2,}/));
    expect(listed).toEqual(SCENARIOS.map((s) => [s.name, s.title]));
  });

  it('serve --help describes every service of SERVICES, in order', () => {
    expect(indentedAfter(helpOf(serveCommand()), 'our stack at')).toEqual(
      SERVICES.map((s) => `  ${describeService(s)}`),
    );
  });
});
