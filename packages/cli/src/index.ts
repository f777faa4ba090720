export { dissect } from './dissect.ts';
export { formatLadderLine, type LadderLine, ladderHeader, noteFor } from './ladder.ts';
export { Sim, type SimHost, type SimOptions } from './sim.ts';
