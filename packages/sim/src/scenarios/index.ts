/** Every scenario, in the order `stepwire demo --list` shows them. */
export { about, SCENARIO_ABOUT, type ScenarioAbout, type ScenarioName } from './about.ts';
export { runScenario, type Scenario, type ScenarioContext, type ScenarioRun } from './scenario.ts';

import {
  http2Multiplexing,
  httpKeepAlive,
  httpLongPolling,
  httpPipelining,
  httpSse,
  websocket,
} from './http.ts';
import { fragmentation, pingPmtu } from './ip.ts';
import { quicHttp3 } from './quic.ts';
import type { Scenario } from './scenario.ts';
import {
  synFloodCookies,
  tcpFastOpen,
  tcpHandshake,
  tcpSackLoss,
  tcpSimultaneousOpen,
  tcpZeroWindow,
} from './tcp.ts';
import { tls0rtt, tlsFull, tlsHrr, tlsKeyUpdate, tlsMtls, tlsResumption } from './tls.ts';

export const SCENARIOS: readonly Scenario[] = [
  tcpHandshake,
  tcpSimultaneousOpen,
  tcpSackLoss,
  tcpZeroWindow,
  synFloodCookies,
  tcpFastOpen,
  tlsFull,
  tlsHrr,
  tlsResumption,
  tls0rtt,
  tlsMtls,
  tlsKeyUpdate,
  pingPmtu,
  fragmentation,
  httpKeepAlive,
  httpPipelining,
  httpLongPolling,
  httpSse,
  websocket,
  http2Multiplexing,
  quicHttp3,
];

export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
