export { ChunkQueue } from './buffers.ts';
export { Cubic, cubic } from './congestion/cubic.ts';
export { NewReno, newReno } from './congestion/newreno.ts';
export { type CongestionControl, type CongestionFactory, initialWindow } from './congestion/types.ts';
export {
  type FastOpenServer,
  type KeepaliveOptions,
  resetFor,
  TcpConnection,
  type TcpConnectionOptions,
  type TcpEndpoint,
  type TcpEvent,
  type TcpOutput,
  type TcpReadResult,
  type TcpState,
  type TcpStats,
} from './connection.ts';
export { defaultIsn, IsnGenerator } from './isn.ts';
export * from './options.ts';
export { type RtoOptions, RttEstimator } from './rto.ts';
export { OutOfOrderQueue, Scoreboard } from './sack.ts';
export * from './segment.ts';
