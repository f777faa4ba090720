/**
 * HTTP/2 (RFC 9113) public surface. Names carry an Http2/HTTP2 prefix where the bare name
 * would be ambiguous in the package entry (which also exports HTTP/1.1 and WebSocket).
 */

export {
  type CompatRequestListener,
  createCompatHttp2Server,
  H2C_SWITCHING_PROTOCOLS,
  type Http2CompatResponse,
  type Http2ResponseExtras,
  h2cUpgradeSettings,
  h2RequestResponse,
  isHttp2Response,
  routeByPreface,
  upgradeToH2c,
} from './compat.ts';
export {
  DEFAULT_LIMITS as DEFAULT_HTTP2_LIMITS,
  Http2Connection,
  type Http2ConnectionOptions,
  type Http2Event,
  type Http2Limits,
  type Role as Http2Role,
} from './connection.ts';
export { ErrorCode as Http2ErrorCode, errorCodeName as http2ErrorCodeName, Http2Error } from './errors.ts';
export {
  CONNECTION_PREFACE as HTTP2_CONNECTION_PREFACE,
  decodeFrame as decodeHttp2Frame,
  encodeFrame as encodeHttp2Frame,
  FrameReader as Http2FrameReader,
  FrameType as Http2FrameType,
  type Http2Frame,
  SettingId as Http2SettingId,
} from './frames.ts';
export {
  type IncomingHeaders as Http2IncomingHeaders,
  type OutgoingHeaders as Http2OutgoingHeaders,
  toHeaderList as http2HeaderList,
  toHeaderObject as http2HeaderObject,
} from './message.ts';
export {
  type ConnectOptions as Http2ConnectOptions,
  connect as connectHttp2,
  createServer as createHttp2Server,
  Http2Server,
  Http2Session,
  Http2Stream,
  type SessionOptions as Http2SessionOptions,
} from './session.ts';
export { DEFAULT_SETTINGS as DEFAULT_HTTP2_SETTINGS, type Http2Settings } from './settings.ts';
export {
  STREAM_TRANSITIONS as HTTP2_STREAM_TRANSITIONS,
  type StreamState as Http2StreamState,
} from './state.ts';
