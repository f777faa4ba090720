export * from './client/index.ts';
export * from './grpc/index.ts';
export * from './h1/index.ts';
export * from './h2/index.ts';
export * from './hpack/index.ts';
export * from './sse/index.ts';
export * from './ws/index.ts';
