/** fast-check arbitraries for every HTTP wire format; protocols as in the package entry. */
export * from './client/testing.ts';
export * from './grpc/testing.ts';
export * from './h1/testing.ts';
export * as h2 from './h2/testing.ts';
export * as hpack from './hpack/testing.ts';
export * from './sse/testing.ts';
export * as ws from './ws/testing.ts';
