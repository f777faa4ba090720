export { ChunkQueue } from './buffers.ts';
export { Bbr, bbr } from './congestion/bbr.ts';
export { Cubic, cubic } from './congestion/cubic.ts';
export { type CongestionName, congestionFromLinux } from './congestion/host.ts';
export { NewReno, newReno } from './congestion/newreno.ts';
export { type CongestionControl, type CongestionFactory, initialWindow } from './congestion/types.ts';
export {
  type FastOpenServer,
  type KeepaliveOptions,
  resetFor,
  TcpConnection,
  type TcpConnectionOptions,
  type TcpEndpoint as TcpEndpointAddress,
  type TcpEvent,
  type TcpOutput,
  type TcpReadResult,
  type TcpState,
  type TcpStats,
} from './connection/index.ts';
export {
  type EndpointIp,
  type EndpointSink,
  TcpEndpoint,
  type TcpEndpointOptions,
  type TcpEndpointStats,
  type TcpOpenOptions,
} from './endpoint/endpoint.ts';
export { TcpListener, type TcpListenerStats, type TcpListenOptions } from './endpoint/listener.ts';
export { codeError, systemError, type TcpErrorCode, type TcpSystemError } from './errors.ts';
export { FASTOPEN_COOKIE_LENGTH, FastOpenCache, type FastOpenCacheEntry, FastOpenKeys } from './fastopen.ts';
export { defaultIsn, IsnGenerator } from './isn.ts';
export * from './options.ts';
export { type RtoOptions, RttEstimator } from './rto.ts';
export { OutOfOrderQueue, Scoreboard } from './sack.ts';
export * from './segment.ts';
export { type TcpListenArgs, TcpServer, type TcpServerOptions } from './server.ts';
export {
  type TcpAddressInfo,
  type TcpConnectOptions,
  TcpSocket,
  type TcpSocketOptions,
} from './socket.ts';
export { SYNCOOKIE_MSS_TABLE, SYNCOOKIE_PERIOD, SynCookies } from './syncookie.ts';
export {
  Tcb,
  type TcbOwner,
  Tcp,
  type TcpConnectionDefaults,
  type TcpStackOptions,
  type TcpStats as TcpStackStats,
  tupleKey,
} from './tcp.ts';
