import type { Command } from 'commander';
import { demoCommand } from './demo.ts';

export function registerCommands(program: Command): void {
  program.addCommand(demoCommand());
}
