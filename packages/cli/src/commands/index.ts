import type { Command } from 'commander';
import { demoCommand } from './demo.ts';
import { netnsCommand } from './netns.ts';
import { pingCommand } from './ping.ts';
import { serveCommand } from './serve.ts';

export function registerCommands(program: Command): void {
  program.addCommand(demoCommand());
  program.addCommand(netnsCommand());
  program.addCommand(serveCommand());
  program.addCommand(pingCommand());
}
