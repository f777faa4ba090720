export { TcpConnection } from './connection.ts';
export { timestampOffset, windowShiftFor } from './control-block.ts';
export { resetFor } from './segments.ts';
export {
  KEEPALIVE_STATES,
  SEND_STATES,
  SYNCHRONIZED,
  type TcpInput,
  type TcpState,
  TEXT_STATES,
  TRANSITIONS,
  type Transition,
  USER_SEND_STATES,
} from './state.ts';
export type {
  FastOpenServer,
  KeepaliveOptions,
  TcpConnectionOptions,
  TcpEndpoint,
  TcpEvent,
  TcpOutput,
  TcpReadResult,
  TcpStats,
} from './types.ts';
