// The host's public face: the sans-I/O core and its driver, and the types they speak in.
// The per-concern pieces (reassembly, path MTU, token bucket, ICMP in/out, echo book) stay
// internal: IpCore is how they are used.
export * from './core.ts';
export * from './driver.ts';
export type { EchoOutcome, PingOptions, PingResult } from './echo.ts';
export { type HostInterface, type InterfaceConfig, type RouteEntry, RoutingTable } from './routing.ts';
export { fields4, fields6, summary4, summary6 } from './trace.ts';
