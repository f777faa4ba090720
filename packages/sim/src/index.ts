/**
 * @stepwire/sim: the simulated network as a library. `createNetwork()` makes hosts with
 * IP, UDP, TCP and TLS attached on a switch with seeded impairments; `await net.run(p)`
 * drives the virtual clock while Node's callbacks run between timers. `Sim` is the fixed
 * two-host wire the CLI demo and the tshark oracle tests use.
 */
export { dissect } from './dissect.ts';
export { KeepAlive, WatchedClock } from './keepalive.ts';
export {
  formatLadderLine,
  type LadderLine,
  type LadderNote,
  type LadderPacket,
  ladderHeader,
  noteFor,
} from './ladder.ts';
export { toMermaid } from './mermaid.ts';
export {
  createNetwork,
  type HostOptions,
  type HostTls,
  type LinkOptions,
  type NetHost,
  Network,
  type NetworkOptions,
  ROUTER,
  SIM_EPOCH,
  seededCrypto,
  type TunHost,
  type TunHostOptions,
} from './network.ts';
export {
  formatPending,
  isIdle,
  type PendingHost,
  type PendingReport,
  type RunOptions,
  type RunTarget,
  SimulationStalled,
  SimulationTimeLimit,
  turn,
} from './run.ts';
export {
  about,
  findScenario,
  runScenario,
  SCENARIO_ABOUT,
  SCENARIOS,
  type Scenario,
  type ScenarioAbout,
  type ScenarioContext,
  type ScenarioName,
  type ScenarioRun,
} from './scenarios/index.ts';
export { Sim, type SimHost, type SimOptions } from './sim.ts';
export { formatTree, packetTree, type TreeField, type TreeLayer } from './tree.ts';
