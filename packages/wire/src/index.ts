export {
  allocBytes,
  ByteReader,
  ByteWriter,
  bytesEqual,
  concatBytes,
  fromHex,
  fromUtf8,
  joinBytes,
  readU16,
  readU32,
  subview,
  toHex,
  utf8,
  writeU16,
  writeU32,
} from './bytes.ts';
export { finishChecksum, foldSum, internetChecksum, sum16, updateChecksum } from './checksum.ts';
export { type Clock, RealClock, type Timer, VirtualClock } from './clock.ts';
export {
  CUBIC_ALPHA,
  CUBIC_BETA,
  CUBIC_C,
  CUBIC_DEFAULT_RTT,
  CubicWindow,
  cubicK,
  wCubic,
} from './cubic.ts';
export { ParseError, truncated } from './errors.ts';
export { hexdump } from './hexdump.ts';
export { codeError, type SystemError, type SystemErrorCode, systemError } from './node-errors.ts';
export { BufferPool, isWriteOnce, markWriteOnce, superSegments } from './pool.ts';
export { chooseEphemeralPort, EPHEMERAL_PORT_MAX, EPHEMERAL_PORT_MIN } from './ports.ts';
export { Prng } from './prng.ts';
export {
  seqAdd,
  seqDiff,
  seqGeq,
  seqGt,
  seqInWindow,
  seqLeq,
  seqLt,
  seqMax,
  seqMin,
} from './serial.ts';
export { TimerGroup } from './timers.ts';
export {
  type Counter,
  Counters,
  countDrop,
  silentTrace,
  TraceBus,
  type TraceDirection,
  type TraceEvent,
  type TraceListener,
} from './trace.ts';
