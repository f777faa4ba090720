export * from './codec.ts';
export * from './connection.ts';
export * from './messages.ts';
export {
  createHttpServer,
  type HttpClientError,
  type HttpConnectionSource,
  HttpServer,
  type HttpServerOptions,
  type HttpServerStats,
  type RequestListener,
} from './server/index.ts';
export * from './state.ts';
