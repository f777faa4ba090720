export * from './client/testing.ts';
export * from './grpc/testing.ts';
export * from './h1/testing.ts';
export * from './h2/testing.ts';
export * from './hpack/testing.ts';
export * from './sse/testing.ts';
export * from './ws/testing.ts';
