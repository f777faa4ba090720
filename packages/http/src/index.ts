/**
 * @stepwire/http. The package entry carries the HTTP/1.1 server and client (node:http's
 * shapes), fetch, SSE and gRPC flat; protocols whose codecs share names with HTTP/1.1's
 * (frames, heads, limits) come as namespaces: `h2`, `hpack`, `ws`. Each is also its own
 * entry point: `@stepwire/http/h1`, `/h2`, `/hpack`, `/ws`, `/sse`, `/client`, `/grpc`.
 */
export * from './client/index.ts';
export * from './grpc/index.ts';
export * from './h1/index.ts';
export * as h2 from './h2/index.ts';
export * as hpack from './hpack/index.ts';
export * from './sse/index.ts';
export * as ws from './ws/index.ts';
